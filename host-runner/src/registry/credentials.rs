//! Registry credentials, from the environment or a docker-style config file;
//! never from the command line.
//!
//! Order: `HOST_RUNNER_REGISTRY_USERNAME` and `HOST_RUNNER_REGISTRY_PASSWORD`
//! (both or neither) for the one registry they are for, then the `auths`
//! entry for the registry in
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, else
//! anonymous. A password is held in [`Secret`], whose `Debug` and `Display`
//! print `***`, so it cannot reach a log line or an error message by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Prefix of host-runner's registry variables, which `-S inherit-env`
/// never passes to a guest.
pub const SECRET_VAR_PREFIX: &str = "HOST_RUNNER_REGISTRY_";
/// Environment variable with the registry user name.
pub const USERNAME_VAR: &str = "HOST_RUNNER_REGISTRY_USERNAME";
/// Environment variable with the registry password.
pub const PASSWORD_VAR: &str = "HOST_RUNNER_REGISTRY_PASSWORD";
/// Environment variable naming the registry (`host[:port]`) the two above
/// are for. Without it they go to the one registry a command names, and a
/// command naming several is refused: a password for a private registry
/// must not reach the registry of a third-party plug.
pub const REGISTRY_VAR: &str = "HOST_RUNNER_REGISTRY";

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate to one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    Anonymous,
    /// HTTP basic authentication (also used to obtain bearer tokens).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Secret,
        /// Where they came from, for messages (`HOST_RUNNER_REGISTRY_*`, a file).
        origin: String,
    },
}

/// Credentials that are present but unusable.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Only one of the two variables is set.
    #[error("set both {USERNAME_VAR} and {PASSWORD_VAR}, or neither")]
    HalfSet,
    /// The environment's credentials could go to more than one registry.
    #[error(
        "{USERNAME_VAR}/{PASSWORD_VAR} are set and the command names several registries \
         ({0}): set {REGISTRY_VAR}=HOST:PORT to name the one they are for"
    )]
    Unbound(String),
    /// The config file cannot be read or parsed.
    #[error("cannot use the docker config {path}: {problem}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (never includes secret values).
        problem: String,
    },
}

/// Checks, before any request, that the environment's credentials can go
/// to only one of `registries` (every registry a command names): the one
/// `HOST_RUNNER_REGISTRY` names, or else the only one there is.
pub fn check_binding(registries: &[&str]) -> Result<(), CredentialsError> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    binding(
        var(USERNAME_VAR).is_some() || var(PASSWORD_VAR).is_some(),
        var(REGISTRY_VAR).as_deref(),
        registries,
    )
}

fn binding(set: bool, named: Option<&str>, registries: &[&str]) -> Result<(), CredentialsError> {
    let mut distinct: Vec<&str> = registries.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if !set || named.is_some() || distinct.len() <= 1 {
        return Ok(());
    }
    Err(CredentialsError::Unbound(distinct.join(", ")))
}

/// Looks up credentials for `registry` (`host[:port]`), reading the
/// environment (only if `HOST_RUNNER_REGISTRY` is unset or names this
/// registry) and the docker config.
pub fn lookup(registry: &str) -> Result<Credentials, CredentialsError> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ours = var(REGISTRY_VAR).is_none_or(|named| named.eq_ignore_ascii_case(registry));
    match (var(USERNAME_VAR), var(PASSWORD_VAR)) {
        _ if !ours => {}
        (Some(username), Some(password)) => {
            return Ok(Credentials::Basic {
                username,
                password: Secret::new(password),
                origin: format!("{USERNAME_VAR}/{PASSWORD_VAR}"),
            })
        }
        (None, None) => {}
        _ => return Err(CredentialsError::HalfSet),
    }
    match docker_config_path() {
        Some(path) if path.exists() => from_docker_config(&path, registry),
        _ => Ok(Credentials::Anonymous),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker").join("config.json"))
}

/// Reads the `auths` entry for `registry` from a docker config file.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Credentials, CredentialsError> {
    let bad = |problem: String| CredentialsError::Config {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    // Parse without echoing the text: serde_json's errors carry only a
    // position, never the offending value.
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(Credentials::Anonymous);
    };
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v2/"),
        format!("http://{registry}/v2/"),
        format!("https://{registry}/v1/"),
    ];
    let Some(entry) = keys.iter().find_map(|k| auths.get(k)) else {
        return Ok(Credentials::Anonymous);
    };
    let origin = path.display().to_string();
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad(format!("the auth entry for {registry} is not base64")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("the auth entry for {registry} is not UTF-8")))?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            bad(format!(
                "the auth entry for {registry} is not base64 of user:password"
            ))
        })?;
        return Ok(Credentials::Basic {
            username: username.to_string(),
            password: Secret::new(password.to_string()),
            origin,
        });
    }
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(Credentials::Basic {
            username: username.to_string(),
            password: Secret::new(password.to_string()),
            origin,
        }),
        _ => Ok(Credentials::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_credentials_go_to_one_registry() {
        let two = ["private:5000", "third-party.example", "private:5000"];
        // Nothing set, one registry, or a named one: fine.
        assert!(binding(false, None, &two).is_ok());
        assert!(binding(true, None, &["private:5000", "private:5000"]).is_ok());
        assert!(binding(true, Some("private:5000"), &two).is_ok());
        // Several without a name: refused, naming them and the fix.
        let e = binding(true, None, &two).unwrap_err().to_string();
        assert!(e.contains("private:5000, third-party.example"), "{e}");
        assert!(e.contains("HOST_RUNNER_REGISTRY=HOST:PORT"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let c = Credentials::Basic {
            username: "u".into(),
            password: s,
            origin: "x".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn docker_config_entries() {
        let dir = std::env::temp_dir().join(format!("host-runner-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        std::fs::write(
            &path,
            serde_json::json!({"auths": {
                "127.0.0.1:5000": {"auth": auth},
                "https://other:443": {"username": "bob", "password": "pw"},
                "broken:1": {"auth": "%%%"},
            }})
            .to_string(),
        )
        .unwrap();
        match from_docker_config(&path, "127.0.0.1:5000").unwrap() {
            Credentials::Basic {
                username, password, ..
            } => {
                assert_eq!(username, "alice");
                assert_eq!(password.expose(), "s3cret:with:colons");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_docker_config(&path, "other:443").unwrap(),
            Credentials::Basic { username, .. } if username == "bob"
        ));
        assert_eq!(
            from_docker_config(&path, "elsewhere:1").unwrap(),
            Credentials::Anonymous
        );
        let err = from_docker_config(&path, "broken:1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not base64") && err.contains("config.json"),
            "{err}"
        );

        std::fs::write(&path, "{not json").unwrap();
        let err = from_docker_config(&path, "x").unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
