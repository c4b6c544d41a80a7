//! Shared harness for the end-to-end suites: where the built artifacts are,
//! a `wasmtime serve` process on a free loopback port, and small HTTP helpers.
//!
//! Suites need `cargo xtask build` to have run (`cargo xtask test` does it).

pub mod registry;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is one level below the root")
        .to_path_buf()
}

/// cargo's target directory: `$VECPROC_TARGET_DIR` (which `cargo xtask`
/// sets from `cargo metadata`), else `$CARGO_TARGET_DIR`, else `target/`
/// under the repository root.
pub fn target_dir() -> PathBuf {
    for var in ["VECPROC_TARGET_DIR", "CARGO_TARGET_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            };
        }
    }
    repo_root().join("target")
}

/// Path of a built component under `<target>/wasm/`, failing clearly if absent.
pub fn artifact(name: &str) -> PathBuf {
    let path = target_dir().join("wasm").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build` (or `cargo xtask test`) first",
        path.display()
    );
    path
}

/// An executable: `$VAR` if set, else `~/.cargo/bin/NAME`, else `NAME` on PATH.
pub fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".cargo/bin").join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// The `wasmtime` executable: `$VECPROC_WASMTIME`, else `~/.cargo/bin/wasmtime`,
/// else `wasmtime` on PATH.
pub fn wasmtime_bin() -> PathBuf {
    tool("VECPROC_WASMTIME", "wasmtime")
}

/// The `host-runner` executable: `$VECPROC_HOST_RUNNER`, else the workspace's
/// `<target>/debug/host-runner` (`cargo xtask test` builds it first).
pub fn host_runner_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VECPROC_HOST_RUNNER") {
        return PathBuf::from(p);
    }
    let p = target_dir().join("debug/host-runner");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p host-runner` (cargo xtask test does)",
        p.display()
    );
    p
}

/// A server process listening on 127.0.0.1; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `wasmtime serve --addr 127.0.0.1:0 <component>` with `extra`
    /// arguments and waits for its `Serving HTTP on` line.
    pub fn wasmtime(component: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(wasmtime_bin());
        cmd.arg("serve")
            .arg("--addr=127.0.0.1:0")
            .args(extra)
            .arg(component);
        Server::start(cmd)
    }

    /// Starts `host-runner serve --addr 127.0.0.1:0 <extra> <component>`.
    pub fn host_runner(component: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(host_runner_bin());
        cmd.arg("serve")
            .arg("--addr=127.0.0.1:0")
            .args(extra)
            .arg(component);
        Server::start(cmd)
    }

    /// Spawns `cmd` and waits (up to 60 s) for `Serving HTTP on http://ADDR/`
    /// on its stderr.
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out_reader = BufReader::new(child.stdout.take().expect("piped"));
        let out_sink = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in out_reader.lines().map_while(Result::ok) {
                out_sink.lock().unwrap().push(line);
            }
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("piped"));
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Serving HTTP on ") {
                    let _ = tx.send(rest.trim_end_matches('/').to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Server {
                child,
                base,
                stderr: lines,
                stdout,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} did not print its serving line; stderr:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `HOST:PORT` of host-runner's admin endpoints, from its
    /// `Admin endpoints on http://...` line (started with `--admin-addr`).
    pub fn admin_authority(&self) -> String {
        let stderr = self.stderr();
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("Admin endpoints on http://"))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no admin line: {stderr}"))
            .to_string()
    }

    /// A `/proc/PID/status` size field (`"VmRSS:"`, `"RssAnon:"`) in KiB,
    /// or 0 once the process is gone.
    pub fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None`
    /// if it is still running (or died from a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `host:port` of the listener.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Everything the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Everything the server has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Waits up to `timeout` for `needle` to appear in stdout or stderr.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page `wasmtime serve` answers every failure before a response with.
pub const WASMTIME_500_PAGE: &str = "<!doctype html>\n<html>\n<head>\n    <title>500 Internal Server Error</title>\n</head>\n<body>\n    <center>\n        <h1>500 Internal Server Error</h1>\n        <hr>\n        wasmtime\n    </center>\n</body>\n</html>";

/// A response reduced to what the suites check.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `content-type`, if any.
    pub content_type: Option<String>,
    /// `allow`, if any.
    pub allow: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, failing the test if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {v}"))
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

fn finish(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").map(str::to_string);
    let allow = response.header("allow").map(str::to_string);
    let mut body = Vec::new();
    response
        .into_reader()
        .take(1 << 30)
        .read_to_end(&mut body)
        .expect("reading the body");
    Reply {
        status,
        content_type,
        allow,
        body,
    }
}

/// Sends a request with `headers` and an optional body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    })
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &str) -> Reply {
    request(
        "POST",
        url,
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    )
}

/// Deterministic pseudo-random values in [-1e6, 1e6) (xorshift64*), so every
/// run sends the same data without a random-number dependency.
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (r >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6
        })
        .collect()
}

/// Little-endian f64 bytes.
pub fn to_le_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Values from little-endian f64 bytes.
pub fn from_le_bytes(bytes: &[u8]) -> Vec<f64> {
    assert_eq!(bytes.len() % 8, 0, "binary body length");
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
