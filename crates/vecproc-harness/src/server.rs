//! A server process on a free loopback port, ready at its serving line.
//!
//! `wasmtime serve`, host-runner, `vecproc-native-server` and the edge task
//! all print `Serving HTTP on http://ADDR/` on stderr once they listen; the
//! address is read from that line, so servers are started on port 0 and
//! never race for a port. Output is read on threads so a server never blocks
//! on a full pipe, and kept (or, for load tests, dropped after the serving
//! line). The process is killed and reaped when the [`Server`] is dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::paths::{host_runner_bin, wasmtime_bin};

/// The line every server here prints once it listens.
const SERVING: &str = "Serving HTTP on ";
/// host-runner's line for its admin endpoints (printed before [`SERVING`]).
const ADMIN: &str = "Admin endpoints on http://";

/// Why a server did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program could not be started at all.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The command line.
        program: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It exited (or closed stderr) before printing its serving line.
    #[error("{program} exited before printing `Serving HTTP on`; stderr:\n{stderr}")]
    Exited {
        /// The command line.
        program: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// It was still running but silent past the deadline; it has been killed.
    #[error("{program} did not print `Serving HTTP on` within {timeout:?}; stderr:\n{stderr}")]
    Timeout {
        /// The command line.
        program: String,
        /// The deadline.
        timeout: Duration,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// How to start a server: a command, a deadline, and whether to keep its
/// output after the serving line.
pub struct Launch {
    cmd: Command,
    timeout: Duration,
    keep_output: bool,
}

impl Launch {
    /// `cmd`, which must make the server listen on 127.0.0.1 (port 0 is
    /// best); 60 s to the serving line; output kept.
    pub fn new(cmd: Command) -> Launch {
        Launch {
            cmd,
            timeout: Duration::from_secs(60),
            keep_output: true,
        }
    }

    /// The deadline for the serving line.
    pub fn timeout(mut self, timeout: Duration) -> Launch {
        self.timeout = timeout;
        self
    }

    /// Drops the output after the serving line (still read, so the server
    /// never blocks): for load tests, where access logs would pile up.
    pub fn discard_output(mut self) -> Launch {
        self.keep_output = false;
        self
    }

    /// Spawns the command and waits for its serving line.
    pub fn start(mut self) -> Result<Server, StartError> {
        let program = format!("{:?}", self.cmd);
        let spawned = Instant::now();
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| StartError::Spawn {
                program: program.clone(),
                source,
            })?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(
            child.stdout.take().expect("piped"),
            Arc::clone(&stdout),
            self.keep_output,
            None,
        );
        let (tx, rx) = mpsc::channel();
        collect(
            child.stderr.take().expect("piped"),
            Arc::clone(&stderr),
            self.keep_output,
            Some(tx),
        );
        let text = |lines: &Arc<Mutex<Vec<String>>>| lines.lock().unwrap().join("\n");
        match rx.recv_timeout(self.timeout) {
            Ok(Some(base)) => Ok(Server {
                child,
                base,
                listening: spawned.elapsed(),
                stderr,
                stdout,
            }),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(StartError::Exited {
                    program,
                    stderr: text(&stderr),
                })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(StartError::Timeout {
                    program,
                    timeout: self.timeout,
                    stderr: text(&stderr),
                })
            }
        }
    }
}

/// Reads `pipe` line by line on a thread into `sink` (every line before the
/// serving line, and the rest when `keep`); with `ready`, sends the serving
/// line's address once, or `None` if the pipe ends first.
fn collect(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    keep: bool,
    ready: Option<mpsc::Sender<Option<String>>>,
) {
    thread::spawn(move || {
        let mut ready = ready;
        let mut serving = false;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(SERVING) {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Some(rest.trim_end_matches('/').to_string()));
                }
                serving = true;
            }
            if keep || !serving || line.starts_with(SERVING) {
                sink.lock().unwrap().push(line);
            }
        }
        if let Some(tx) = ready {
            let _ = tx.send(None);
        }
    });
}

/// A server process listening on 127.0.0.1; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` with TLS), without a trailing slash.
    pub base: String,
    listening: Duration,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `cmd` with [`Launch`]'s defaults, panicking with the
    /// [`StartError`] if it does not come up.
    pub fn start(cmd: Command) -> Server {
        Launch::new(cmd).start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `wasmtime serve --addr=127.0.0.1:0 EXTRA... COMPONENT` (panics if it
    /// does not come up).
    pub fn wasmtime(component: &Path, extra: &[&str]) -> Server {
        Server::start(serve_command(&wasmtime_bin(), component, extra))
    }

    /// `host-runner serve --addr=127.0.0.1:0 EXTRA... COMPONENT` (panics if
    /// it does not come up).
    pub fn host_runner(component: &Path, extra: &[&str]) -> Server {
        Server::start(serve_command(&host_runner_bin(), component, extra))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// From spawning to the serving line.
    pub fn listening(&self) -> Duration {
        self.listening
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `host:port` of the listener.
    pub fn authority(&self) -> &str {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    /// `HOST:PORT` of host-runner's admin endpoints, from its `Admin
    /// endpoints on http://...` line, if it printed one.
    pub fn admin(&self) -> Option<String> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix(ADMIN))
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
    }

    /// [`Server::admin`], panicking if there is none (started without
    /// `--admin-addr`).
    pub fn admin_authority(&self) -> String {
        self.admin()
            .unwrap_or_else(|| panic!("no admin line: {}", self.stderr()))
    }

    /// Everything the server has written to stderr so far (with
    /// [`Launch::discard_output`], up to the serving line).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Everything the server has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Waits up to `timeout` for `needle` to appear in stdout or stderr.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`status_kib`] of this process.
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid(), field)
    }

    /// [`open_fds`] of this process.
    pub fn open_fds(&self) -> usize {
        open_fds(self.pid())
    }

    /// Sends SIGTERM (with `kill`, as an operator would): how `kill` ended.
    pub fn terminate(&self) -> std::io::Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or
    /// `None` if it is still running (or died from a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/PID/status` size field (`"VmRSS:"`, `"RssAnon:"`) of `pid` in
/// KiB, or 0 once the process is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`), or 0 once
/// it is gone.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `BIN serve --addr=127.0.0.1:0 EXTRA... COMPONENT`.
pub fn serve_command(bin: &Path, component: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(extra)
        .arg(component);
    cmd
}
