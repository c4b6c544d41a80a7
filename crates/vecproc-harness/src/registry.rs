//! A real OCI registry: Debian's `docker-registry` (Distribution 2.8) on a
//! free 127.0.0.1 port with its storage in a temporary directory, anonymous
//! or behind htpasswd basic auth (bcrypt entries, made by `htpasswd -B`).
//! Stopped and its directory removed when dropped.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::Child;
use crate::{free_port, temp_dir};

/// Why a registry did not come up.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The binary is not installed.
    #[error(
        "{0} is missing: `apt-get install docker-registry apache2-utils` (cargo xtask test does)"
    )]
    Missing(PathBuf),
    /// `htpasswd` (apache2-utils) failed or is missing.
    #[error("htpasswd (apache2-utils) could not make the password file: {0}")]
    Htpasswd(String),
    /// Writing its configuration or starting it failed.
    #[error("starting docker-registry: {0}")]
    Io(#[from] std::io::Error),
    /// Three attempts on fresh ports gave no answer on `/v2/` within 15 s each.
    #[error("docker-registry did not answer on a loopback port")]
    NoAnswer,
    /// `host-runner image` could not run, failed, or printed no pinned
    /// reference.
    #[error("host-runner image {reference}: {message}")]
    Push {
        /// What was being pushed (`ADDR/REPO:TAG`).
        reference: String,
        /// What went wrong, with what host-runner said.
        message: String,
    },
}

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The temporary directory (config, htpasswd, storage).
    pub dir: PathBuf,
    /// User and password, when it requires basic auth.
    pub auth: Option<(String, String)>,
}

/// `$VECPROC_DOCKER_REGISTRY`, else Debian's `/usr/bin/docker-registry`.
pub fn docker_registry_bin() -> PathBuf {
    std::env::var_os("VECPROC_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

impl Registry {
    /// Starts an anonymous registry, panicking if it does not come up.
    pub fn anonymous() -> Registry {
        Registry::try_start(None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a registry that requires `user`/`password`, panicking if it
    /// does not come up.
    pub fn with_auth(user: &str, password: &str) -> Registry {
        Registry::try_start(Some((user.to_string(), password.to_string())))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a registry, anonymous or with `auth`, and waits until `/v2/`
    /// answers (200, or 401 with auth).
    pub fn try_start(auth: Option<(String, String)>) -> Result<Registry, RegistryError> {
        let bin = docker_registry_bin();
        if !bin.exists() {
            return Err(RegistryError::Missing(bin));
        }
        let dir = temp_dir("registry");
        let mut auth_config = String::new();
        if let Some((user, password)) = &auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .map_err(|e| RegistryError::Htpasswd(e.to_string()))?;
            if !out.status.success() {
                return Err(RegistryError::Htpasswd(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
            std::fs::write(dir.join("htpasswd"), &out.stdout)?;
            auth_config = format!(
                "auth:\n  htpasswd:\n    realm: vecproc-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        for _attempt in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: vecproc-test-secret\n{auth_config}",
                dir.join("data").display()
            );
            std::fs::write(dir.join("config.yml"), config)?;
            let mut child = Child::new(
                Command::new(&bin)
                    .arg("serve")
                    .arg(dir.join("config.yml"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if child.has_exited() {
                    break;
                }
                let answer = ureq::get(&format!("http://{addr}/v2/"))
                    .timeout(Duration::from_secs(2))
                    .call();
                if matches!(answer, Ok(_) | Err(ureq::Error::Status(401, _))) {
                    return Ok(Registry {
                        child,
                        addr,
                        dir,
                        auth,
                    });
                }
                thread::sleep(Duration::from_millis(50));
            }
            child.kill();
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(RegistryError::NoAnswer)
    }

    /// Pushes `component` here as an OCI image node runtimes pull, with
    /// `host-runner image` (`host_runner`), as `REPO:TAG` (`repo_tag`).
    /// Returns the reference (`HOST:PORT/REPO:TAG`); an error carries what
    /// host-runner printed.
    pub fn push_image(
        &self,
        host_runner: &std::path::Path,
        component: &std::path::Path,
        repo_tag: &str,
    ) -> Result<String, RegistryError> {
        let reference = format!("{}/{repo_tag}", self.addr);
        let failed = |message: String| RegistryError::Push {
            reference: reference.clone(),
            message,
        };
        let out = Command::new(host_runner)
            .arg("image")
            .arg(component)
            .arg(format!("oci://{reference}"))
            .args(["--insecure-registry", &self.addr])
            .output()
            .map_err(|e| failed(format!("running {}: {e}", host_runner.display())))?;
        let printed = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        if !printed
            .trim()
            .starts_with(&format!("oci://{reference}@sha256:"))
        {
            return Err(failed(format!("printed no pinned reference: {printed}")));
        }
        Ok(reference)
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        self.child.kill();
    }

    /// The file holding blob `digest` (`sha256:HEX`) in the storage directory.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `GET /v2/<path>` with an `Accept` header; status and body (panics on
    /// a transport error).
    pub fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let result = ureq::get(&format!("http://{}/v2/{path}", self.addr))
            .set("accept", accept)
            .timeout(Duration::from_secs(10))
            .call();
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let status = response.status();
        let mut body = Vec::new();
        response
            .into_reader()
            .take(64 << 20)
            .read_to_end(&mut body)
            .unwrap();
        (status, body)
    }

    /// `PUT /v2/<repo>/manifests/<tag>` of an OCI image manifest; the status
    /// (panics on a transport error).
    pub fn put_manifest(&self, repo: &str, tag: &str, manifest: &[u8]) -> u16 {
        let result = ureq::put(&format!("http://{}/v2/{repo}/manifests/{tag}", self.addr))
            .set("content-type", "application/vnd.oci.image.manifest.v1+json")
            .timeout(Duration::from_secs(10))
            .send_bytes(manifest);
        match result {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("PUT manifest: {e}"),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
