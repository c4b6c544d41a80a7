//! Component sources as the command line names them: a file path, or an
//! `oci://HOST[:PORT]/REPOSITORY(:TAG | @sha256:HEX | :TAG@sha256:HEX)`
//! registry reference.
//!
//! The registry part is always explicit (there is no default registry), and
//! a reference names a tag, a digest or both: an implicit `latest` would make
//! what runs depend on when it was pulled. When both are given the digest
//! decides, as it does for docker: the tag is then only a label.

use std::fmt;
use std::path::PathBuf;

use super::digest::Digest;

/// The scheme that marks a registry reference.
pub const SCHEME: &str = "oci://";

/// A component named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A component file.
    File(PathBuf),
    /// A component in an OCI registry.
    Oci(OciReference),
}

impl Source {
    /// Parses a command-line argument: `oci://...` is a registry reference,
    /// anything else a path.
    pub fn parse(arg: &str) -> Result<Self, BadReference> {
        if arg.starts_with(SCHEME) {
            OciReference::parse(arg).map(Self::Oci)
        } else {
            Ok(Self::File(PathBuf::from(arg)))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Oci(r) => r.fmt(f),
        }
    }
}

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `host` or `host:port` (IPv6 hosts in brackets).
    pub registry: String,
    /// The repository path, e.g. `vecproc/vector-service`.
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The pinned manifest digest, if one was given.
    pub digest: Option<Digest>,
}

/// Why an `oci://` argument is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid registry reference {reference:?}: {problem}")]
pub struct BadReference {
    /// The argument as given.
    pub reference: String,
    /// What is wrong with it.
    pub problem: String,
}

impl OciReference {
    /// Parses `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
    pub fn parse(arg: &str) -> Result<Self, BadReference> {
        let bad = |problem: &str| BadReference {
            reference: arg.to_string(),
            problem: problem.to_string(),
        };
        let rest = arg
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected oci://HOST[:PORT]/REPOSITORY:TAG"))?;
        check_registry(registry).map_err(|p| bad(&p))?;
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => (
                path,
                Some(Digest::parse(digest).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (path, None),
        };
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        check_repository(repository).map_err(|p| bad(&p))?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(|p| bad(&p))?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad(
                "name a tag (:0.1.0) or a digest (@sha256:...); there is no implicit latest",
            ));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `registry/repository`, the identity a cosign signature names.
    pub fn docker_reference(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// This reference pinned to `digest`, its tag kept as a label.
    pub fn pinned(&self, digest: &Digest) -> Self {
        Self {
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// The host part without the port or IPv6 brackets.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Whether the registry is on this machine (127.0.0.0/8, ::1, localhost).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("the registry host is empty".into());
    }
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host needs a closing ]")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        (host, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if !registry.starts_with('[')
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    {
        return Err(format!("{host:?} is not a host name"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{port:?} is not a port number"));
        }
    }
    Ok(())
}

/// The OCI distribution grammar: lowercase path components of
/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, separated by `/`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty".into());
    }
    for component in repository.split('/') {
        let ok = !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_tags_and_digests() {
        let r = OciReference::parse("oci://127.0.0.1:5000/vecproc/vector-service:0.1.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "vecproc/vector-service");
        assert_eq!(r.tag.as_deref(), Some("0.1.0"));
        assert_eq!(r.digest, None);
        assert!(r.is_loopback());
        assert_eq!(
            r.docker_reference(),
            "127.0.0.1:5000/vecproc/vector-service"
        );
        assert_eq!(
            r.to_string(),
            "oci://127.0.0.1:5000/vecproc/vector-service:0.1.0"
        );

        let s = format!("oci://localhost/a/b@sha256:{HEX}");
        let r = OciReference::parse(&s).unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().hex(), HEX);
        assert_eq!(r.to_string(), s);

        let s = format!("oci://[::1]:5000/x:1@sha256:{HEX}");
        let r = OciReference::parse(&s).unwrap();
        assert_eq!(r.host(), "::1");
        assert!(r.is_loopback());
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.to_string(), s);

        let r = OciReference::parse("oci://ghcr.io/org/app:v1").unwrap();
        assert!(!r.is_loopback());
    }

    #[test]
    fn rejects_bad_references() {
        for (arg, needle) in [
            ("oci://", "expected oci://HOST"),
            ("oci:///repo:1", "registry host is empty"),
            ("oci://host/repo", "no implicit latest"),
            ("oci://host:99999/repo:1", "not a port"),
            ("oci://host/Repo:1", "lowercase"),
            ("oci://host/a//b:1", "lowercase"),
            ("oci://host/repo:", "tag"),
            ("oci://host/repo:-x", "tag"),
            ("oci://host/repo@sha256:abc", "not a sha256 digest"),
            ("oci://ho st/repo:1", "not a host name"),
            ("oci://[zz]:1/repo:1", "not an IPv6"),
        ] {
            let err = OciReference::parse(arg).unwrap_err();
            assert!(
                err.to_string().contains(needle),
                "{arg}: {err} lacks {needle:?}"
            );
            assert!(err.to_string().contains(arg), "{err} does not name {arg}");
        }
    }

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("target/wasm/x.wasm").unwrap(),
            Source::File("target/wasm/x.wasm".into())
        );
        assert!(matches!(
            Source::parse("oci://h:1/r:t").unwrap(),
            Source::Oci(_)
        ));
        assert!(Source::parse("oci://h:1/r").is_err());
    }
}
