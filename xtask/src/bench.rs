//! `cargo xtask bench`: builds what is measured, then runs the measurements,
//! which live in `crates/vecproc-bench` (`vecproc-bench
//! kernels|serve|protocols|stateful|startup|report`) and `js/bench/`; this
//! module only builds, installs and invokes. Everything is written to
//! `<target>/bench/`. Timings are printed and reported, never asserted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use clap::ValueEnum;

use crate::run::{cargo_in, run, step};
use crate::{apt, build, js, paths, tools};

/// A part of the benchmark, in the order they run.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Part {
    /// wrk against `wasmtime serve`, host-runner and the native server.
    Serve,
    /// h2load: HTTP/1.1, h2c, TLS 1.3 with h1 and h2, native beside host-runner.
    Protocols,
    /// The stateful API on the embedded store and Redis (redis-benchmark beside).
    Stateful,
    /// The kernels natively and in the component's three builds (Wasmtime).
    Kernels,
    /// The kernels and the JavaScript boundary in Node and Chromium.
    Js,
    /// Fresh instance, process and workerd; sizes; registry pulls.
    Startup,
    /// The report (report.md, report.json, chart.svg) from the JSON written.
    Report,
}

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Run only these parts (comma-separated); `--only report` rewrites the
    /// report from the last run's JSON.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Skip these parts (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Part>,
    /// Small sizes and few runs: checks the pipeline, not the machine.
    #[arg(long)]
    quick: bool,
    /// Timed runs per kernel case (after warm-up).
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Seconds of load per route in the serving benchmarks.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Rounds of the serving benchmarks (servers alternate within a round;
    /// the report gives medians).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

impl Args {
    fn runs(&self, part: Part) -> bool {
        (self.only.is_empty() || self.only.contains(&part)) && !self.skip.contains(&part)
    }

    /// The options a part of `vecproc-bench` takes (its paths default to
    /// the binaries beside it and to `<target>/`).
    fn options(&self, part: Part) -> Vec<String> {
        let (seconds, rounds) = match self.quick {
            true => (1, 1),
            false => (self.seconds, self.rounds),
        };
        let mut options = match part {
            Part::Serve | Part::Protocols => {
                vec![format!("--seconds={seconds}"), format!("--rounds={rounds}")]
            }
            Part::Kernels => vec![format!("--runs={}", self.runs)],
            _ => Vec::new(),
        };
        let quick = matches!(part, Part::Kernels | Part::Stateful | Part::Startup);
        if self.quick && quick {
            options.push("--quick".into());
        }
        options
    }
}

/// `cargo build --release` of the packages `vecproc-bench` runs, always
/// this one set, so that features resolve alike and no dependency is built
/// twice; `portable-sha` builds `vecproc-bench` alone with sha2's portable
/// code path. Returns `<target>/release/vecproc-bench`.
fn release(root: &Path, portable_sha: bool) -> Result<PathBuf> {
    let packages = match portable_sha {
        true => "-p vecproc-bench --features portable-sha",
        false => "-p host-runner -p vecproc-bench -p vecproc-cli",
    };
    step(&format!(
        "building the benchmark (cargo build --release {packages})"
    ));
    run(&mut cargo_in(root, &format!("build --release {packages}")))?;
    Ok(paths::target().join("release/vecproc-bench"))
}

/// Runs the selected parts.
pub fn bench(root: &Path, args: Args) -> Result<()> {
    let parts: Vec<Part> = Part::value_variants()
        .iter()
        .copied()
        .filter(|&p| args.runs(p))
        .collect();
    if parts.iter().any(|&p| p != Part::Report) {
        build::build(root)?;
    }
    // What each part needs beyond the build, before any measurement runs.
    for part in &parts {
        match part {
            Part::Serve => {
                apt::ensure(&[apt::WRK])?;
                std::env::set_var("VECPROC_WASMTIME", tools::ensure(&tools::WASMTIME)?);
            }
            Part::Protocols => apt::ensure(&[apt::H2LOAD])?,
            Part::Stateful => apt::ensure(&[apt::REDIS])?,
            Part::Kernels => build::build_bench_variants(root)?,
            Part::Js => js::prepare(root)?,
            Part::Startup => {
                std::env::set_var("VECPROC_WKG", tools::ensure(&tools::WKG)?);
                js::prepare_node(root)?;
            }
            Part::Report => {}
        }
    }
    let out = paths::target().join("bench");
    fs::create_dir_all(&out)?;
    // The JavaScript part alone runs no `vecproc-bench`.
    let bench = paths::target().join("release/vecproc-bench");
    if parts.iter().any(|&p| p != Part::Js) {
        release(root, false)?;
    }
    for part in parts {
        if part == Part::Js {
            js::bench(root, &out, args.runs, args.quick)?;
            continue;
        }
        let name = part.to_possible_value().expect("no part is hidden");
        step(&format!("vecproc-bench {}", name.get_name()));
        run(Command::new(&bench)
            .arg(name.get_name())
            .args(args.options(part)))?;
        if part == Part::Kernels {
            // Once more natively with sha2's portable code path, the code
            // the WASM runs; then the default build back for the rest.
            let portable = release(root, true)?;
            run(Command::new(portable)
                .arg("kernels")
                .args(args.options(part)))?;
            release(root, false)?;
        }
    }
    Ok(())
}
