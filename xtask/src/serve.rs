//! `cargo xtask serve`: build, compose, and serve on 127.0.0.1:8080 with
//! host-runner (default; it composes the guests itself) or the real
//! `wasmtime serve` (`--runtime wasmtime`; composed with `wac plug`).
//! host-runner serves the stateful service (`vector-store-service.wasm`:
//! the API plus `/vectors`, kept in the embedded store under
//! `target/state/`); `wasmtime serve`, which cannot link its
//! `wasi:keyvalue@0.2.0-draft2`, the stateless `vector-service.wasm`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{run, step};
use crate::{build, tools};

/// Which server runs the component.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Runtime {
    /// This repository's Wasmtime embedder (release build).
    HostRunner,
    /// The pinned `wasmtime serve`.
    Wasmtime,
}

/// Options of `cargo xtask serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// The server to use.
    #[arg(long, value_enum, default_value = "host-runner")]
    runtime: Runtime,
}

/// Builds and then replaces this process with the server.
pub fn serve(root: &Path, args: Args) -> Result<()> {
    // Only the service: no test fixtures on the way to the serving line.
    let (mut cmd, service) = match args.runtime {
        Runtime::HostRunner => {
            // host-runner composes in-process (wac-graph), so serving with
            // it needs no wac CLI: one install fewer on a fresh machine.
            let guests = build::build_guests(root)?;
            let host_runner = build::host_runner(root)?;
            for (api, service) in [
                (&guests.api, build::service_path()),
                (&guests.stateful, build::store_service_path()),
            ] {
                step(&format!(
                    "composing target/wasm/{} (host-runner compose)",
                    service.file_name().unwrap_or_default().to_string_lossy()
                ));
                run(Command::new(&host_runner)
                    .arg("compose")
                    .arg(api)
                    .arg("--plug")
                    .arg(&guests.processor)
                    .arg("-o")
                    .arg(&service))?;
            }
            // The stateful service: the whole API plus /vectors, its
            // vectors in the embedded store under target/state/.
            let mut cmd = Command::new(host_runner);
            cmd.arg("serve")
                .arg("-Skeyvalue")
                .arg("--state-dir")
                .arg(crate::paths::target().join("state"));
            (cmd, build::store_service_path())
        }
        Runtime::Wasmtime => {
            // `wasmtime serve` 48 cannot link wasi:keyvalue@0.2.0-draft2:
            // the stateless service.
            let service = build::build_service(root)?;
            let mut cmd = Command::new(tools::ensure(&tools::WASMTIME)?);
            cmd.arg("serve");
            (cmd, service)
        }
    };
    step(&format!("serving on http://{}/ (Ctrl-C stops)", args.addr));
    cmd.arg("--addr").arg(&args.addr).arg(&service);
    let err = cmd.exec();
    Err(err).context("starting the server")
}
