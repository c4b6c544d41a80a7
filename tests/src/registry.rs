//! The registry suite's tools: the registry itself (`vecproc-harness`'s
//! Debian `docker-registry`, re-exported), and `wkg`, the xtask binary (for
//! `cargo xtask publish`) and openssl (key pairs and an independent
//! signature check).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use vecproc_harness::registry::Registry;
pub use vecproc_harness::temp_dir;

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
