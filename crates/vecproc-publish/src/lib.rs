//! What `vecproc-publish` publishes and how it names it: the packages, the
//! OCI annotations each manifest carries, which registries are spoken to in
//! plain HTTP, and reading wkg's answer. Pure: no process is started here,
//! so all of it is unit-tested; `main.rs` runs cargo, wkg and host-runner.
//!
//! A component is published as `HOST:PORT/vecproc/<name>:<version>`, the
//! version of the crate it is built from, so the package
//! `vecproc:<name>@<version>` and the OCI reference agree.

use std::net::IpAddr;

/// One component to publish, from `<target>/wasm/<name>.wasm`.
pub struct Package {
    /// The package and repository name.
    pub name: &'static str,
    /// The crate (in `components/`) whose version, description and license
    /// it carries.
    pub krate: &'static str,
    /// Overrides the crate's description (a composition has no crate).
    pub description: Option<&'static str>,
}

impl Package {
    /// Whether it is a composed service, beside which an OCI image is pushed
    /// for node runtimes that cannot unpack a Wasm artifact.
    pub fn is_service(&self) -> bool {
        self.name.ends_with("service")
    }
}

/// The four packages, in the order they are published and printed.
pub const PACKAGES: [Package; 4] = [
    Package {
        name: "vector-processor",
        krate: "vector-processor",
        description: None,
    },
    Package {
        name: "http-api",
        krate: "http-api",
        description: None,
    },
    Package {
        name: "vector-service",
        krate: "http-api",
        description: Some(
            "The vector processor's JSON HTTP API: http-api composed with vector-processor, \
             a wasi:http/proxy component.",
        ),
    },
    Package {
        name: "vector-store-service",
        krate: "http-api",
        description: Some(
            "The vector processor's JSON HTTP API plus the stateful /vectors API over \
             wasi:keyvalue@0.2.0-draft2 (host-runner -S keyvalue, Spin): http-api's stateful \
             build composed with vector-processor.",
        ),
    },
];

/// The fields of a crate the annotations come from.
#[derive(Debug, Clone, Default)]
pub struct CrateMeta {
    /// `version`.
    pub version: String,
    /// `description`.
    pub description: String,
    /// `license`.
    pub license: String,
    /// `repository`, if the crate names one.
    pub repository: Option<String>,
}

/// Why `--registry` is not a `HOST:PORT`, if it is not.
pub fn registry_error(registry: &str) -> Option<String> {
    (registry.is_empty() || registry.contains('/')).then(|| {
        format!("--registry takes HOST:PORT (for example 127.0.0.1:5000), not {registry:?}")
    })
}

/// Whether `registry` (`HOST:PORT`, `[V6]:PORT`) is on loopback, where
/// plain HTTP is spoken as wkg does for localhost.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where the published code comes from: the `--source` flag, git's
/// `origin` and `HEAD`, where known.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// `--source`.
    pub source: Option<String>,
    /// `git remote get-url origin`.
    pub origin: Option<String>,
    /// `git rev-parse HEAD`.
    pub revision: Option<String>,
}

/// The OCI annotations of `pkg`'s manifest: version, description,
/// licenses, title, and source and revision where known (the source is the
/// `--source` flag, else the crate's repository, else git's `origin`).
pub fn annotations(
    pkg: &Package,
    meta: &CrateMeta,
    from: &Provenance,
) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("org.opencontainers.image.version", meta.version.clone()),
        (
            "org.opencontainers.image.description",
            pkg.description
                .map_or_else(|| meta.description.clone(), str::to_string),
        ),
        ("org.opencontainers.image.licenses", meta.license.clone()),
        (
            "org.opencontainers.image.title",
            format!("vecproc:{}", pkg.name),
        ),
    ];
    let source = [&from.source, &meta.repository, &from.origin]
        .into_iter()
        .find_map(Clone::clone);
    if let Some(source) = source {
        out.push(("org.opencontainers.image.source", source));
    }
    if let Some(revision) = &from.revision {
        out.push(("org.opencontainers.image.revision", revision.clone()));
    }
    out
}

/// The manifest digest in `wkg oci push`'s output (its `digest: sha256:…`
/// line).
pub fn pushed_digest(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .map(str::trim)
        .filter(|d| d.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_host_and_port() {
        assert_eq!(registry_error("127.0.0.1:5000"), None);
        assert_eq!(registry_error("[::1]:5000"), None);
        for bad in ["", "127.0.0.1:5000/vecproc", "oci://x:1"] {
            let message = registry_error(bad).expect(bad);
            assert!(message.contains("HOST:PORT"), "{message}");
        }
    }

    #[test]
    fn only_loopback_registries_get_plain_http() {
        for host in [
            "127.0.0.1:5000",
            "127.8.0.1:1",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1:5000",
            "registry.example:443",
            "[fe80::1]:5000",
            "localhost.example:1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn annotations_take_the_source_from_the_flag_then_the_crate_then_git() {
        let meta = CrateMeta {
            version: "0.1.0".into(),
            description: "crate text".into(),
            license: "Apache-2.0".into(),
            repository: Some("https://crate.example/repo".into()),
        };
        let get = |a: &[(&str, String)], k: &str| {
            a.iter()
                .find(|(key, _)| key.ends_with(k))
                .map(|(_, v)| v.clone())
        };
        let git = Provenance {
            source: None,
            origin: Some("https://origin.example".into()),
            revision: Some("abc123".into()),
        };
        let processor = annotations(&PACKAGES[0], &meta, &git);
        assert_eq!(get(&processor, ".description").unwrap(), "crate text");
        assert_eq!(
            get(&processor, ".title").unwrap(),
            "vecproc:vector-processor"
        );
        assert_eq!(
            get(&processor, ".source").unwrap(),
            "https://crate.example/repo"
        );
        assert_eq!(get(&processor, ".revision").unwrap(), "abc123");
        let flag = Provenance {
            source: Some("https://flag.example".into()),
            ..Provenance::default()
        };
        let service = annotations(&PACKAGES[2], &meta, &flag);
        assert!(get(&service, ".description").unwrap().contains("composed"));
        assert_eq!(get(&service, ".source").unwrap(), "https://flag.example");
        assert_eq!(get(&service, ".revision"), None);
        let bare = CrateMeta {
            repository: None,
            ..meta
        };
        assert_eq!(
            get(
                &annotations(&PACKAGES[1], &bare, &Provenance::default()),
                ".source"
            ),
            None
        );
        let origin = annotations(&PACKAGES[1], &bare, &git);
        assert_eq!(get(&origin, ".source").unwrap(), "https://origin.example");
    }

    #[test]
    fn reads_the_digest_wkg_prints() {
        let out = "pushed to 127.0.0.1:5000/vecproc/http-api:0.1.0\ndigest: sha256:ab12\n";
        assert_eq!(pushed_digest(out), Some("sha256:ab12"));
        assert_eq!(pushed_digest("digest: md5:00\n"), None);
        assert_eq!(pushed_digest(""), None);
    }

    #[test]
    fn services_are_the_composed_packages() {
        let services: Vec<_> = PACKAGES
            .iter()
            .filter(|p| p.is_service())
            .map(|p| p.name)
            .collect();
        assert_eq!(services, ["vector-service", "vector-store-service"]);
    }
}
