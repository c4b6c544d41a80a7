//! `cargo xtask soak [ARGS...]`: builds the service, the fixtures and
//! host-runner (release), then runs `vecproc-soak` (`tests/src/bin/`) with
//! ARGS (`--duration 5m`, `--clients 8`, `--max-rss-growth-mib 32`,
//! `--max-fd-growth 4`; `cargo run -p vecproc-tests --bin vecproc-soak --
//! --help` lists them).

use std::path::Path;

use anyhow::Result;

use crate::build;
use crate::run::{run, step};

/// Options of `cargo xtask soak`: everything is passed to `vecproc-soak`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments for `vecproc-soak`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Builds what the soak needs and runs it.
pub fn soak(root: &Path, args: Args) -> Result<()> {
    build::build(root)?;
    let host_runner = build::host_runner(root)?;
    step("running vecproc-soak (cargo run --release -p vecproc-tests --bin vecproc-soak)");
    let soak = "run --quiet --release -p vecproc-tests --bin vecproc-soak --";
    run(crate::run::cargo_in(root, soak)
        .arg("--host-runner")
        .arg(host_runner)
        .args(args.args))
}
