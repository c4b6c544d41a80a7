//! `cargo xtask fuzz [--time SECONDS] [--target NAME]`: runs the libFuzzer
//! targets in `fuzz/` (`cargo fuzz list`) one after another, each for a
//! bounded time with its dictionary `fuzz/dicts/TARGET.dict` if there is
//! one, on a nightly pinned by date (sanitizers and libFuzzer's coverage
//! need one) with cargo-fuzz, both installed only when fuzzing is asked
//! for. libFuzzer prints each run's statistics and, on a crash, the file it
//! saved the input to: copy it into `fuzz/seeds/TARGET/` so every test run
//! replays it. Not part of `cargo xtask test`; the targets' properties are
//! (`fuzz/src/`, replayed on the committed seeds on stable).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::run::{output, run, step};
use crate::tools::{self, tool, Tool};

/// The nightly the targets are built with: rustc 1.101.0-nightly 2026-10-29.
const NIGHTLY: &str = "nightly-2026-10-30";

/// cargo-fuzz builds and runs the targets.
const CARGO_FUZZ: Tool = tool("cargo-fuzz", "cargo-fuzz", "0.13.2", None, 2);

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Fuzz only this target (`cargo fuzz list` names them).
    #[arg(long)]
    target: Option<String>,
}

/// Runs the selected targets for `args.time` seconds each.
pub fn fuzz(root: &Path, args: Args) -> Result<()> {
    let installed = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with(NIGHTLY)) {
        step(&format!(
            "installing {NIGHTLY} (rustup, minimal profile, for fuzzing only)"
        ));
        let install = ["toolchain", "install", NIGHTLY, "--profile", "minimal"];
        run(Command::new("rustup").args(install))?;
    }
    tools::ensure(&CARGO_FUZZ)?;
    let dir = root.join("fuzz");
    let listed = output(cargo_fuzz(&dir).arg("list")).unwrap_or_default();
    let mut selected: Vec<&str> = listed.split_whitespace().collect();
    if let Some(name) = &args.target {
        if !selected.contains(&name.as_str()) {
            bail!(
                "no fuzz target {name:?}; the targets are {}",
                selected.join(", ")
            );
        }
        selected = vec![name];
    }
    step(&format!("building the fuzz targets with {NIGHTLY}"));
    run(cargo_fuzz(&dir).arg("build"))?;
    let mut crashed = Vec::new();
    for target in selected {
        step(&format!("fuzzing {target} for {} s", args.time));
        // New inputs go to corpus/TARGET (not committed); the committed
        // seeds are read as a second corpus.
        let corpus = dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        let mut cmd = cargo_fuzz(&dir);
        cmd.args(["run", target])
            .arg(&corpus)
            .arg(dir.join("seeds").join(target))
            .args(["--", "-print_final_stats=1"])
            .arg(format!("-max_total_time={}", args.time));
        let dict = dir.join("dicts").join(format!("{target}.dict"));
        if dict.is_file() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        if run(&mut cmd).is_err() {
            crashed.push(target);
        }
    }
    if !crashed.is_empty() {
        bail!(
            "{} crashed (libFuzzer named the saved input above); reproduce with `rustup run \
             {NIGHTLY} cargo fuzz run --fuzz-dir fuzz TARGET INPUT` and add the input to \
             fuzz/seeds/TARGET/",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// `rustup run NIGHTLY cargo fuzz ...` in `fuzz/`, with the variables the
/// outer stable cargo set removed so cargo-fuzz picks the nightly.
fn cargo_fuzz(dir: &Path) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(dir)
        .args(["run", NIGHTLY, "cargo", "fuzz"])
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    cmd
}
