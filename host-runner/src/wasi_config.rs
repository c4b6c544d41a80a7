//! The values a guest reads through `wasi:config/store` (`-S config`), and
//! where they come from.
//!
//! `wasmtime serve` takes them from `-S config-var=KEY=VALUE` only.
//! host-runner adds two sources an operator deploys with: a file
//! (`--config-file`: TOML when the name ends in `.toml`, otherwise an env
//! file of `KEY=VALUE` lines) and the host environment (`--config-env-prefix
//! PREFIX`: every `PREFIXNAME` variable becomes the key `name`, lower-cased,
//! as Spin's `SPIN_VARIABLE_` provider does). A later source wins: the file,
//! then the environment, then `-S config-var`.
//!
//! Everything is read once, at startup, so a bad file stops host-runner with
//! a message that names it (and the line); values are shared by every
//! instance and never logged, only how many there are and their keys.
//! Pure: no Wasmtime here (the linker takes [`GuestConfig::variables`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A configuration source that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("--config-file {}: {message}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// A TOML file that does not parse, or holds something that is not a
    /// value (an array).
    #[error("--config-file {}: {message}", file.display())]
    Toml {
        /// The file.
        file: PathBuf,
        /// The problem, with its place.
        message: String,
    },
    /// An env-file line that is not `KEY=VALUE`.
    #[error("--config-file {}, line {line}: {problem}", file.display())]
    EnvLine {
        /// The file.
        file: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The problem.
        problem: &'static str,
    },
    /// A host variable under the prefix whose name or value is not UTF-8.
    #[error("--config-env-prefix: environment variable `{0}` is not valid UTF-8")]
    NotUtf8(String),
    /// `--config-env-prefix ""` would take the whole environment.
    #[error("--config-env-prefix: the prefix is empty (it would pass the whole host environment)")]
    EmptyPrefix,
}

/// Where the values come from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources<'a> {
    /// `--config-file`.
    pub file: Option<&'a Path>,
    /// `--config-env-prefix` and the host's variables.
    pub env_prefix: Option<&'a str>,
    /// The host's environment, read for the prefix.
    pub host_vars: &'a [(OsString, OsString)],
    /// `-S config-var=KEY=VALUE`, in order.
    pub vars: &'a [(String, String)],
}

/// The resolved values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    values: BTreeMap<String, String>,
}

impl GuestConfig {
    /// Reads every source; later sources replace earlier keys.
    pub fn resolve(sources: &ConfigSources<'_>) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        if let Some(file) = sources.file {
            let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
                file: file.into(),
                message: e.to_string(),
            })?;
            let parsed = if file.extension().is_some_and(|e| e == "toml") {
                parse_toml(file, &text)?
            } else {
                parse_env_file(file, &text)?
            };
            values.extend(parsed);
        }
        if let Some(prefix) = sources.env_prefix {
            if prefix.is_empty() {
                return Err(ConfigError::EmptyPrefix);
            }
            for (name, value) in sources.host_vars {
                let Some(key) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                    if name.to_string_lossy().starts_with(prefix) {
                        return Err(ConfigError::NotUtf8(name.to_string_lossy().into()));
                    }
                    continue;
                };
                if key.is_empty() {
                    continue;
                }
                let value = value
                    .to_str()
                    .ok_or_else(|| ConfigError::NotUtf8(name.to_string_lossy().into()))?;
                values.insert(key.to_lowercase(), value.to_string());
            }
        }
        for (key, value) in sources.vars {
            values.insert(key.clone(), value.clone());
        }
        Ok(Self { values })
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The startup line: how many values and their keys, never the values.
    pub fn summary(&self) -> String {
        if self.values.is_empty() {
            return "wasi:config: linked, no values (a guest's get answers none)".into();
        }
        let keys: Vec<&str> = self.values.keys().map(String::as_str).collect();
        format!(
            "wasi:config: {} value{} ({})",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
            keys.join(", ")
        )
    }

    /// The values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A TOML file: keys of nested tables joined with `.`; strings as they are,
/// numbers, booleans and dates as TOML writes them; arrays refused.
fn parse_toml(file: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            file: file.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
    let mut out = Vec::new();
    flatten(file, "", &table, &mut out)?;
    Ok(out)
}

