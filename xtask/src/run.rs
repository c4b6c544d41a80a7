//! Running commands with progress output and timing: `vecproc-harness`'s,
//! shared with the benchmarks, with errors as `anyhow` for the tasks.

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
