//! A real OCI registry for the registry suite: Debian's `docker-registry`
//! (Distribution 2.8) on a free 127.0.0.1 port with its storage in a
//! temporary directory, anonymous or behind htpasswd basic auth. Stopped
//! and its directory removed when dropped.
//!
//! Also the tools the suite drives: `wkg`, the xtask binary (for
//! `cargo xtask publish`) and openssl (key pairs and an independent
//! signature check).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The temporary directory (config, htpasswd, storage).
    pub dir: PathBuf,
    /// User and password, when it requires basic auth.
    pub auth: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A fresh temporary directory named after `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vecproc-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}

fn docker_registry_bin() -> PathBuf {
    std::env::var_os("VECPROC_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn anonymous() -> Registry {
        Registry::start(None)
    }

    /// Starts a registry that requires `user`/`password`.
    pub fn with_auth(user: &str, password: &str) -> Registry {
        Registry::start(Some((user.to_string(), password.to_string())))
    }

    fn start(auth: Option<(String, String)>) -> Registry {
        let bin = docker_registry_bin();
        assert!(
            bin.exists(),
            "{} is missing: `apt-get install docker-registry apache2-utils` (cargo xtask test does)",
            bin.display()
        );
        let dir = temp_dir("registry");
        let mut auth_config = String::new();
        if let Some((user, password)) = &auth {
            // Distribution accepts only bcrypt entries; htpasswd -B writes them.
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils) is needed for the auth registry");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
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
            std::fs::write(dir.join("config.yml"), config).unwrap();
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                let answer = ureq::get(&format!("http://{addr}/v2/"))
                    .timeout(Duration::from_secs(2))
                    .call();
                let up = match answer {
                    Ok(_) => true,
                    Err(ureq::Error::Status(401, _)) => true,
                    Err(_) => false,
                };
                if up {
                    return Registry {
                        child: Some(child),
                        addr,
                        dir,
                        auth,
                    };
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start on a loopback port");
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

    /// `GET /v2/<path>` with an `Accept` header; status and body.
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

    /// `PUT /v2/<repo>/manifests/<tag>` of an OCI image manifest.
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

/// The `wkg` executable: `$VECPROC_WKG`, else `~/.cargo/bin/wkg`, else PATH.
pub fn wkg_bin() -> PathBuf {
    crate::tool("VECPROC_WKG", "wkg")
}

/// The xtask executable (`$VECPROC_XTASK`, set by `cargo xtask test`, else
/// `<target>/debug/xtask`).
pub fn xtask_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VECPROC_XTASK") {
        return PathBuf::from(p);
    }
    crate::target_dir().join("debug/xtask")
}

/// Writes an ECDSA P-256 key pair with openssl, as the README tells users
/// to: `(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)`.
pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private)
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl pkey -pubout failed");
    (private, public)
}

/// A finished command: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn run_for(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        code,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}
