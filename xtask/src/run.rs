//! Running commands with progress output and timing.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Prints a step heading.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs `cmd`, failing with its command line if it does not exit 0, and
/// prints how long it took.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    eprintln!("    done in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Runs `cmd` and returns its stdout, or `None` if it cannot start or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
