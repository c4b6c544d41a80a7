//! A real Redis: Debian's `redis-server` on a free 127.0.0.1 port, with its
//! data in a directory the caller keeps (append-only file on, every write
//! logged before it is acknowledged to the client, `appendfsync always`),
//! so a server stopped with [`Redis::kill`] and started again with
//! [`Redis::start_in`] on the same port and directory comes back with its
//! data. Killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::free_port;
use crate::process::Child;

/// Debian's binary.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Why Redis did not come up.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Not installed.
    #[error("{REDIS_SERVER} is missing: `apt-get install redis-server` (cargo xtask test does)")]
    Missing,
    /// Starting it failed.
    #[error("starting redis-server: {0}")]
    Io(#[from] std::io::Error),
    /// No PONG within 10 s.
    #[error("redis-server on 127.0.0.1:{port} did not answer PING within 10 s: {log}")]
    NoAnswer {
        /// Its port.
        port: u16,
        /// The end of its log.
        log: String,
    },
}

/// A running Redis.
pub struct Redis {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub dir: PathBuf,
}

impl Redis {
    /// Starts Redis on a free port with its data in `dir`.
    pub fn start(dir: &Path) -> Result<Redis, RedisError> {
        Redis::start_in(dir, free_port())
    }

    /// Starts Redis on `port` with its data in `dir` (to restart one).
    pub fn start_in(dir: &Path, port: u16) -> Result<Redis, RedisError> {
        if !Path::new(REDIS_SERVER).exists() {
            return Err(RedisError::Missing);
        }
        std::fs::create_dir_all(dir)?;
        let log = dir.join("redis.log");
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
            ])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut redis = Redis {
            child: Child::new(child),
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis.ping() {
                return Ok(redis);
            }
            thread::sleep(Duration::from_millis(50));
        }
        redis.kill();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        Err(RedisError::NoAnswer {
            port,
            log: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        })
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether it answers PING.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The keys matching a glob `pattern` (Redis's KEYS), for tests to see
    /// what a server left in the store.
    pub fn keys(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "*2\r\n$4\r\nKEYS\r\n${}\r\n{pattern}\r\n", pattern.len())?;
        let mut reader = std::io::BufReader::new(s);
        let mut line = String::new();
        let mut read_line = |line: &mut String| -> std::io::Result<String> {
            line.clear();
            std::io::BufRead::read_line(&mut reader, line)?;
            Ok(line.trim_end().to_string())
        };
        let head = read_line(&mut line)?;
        let n: usize = head
            .strip_prefix('*')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("KEYS answered {head:?}")))?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let _len = read_line(&mut line)?;
            keys.push(read_line(&mut line)?);
        }
        Ok(keys)
    }

    /// Stops it at once (SIGKILL), as a crash or an outage would.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}
