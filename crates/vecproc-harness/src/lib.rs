//! The processes every Rust consumer runs against, started one way: the
//! end-to-end suites (`tests/`), the benchmarks (`vecproc-bench`), the soak
//! and the contract check.
//!
//! - [`paths`]: where the built artifacts and the tools are (the target
//!   directory `cargo xtask` exports, `VECPROC_*` overrides);
//! - [`Server`]: a server process on a free loopback port, ready when it
//!   prints `wasmtime serve`'s `Serving HTTP on http://ADDR/` line, killed
//!   when dropped;
//! - [`registry`]: Debian's `docker-registry` on a free loopback port,
//!   anonymous or behind htpasswd, its storage removed when dropped;
//! - [`containerd`]: Debian's containerd on a private socket, with
//!   host-runner's shim on its `PATH`, cleaned up when dropped;
//! - [`certs`]: test certificates from the `openssl` CLI (self-signed, or
//!   issued by a test CA for a server or a client);
//! - [`process`]: a child process killed and reaped when dropped (Redis,
//!   the registry, HAProxy, Prometheus);
//! - [`cmd`]: a command run as a task's step (heading, timing, failure
//!   naming the command line), for the xtask and the benchmarks.
//!
//! Every start has a deadline, and a failure says what was missing (the
//! serving line, the process, the port) with what the process printed.
//! Functions named `try_*` return errors; the others panic with the same
//! message, which is what a test wants.

pub mod certs;
pub mod cmd;
pub mod containerd;
pub mod paths;
pub mod process;
pub mod redis;
pub mod registry;
mod server;

pub use paths::{artifact, host_runner_bin, repo_root, shim_bin, target_dir, tool, wasmtime_bin};
pub use registry::Registry;
pub use server::{open_fds, serve_command, status_kib, Launch, Server, StartError};

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A fresh, empty temporary directory named after `tag` and this process.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vecproc-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}
