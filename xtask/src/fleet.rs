//! `cargo xtask fleet [ARGS...]`: builds the stateful service, host-runner
//! and its containerd shim (release), installs Debian's containerd, runc,
//! HAProxy, Redis and docker-registry where missing, then runs
//! `vecproc-bench fleet ARGS` (`--seconds 60`, `--rate
//! 200`, `--processes`): three nodes behind HAProxy through a rolling
//! restart and a `kill -9`, reported in `target/bench/fleet.md`.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::run::{cargo_in, run, step};
use crate::{apt, build};

/// Options of `cargo xtask fleet`: everything is passed to
/// `vecproc-bench fleet`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments for `vecproc-bench fleet`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Builds and installs what the fleet needs and runs it.
pub fn fleet(root: &Path, args: Args) -> Result<()> {
    build::build(root)?;
    apt::ensure(&apt::SHIM_BUILD)?;
    apt::ensure(&[apt::CONTAINERD, apt::HAPROXY, apt::REDIS, apt::REGISTRY])?;
    // The three in one build: one feature set, so nothing is built twice.
    step("building host-runner, its containerd shim and vecproc-bench (release)");
    let packages = "-p host-runner -p containerd-shim-host-runner -p vecproc-bench";
    run(&mut cargo_in(root, &format!("build --release {packages}")))?;
    step("running the fleet (vecproc-bench fleet)");
    run(
        Command::new(crate::paths::target().join("release/vecproc-bench"))
            .arg("fleet")
            .args(args.args),
    )
}
