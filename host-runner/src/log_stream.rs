//! Guest stdout and stderr, forwarded the way `wasmtime serve` does: each
//! line goes to the host's stdout or stderr prefixed with
//! `stdout [N] :: ` / `stderr [N] :: ` (N is the instance id); a write that
//! does not end a line continues the same line without a new prefix.
//! `--no-logging-prefix` passes the bytes through untouched.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which host stream a guest stream goes to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Host stdout.
    Stdout,
    /// Host stderr.
    Stderr,
}

/// A guest output stream with an optional line prefix.
#[derive(Clone)]
pub struct LogStream {
    target: Target,
    prefix: Option<Arc<str>>,
    /// Whether the next byte starts a line.
    at_line_start: Arc<Mutex<bool>>,
}

impl LogStream {
    /// A stream for instance `id`; `prefix: false` forwards raw bytes.
    pub fn new(target: Target, id: u64, prefix: bool) -> Self {
        let name = match target {
            Target::Stdout => "stdout",
            Target::Stderr => "stderr",
        };
        LogStream {
            target,
            prefix: prefix.then(|| Arc::from(format!("{name} [{id}] :: "))),
            at_line_start: Arc::new(Mutex::new(true)),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(bytes.len() + 32);
        match &self.prefix {
            None => out.extend_from_slice(bytes),
            Some(prefix) => {
                let mut at_start = self.at_line_start.lock().expect("not poisoned");
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    if *at_start {
                        out.extend_from_slice(prefix.as_bytes());
                    }
                    out.extend_from_slice(line);
                    *at_start = line.ends_with(b"\n");
                }
            }
        }
        match self.target {
            Target::Stdout => {
                let mut s = io::stdout().lock();
                s.write_all(&out)?;
                s.flush()
            }
            Target::Stderr => io::stderr().lock().write_all(&out),
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_bytes(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
