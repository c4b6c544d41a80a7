//! `cargo xtask serve`: build, compose, and serve on 127.0.0.1:8080 with
//! host-runner (default) or the real `wasmtime serve` (`--runtime wasmtime`).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::step;
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
    let artifacts = build::build_service(root)?;
    let mut cmd = match args.runtime {
        Runtime::HostRunner => Command::new(build::host_runner(root)?),
        Runtime::Wasmtime => Command::new(tools::ensure(&tools::WASMTIME)?),
    };
    step(&format!("serving on http://{}/ (Ctrl-C stops)", args.addr));
    cmd.arg("serve")
        .arg("--addr")
        .arg(&args.addr)
        .arg(&artifacts.service);
    let err = cmd.exec();
    Err(err).context("starting the server")
}
