//! Running a command as a step of a task: a heading, the command's own
//! output on the terminal, and how long it took.

use std::process::{Command, ExitStatus};
use std::time::Instant;

/// A command that could not be started or did not exit 0.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started.
    #[error("could not start {command}: {source}")]
    Start {
        /// The command line.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("{command} failed ({status})")]
    Failed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
}

/// Prints a step heading (`==> what`).
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs `cmd` with inherited stdio, failing with its command line if it
/// does not exit 0, and prints how long it took.
pub fn run(cmd: &mut Command) -> Result<(), CommandError> {
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let status = cmd.status().map_err(|source| CommandError::Start {
        command: command.clone(),
        source,
    })?;
    if !status.success() {
        return Err(CommandError::Failed { command, status });
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
