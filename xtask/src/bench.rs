//! `cargo xtask bench`: builds what is measured, then runs the measurements,
//! which live in `crates/vecproc-bench` (`vecproc-bench
//! kernels|serve|protocols|stateful|startup|report`) and `js/bench/`; this
//! module only builds, installs and invokes. Everything is written to
//! `<target>/bench/`. Timings are printed and reported, never asserted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::run::{cargo, run, step};
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

    fn quick(&self) -> Option<&'static str> {
        self.quick.then_some("--quick")
    }

    /// `--seconds`, `--rounds` (one each with `--quick`) and `--out`.
    fn load(&self, out: &Path) -> Vec<std::ffi::OsString> {
        let (seconds, rounds) = if self.quick {
            (1, 1)
        } else {
            (self.seconds, self.rounds)
        };
        let (seconds, rounds) = (seconds.to_string(), rounds.to_string());
        let words = ["--seconds", &seconds, "--rounds", &rounds, "--out"];
        let mut args: Vec<std::ffi::OsString> = words.iter().map(Into::into).collect();
        args.push(out.into());
        args
    }
}

/// Builds release binaries of the root workspace (`-p PKG`... and
/// `features`) and returns `<target>/release`.
fn release(root: &Path, packages: &[&str], features: Option<&str>) -> Result<PathBuf> {
    step(&format!(
        "building {} (release{})",
        packages.join(", "),
        features
            .map(|f| format!(", --features {f}"))
            .unwrap_or_default()
    ));
    let mut cmd = cargo();
    cmd.current_dir(root).args(["build", "--release"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    run(cmd.args(features.map(|f| ["--features", f]).into_iter().flatten()))?;
    Ok(paths::target().join("release"))
}

/// Runs the selected parts.
pub fn bench(root: &Path, args: Args) -> Result<()> {
    let out = paths::target().join("bench");
    fs::create_dir_all(&out)?;
    let measures = [
        Part::Serve,
        Part::Protocols,
        Part::Stateful,
        Part::Kernels,
        Part::Js,
        Part::Startup,
    ];
    if measures.iter().any(|&p| args.runs(p)) {
        build::build(root)?;
    }
    let servers = || release(root, &["host-runner", "vecproc-bench"], None);
    if args.runs(Part::Serve) {
        apt::ensure("/usr/bin/wrk", &["wrk"], &[])?;
        let wasmtime = tools::ensure(&tools::WASMTIME)?;
        let bin = servers()?;
        step("serving benchmark (vecproc-bench serve)");
        run(Command::new(bin.join("vecproc-bench"))
            .arg("serve")
            .arg("--wasmtime")
            .arg(wasmtime)
            .arg("--host-runner")
            .arg(bin.join("host-runner"))
            .arg("--native")
            .arg(bin.join("vecproc-native-server"))
            .args(args.load(&out)))?;
    }
    if args.runs(Part::Protocols) {
        apt::ensure("/usr/bin/h2load", &["nghttp2-client"], &[])?;
        let bin = servers()?;
        step("protocol benchmark (vecproc-bench protocols)");
        run(Command::new(bin.join("vecproc-bench"))
            .arg("protocols")
            .arg("--host-runner")
            .arg(bin.join("host-runner"))
            .arg("--native")
            .arg(bin.join("vecproc-native-server"))
            .args(args.load(&out)))?;
    }
    if args.runs(Part::Stateful) {
        apt::ensure_redis()?;
        let bin = servers()?;
        step("stateful API benchmark (vecproc-bench stateful)");
        run(Command::new(bin.join("vecproc-bench"))
            .arg("stateful")
            .arg("--host-runner")
            .arg(bin.join("host-runner"))
            .arg("--component")
            .arg(build::store_service_path())
            .arg("--out")
            .arg(&out)
            .args(args.quick()))?;
    }
    if args.runs(Part::Kernels) {
        let variants = build::build_bench_variants(root)?;
        // Once more with sha2's portable code path: the code the WASM runs.
        for (features, file) in [
            (None, "rust.json"),
            (Some("portable-sha"), "rust-portable-sha.json"),
        ] {
            let bin = release(root, &["vecproc-bench"], features)?;
            step(&format!(
                "native and Wasmtime runners -> {}",
                out.join(file).display()
            ));
            run(Command::new(bin.join("vecproc-bench"))
                .arg("kernels")
                .arg("--wasm")
                .arg(&variants.shipped)
                .arg("--o3")
                .arg(&variants.o3)
                .arg("--size")
                .arg(&variants.size)
                .args(["--runs", &args.runs.to_string()])
                .args(args.quick())
                .arg("--out")
                .arg(out.join(file)))?;
        }
    }
    if args.runs(Part::Js) {
        js::prepare(root)?;
        let runs = args.runs.to_string();
        step("the JavaScript runners in Node (js/bench/kernels.mjs)");
        run(js::node(root)
            .arg("bench/kernels.mjs")
            .args(["--runs", &runs])
            .args(args.quick())
            .arg("--out")
            .arg(out.join("js.json")))?;
        step("the JavaScript boundary: wasm-bindgen, jco, plain JS in Node and Chromium (js/bench/boundary.mjs)");
        run(js::node(root)
            .arg("bench/boundary.mjs")
            .args(["--n", if args.quick { "100000" } else { "1000000" }])
            .args(["--runs", &runs])
            .arg("--out")
            .arg(&out)
            .arg("--chromium")
            .arg(js::CHROMIUM))?;
    }
    if args.runs(Part::Startup) {
        let wkg = tools::ensure(&tools::WKG)?;
        let js_dir = js::prepare_node(root)?;
        let bin = release(root, &["host-runner", "vecproc-bench", "vecproc-cli"], None)?;
        step("startup and size (vecproc-bench startup)");
        run(Command::new(bin.join("vecproc-bench"))
            .arg("startup")
            .arg("--service")
            .arg(build::service_path())
            .arg("--host-runner")
            .arg(bin.join("host-runner"))
            .arg("--native")
            .arg(bin.join("vecproc-native-server"))
            .arg("--cli")
            .arg(bin.join("vecproc"))
            .arg("--js-dir")
            .arg(js_dir)
            .arg("--wkg")
            .arg(wkg)
            .arg("--out")
            .arg(&out)
            .args(args.quick()))?;
    }
    if args.runs(Part::Report) {
        let bin = release(root, &["vecproc-bench"], None)?;
        run(Command::new(bin.join("vecproc-bench"))
            .arg("report")
            .arg("--dir")
            .arg(&out))?;
    }
    Ok(())
}
