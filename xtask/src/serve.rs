//! `cargo xtask serve`: build, compose, and serve with the real `wasmtime serve`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::step;
use crate::{build, tools};

/// Options of `cargo xtask serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
}

/// Builds and then replaces this process with `wasmtime serve`.
pub fn serve(root: &Path, args: Args) -> Result<()> {
    let artifacts = build::build(root)?;
    let wasmtime = tools::ensure(root, &tools::WASMTIME)?;
    step(&format!(
        "serving with wasmtime serve on http://{}/ (Ctrl-C stops)",
        args.addr
    ));
    let err = Command::new(&wasmtime)
        .arg("serve")
        .arg("--addr")
        .arg(&args.addr)
        .arg(&artifacts.service)
        .exec();
    Err(err).with_context(|| format!("starting {}", wasmtime.display()))
}
