//! Running commands with progress output and timing: `vecproc-harness`'s,
//! shared with the benchmarks, with errors as `anyhow` for the tasks.

use std::path::Path;
use std::process::Command;

pub use vecproc_harness::cmd::{output, step};

/// [`vecproc_harness::cmd::run`], its error made an [`anyhow::Error`].
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    Ok(vecproc_harness::cmd::run(cmd)?)
}

/// The cargo that runs this task (`$CARGO`), for the builds it starts.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo ARGS` in `dir`, `args` split at spaces (paths go in with `.arg`).
pub fn cargo_in(dir: &Path, args: &str) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(dir).args(args.split_whitespace());
    cmd
}