fn flatten(
    file: &Path,
    prefix: &str,
    table: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Table(t) => {
                flatten(file, &key, t, out)?;
                continue;
            }
            toml::Value::Array(_) => {
                return Err(ConfigError::Toml {
                    file: file.into(),
                    message: format!(
                        "`{key}` is an array; wasi:config values are strings (write it as one)"
                    ),
                })
            }
        };
        out.push((key, text));
    }
    Ok(())
}

/// An env file: `KEY=VALUE` per line, `#` comments and blank lines skipped,
/// an optional `export `, and a value in matching single or double quotes
/// taken without them (no escapes, no interpolation).
fn parse_env_file(file: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let error = |problem| ConfigError::EnvLine {
            file: file.into(),
            line: i + 1,
            problem,
        };
        let (key, value) = line.split_once('=').ok_or_else(|| error("not KEY=VALUE"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(error("the key is empty"));
        }
        if key.contains(char::is_whitespace) {
            return Err(error("the key contains whitespace"));
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .filter(|_| value.len() >= 2);
        if unquoted.is_none() && (value.starts_with(['"', '\''])) {
            return Err(error("a quoted value is not closed"));
        }
        out.push((key.to_string(), unquoted.unwrap_or(value).to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn later_sources_win_and_the_summary_names_keys_only() {
        let toml = file(
            "a.toml",
            "greeting = \"hello\"\nlimit = 3\nratio = 0.5\n[db]\nhost = \"h\"\nport = 5432\n",
        );
        let host_vars = [
            ("APP_GREETING".into(), "from env".into()),
            ("APP_".into(), "no key".into()),
            ("OTHER".into(), "x".into()),
        ];
        let vars = [("limit".to_string(), "7".to_string())];
        let config = GuestConfig::resolve(&ConfigSources {
            file: Some(&toml),
            env_prefix: Some("APP_"),
            host_vars: &host_vars,
            vars: &vars,
        })
        .unwrap();
        let all: Vec<_> = config.iter().collect();
        assert_eq!(
            all,
            [
                ("db.host", "h"),
                ("db.port", "5432"),
                ("greeting", "from env"),
                ("limit", "7"),
                ("ratio", "0.5"),
            ]
        );
        let summary = config.summary();
        assert_eq!(
            summary,
            "wasi:config: 5 values (db.host, db.port, greeting, limit, ratio)"
        );
        assert!(!summary.contains("from env"));
    }

    #[test]
    fn env_files_follow_the_usual_rules() {
        let env = file(
            "a.env",
            "# a comment\n\nexport A=1\nB = \"two words\"\nC='x=y'\nD=\nE=\"\"\n",
        );
        let config = GuestConfig::resolve(&ConfigSources {
            file: Some(&env),
            ..Default::default()
        })
        .unwrap();
        let all: Vec<_> = config.iter().collect();
        assert_eq!(
            all,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "x=y"),
                ("D", ""),
                ("E", "")
            ]
        );
    }

    #[test]
    fn bad_sources_are_named() {
        let err = |text: &str, name: &str| {
            let path = file(name, text);
            GuestConfig::resolve(&ConfigSources {
                file: Some(&path),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        let e = err("A=1\njust words\n", "b.env");
        assert!(e.ends_with("b.env, line 2: not KEY=VALUE"), "{e}");
        let e = err("=1\n", "c.env");
        assert!(e.ends_with("c.env, line 1: the key is empty"), "{e}");
        let e = err("A=\"open\n", "d.env");
        assert!(
            e.ends_with("d.env, line 1: a quoted value is not closed"),
            "{e}"
        );
        let e = err("a = [1, 2]\n", "e.toml");
        assert!(e.contains("e.toml: `a` is an array"), "{e}");
        let e = err("a = \n", "f.toml");
        assert!(
            e.starts_with("--config-file ") && e.contains("f.toml: "),
            "{e}"
        );
        let missing = Path::new("/no/such/config.toml");
        let e = GuestConfig::resolve(&ConfigSources {
            file: Some(missing),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--config-file /no/such/config.toml: "), "{e}");
        assert_eq!(
            GuestConfig::resolve(&ConfigSources {
                env_prefix: Some(""),
                ..Default::default()
            }),
            Err(ConfigError::EmptyPrefix)
        );
    }

    #[test]
    fn nothing_given_is_empty() {
        let config = GuestConfig::resolve(&ConfigSources::default()).unwrap();
        assert!(config.is_empty());
        assert_eq!(config.get("x"), None);
        assert!(config.summary().contains("no values"));
    }
}
