//! The registry suite's tools: the registry itself (`vecproc-harness`'s
//! Debian `docker-registry`, re-exported), and `wkg`, `vecproc-publish` (what
//! `cargo xtask publish` runs) and openssl (key pairs and an independent
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

/// The `vecproc-publish` executable (what `cargo xtask publish` runs):
/// `$VECPROC_PUBLISH`, else `<target>/debug/vecproc-publish`, which `cargo
/// build --workspace` writes.
pub fn publish_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VECPROC_PUBLISH") {
        return PathBuf::from(p);
    }
    crate::target_dir().join("debug/vecproc-publish")
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

/// One request a [`Scripted`] server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names (lowercased) and values.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`Scripted`] server answers to one request.
pub enum Answer {
    /// A status, headers and a whole body (`content-length` is added).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// A status and headers, then a body of `x` without a length, written
    /// until the client goes away or `max` bytes are out.
    Endless(u16, Vec<(String, String)>, u64),
}

/// A loopback HTTP/1.1 server that answers each request as its script says
/// and records what it received: a registry or token endpoint that
/// misbehaves on purpose. Every answer closes its connection. Stopped on drop.
pub struct Scripted {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Scripted {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Scripted {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let script = Arc::new(script);
        let thread = thread::spawn({
            let (stop, seen, sent) = (Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&sent));
            move || {
                let mut connections = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((conn, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let (script, seen, sent, stop) = (
                        Arc::clone(&script),
                        Arc::clone(&seen),
                        Arc::clone(&sent),
                        Arc::clone(&stop),
                    );
                    connections.push(thread::spawn(move || {
                        let Some(request) = read_request(conn.try_clone().unwrap()) else {
                            return;
                        };
                        seen.lock().unwrap().push(request.clone());
                        let answer = script(&request);
                        let _ = write_answer(conn, answer, &sent, &stop);
                    }));
                }
                for c in connections {
                    let _ = c.join();
                }
            }
        });
        Scripted {
            addr,
            stop,
            seen,
            sent,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Body bytes written so far, over all answers.
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: std::net::TcpStream) -> Option<Seen> {
    use std::io::BufRead;
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = std::io::BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: u64 = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink()).ok()?;
    Some(Seen {
        method,
        target,
        headers,
    })
}

fn write_answer(
    mut conn: std::net::TcpStream,
    answer: Answer,
    sent: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    // A client that stops reading cannot hold the server (or its drop) for ever.
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = |status: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut text = format!("HTTP/1.1 {status} Scripted\r\nconnection: close\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = length {
            text.push_str(&format!("content-length: {n}\r\n"));
        }
        text + "\r\n"
    };
    match answer {
        Answer::Full(status, headers, body) => {
            conn.write_all(head(status, &headers, Some(body.len())).as_bytes())?;
            conn.write_all(&body)?;
            sent.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        Answer::Endless(status, headers, max) => {
            conn.write_all(head(status, &headers, None).as_bytes())?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut out = 0;
            while out < max && !stop.load(Ordering::Relaxed) {
                conn.write_all(&chunk)?;
                out += chunk.len() as u64;
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    }
    conn.flush()
}
