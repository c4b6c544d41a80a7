//! `cargo xtask fuzz [--time SECONDS] [--target NAME]`: runs the libFuzzer
//! targets in `fuzz/` (the JSON and binary body parsers, the router, the
//! statistics), one after another, each for a bounded time, and prints the
//! executions of each. Installs a nightly toolchain pinned by date and
//! cargo-fuzz only when fuzzing is asked for. Fuzzing is never part of
//! `cargo xtask test`, but the targets' properties are (`fuzz/src/`, replayed
//! on the committed seeds in `fuzz/seeds/` on stable). A crash fails the task
//! and names the input libFuzzer saved; copy it into `fuzz/seeds/TARGET/`
//! so every test run replays it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::run::{output, run, step};
use crate::tools::{self, Tool};

/// The nightly the targets are built with (sanitizers and libFuzzer's
/// coverage instrumentation need one); rustc 1.101.0-nightly 2026-10-29.
pub const NIGHTLY: &str = "nightly-2026-10-30";

/// cargo-fuzz builds and runs the targets.
pub const CARGO_FUZZ: Tool = Tool {
    krate: "cargo-fuzz",
    bin: "cargo-fuzz",
    version: "0.13.2",
    features: None,
    minutes: 2,
};

/// Every target in `fuzz/fuzz_targets/`, with its libFuzzer dictionary.
const TARGETS: &[(&str, Option<&str>)] = &[
    ("json_body", Some("dicts/json_body.dict")),
    ("binary_body", None),
    ("router", Some("dicts/router.dict")),
    ("statistics", None),
];

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Fuzz only this target (json_body, binary_body, router, statistics).
    #[arg(long)]
    target: Option<String>,
}

/// What one target's run did.
struct Outcome {
    target: &'static str,
    seconds: f64,
    executions: Option<u64>,
    crash: Option<String>,
}

/// Runs the selected targets for `args.time` seconds each.
pub fn fuzz(root: &Path, args: Args) -> Result<()> {
    let selected: Vec<_> = match &args.target {
        None => TARGETS.to_vec(),
        Some(name) => match TARGETS.iter().find(|(t, _)| t == name) {
            Some(t) => vec![*t],
            None => bail!(
                "no fuzz target {name:?}; the targets are {}",
                TARGETS
                    .iter()
                    .map(|(t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    ensure_nightly()?;
    tools::ensure(&CARGO_FUZZ)?;
    let fuzz_dir = root.join("fuzz");
    let logs = fuzz_dir.join("target/logs");
    fs::create_dir_all(&logs)?;

    step(&format!("building the fuzz targets with {NIGHTLY}"));
    run(cargo_fuzz(&fuzz_dir).arg("build"))?;

    let mut outcomes = Vec::new();
    for (target, dict) in selected {
        step(&format!("fuzzing {target} for {} s", args.time));
        let log = logs.join(format!("{target}.log"));
        let mut cmd = cargo_fuzz(&fuzz_dir);
        // New inputs go to corpus/TARGET (not committed); the committed
        // seeds are read as a second corpus.
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        cmd.arg("run")
            .arg(target)
            .arg(&corpus)
            .arg(fuzz_dir.join("seeds").join(target))
            .args(["--", "-print_final_stats=1"])
            .arg(format!("-max_total_time={}", args.time));
        if let Some(dict) = dict {
            cmd.arg(format!("-dict={}", fuzz_dir.join(dict).display()));
        }
        let start = Instant::now();
        let status = cmd
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .status()
            .context("starting cargo fuzz")?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        let outcome = Outcome {
            target,
            seconds: start.elapsed().as_secs_f64(),
            executions: executions(&text),
            crash: (!status.success()).then(|| {
                crash_input(&text)
                    .unwrap_or_else(|| format!("exit {status}, see {}", log.display()))
            }),
        };
        eprintln!(
            "    {target}: {} executions{}",
            outcome
                .executions
                .map_or_else(|| "?".into(), |n| n.to_string()),
            outcome
                .crash
                .as_deref()
                .map_or_else(String::new, |c| format!(", CRASH: {c}"))
        );
        outcomes.push(outcome);
    }

    eprintln!("\n| target | seconds | executions | result |\n|---|---|---|---|");
    for o in &outcomes {
        eprintln!(
            "| {} | {:.0} | {} | {} |",
            o.target,
            o.seconds,
            o.executions.map_or_else(|| "?".into(), |n| n.to_string()),
            o.crash
                .as_deref()
                .map_or_else(|| "no crash".into(), |c| format!("crash: {c}"))
        );
    }
    let crashed: Vec<_> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if !crashed.is_empty() {
        bail!(
            "{} target(s) crashed; reproduce with `rustup run {NIGHTLY} cargo fuzz run --fuzz-dir fuzz TARGET INPUT` and add the input as a vecproc-core unit test",
            crashed.len()
        );
    }
    Ok(())
}

/// `rustup run NIGHTLY cargo fuzz ...` in `fuzz/`, with the variables the
/// outer stable cargo set removed so cargo-fuzz picks the nightly.
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(fuzz_dir)
        .args(["run", NIGHTLY, "cargo", "fuzz"])
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    cmd
}

/// Installs the pinned nightly (minimal profile) unless it is there.
fn ensure_nightly() -> Result<()> {
    let installed = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if installed.lines().any(|l| l.starts_with(NIGHTLY)) {
        eprintln!("    {NIGHTLY} is installed");
        return Ok(());
    }
    step(&format!(
        "installing {NIGHTLY} (rustup, minimal profile, for fuzzing only)"
    ));
    run(Command::new("rustup").args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]))
}

/// Executions libFuzzer reports at the end of a run
/// (`stat::number_of_executed_units`, else the `Done N runs` line).
fn executions(log: &str) -> Option<u64> {
    let stat = log.lines().find_map(|l| {
        l.strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    });
    stat.or_else(|| {
        log.lines().find_map(|l| {
            l.strip_prefix("Done ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
    })
}

/// The file libFuzzer wrote the crashing input to.
fn crash_input(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, path)| path.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_output() {
        let done = "#1024\tpulse  cov: 10\nDone 304837 runs in 11 second(s)\n";
        assert_eq!(executions(done), Some(304837));
        let stats = "Done 5 runs in 1 second(s)\nstat::number_of_executed_units: 7\n";
        assert_eq!(executions(stats), Some(7));
        assert_eq!(executions("nothing"), None);
        let crash = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='x/'; Test unit written to x/crash-ab12\n";
        assert_eq!(crash_input(crash).as_deref(), Some("x/crash-ab12"));
        assert_eq!(crash_input(done), None);
    }

    #[test]
    fn every_target_has_a_source_and_its_dictionary() {
        let fuzz = crate::repo_root().join("fuzz");
        for (target, dict) in TARGETS {
            assert!(
                fuzz.join(format!("fuzz_targets/{target}.rs")).is_file(),
                "{target}"
            );
            if let Some(dict) = dict {
                assert!(fuzz.join(dict).is_file(), "{dict}");
            }
        }
        let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        let declared = manifest.matches("[[bin]]").count();
        assert_eq!(
            declared,
            TARGETS.len(),
            "fuzz/Cargo.toml declares {declared} targets"
        );
    }
}
