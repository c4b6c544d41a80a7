//! `cargo xtask serve`: build, compose, and serve on 127.0.0.1:8080 with
//! host-runner (default; it composes the guests itself) or the real
//! `wasmtime serve` (`--runtime wasmtime`; composed with `wac plug`).

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
            let service = build::service_path();
            step("composing target/wasm/vector-service.wasm (host-runner compose)");
            run(Command::new(&host_runner)
                .arg("compose")
                .arg(&guests.api)
                .arg("--plug")
                .arg(&guests.processor)
                .arg("-o")
                .arg(&service))?;
            (Command::new(host_runner), service)
        }
        Runtime::Wasmtime => {
            let service = build::build_service(root)?.service;
            (Command::new(tools::ensure(&tools::WASMTIME)?), service)
        }
    };
    step(&format!("serving on http://{}/ (Ctrl-C stops)", args.addr));
    cmd.arg("serve").arg("--addr").arg(&args.addr).arg(&service);
    let err = cmd.exec();
    Err(err).context("starting the server")
}
