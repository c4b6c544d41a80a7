//! `cargo xtask bench`: builds what is measured, then runs the measurements,
//! which live in `crates/vecproc-bench` (`vecproc-bench
//! kernels|serve|startup|report`) and `js/bench/kernels.mjs`; this module
//! only builds, installs and invokes.
//!
//! The kernels run in the benchmark component `vector-kernels.wasm`, built as
//! the processor ships (opt-level 3 with `simd128`) and, beside it, at
//! opt-level 3 without SIMD and for size; natively once more with sha2's
//! portable code path; and in Node (jco, plain JavaScript). Everything is
//! written to `<target>/bench/`. Timings are printed and reported, never
//! asserted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::run::{cargo, run, step};
use crate::{build, js};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per case (after warm-up).
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Small sizes and few runs: checks the pipeline, not the machine.
    #[arg(long)]
    quick: bool,
    /// Skip the JavaScript runners.
    #[arg(long)]
    no_js: bool,
    /// Skip the kernels (native, WASM, JS) and only run the serving benchmark.
    #[arg(long)]
    serve_only: bool,
    /// Only rewrite the report from the JSON of the last run.
    #[arg(long)]
    report_only: bool,
    /// Only measure startup (fresh instance, process, workerd) and sizes.
    #[arg(long)]
    startup_only: bool,
    /// Skip the startup and size measurements.
    #[arg(long)]
    no_startup: bool,
    /// Skip the serving benchmark (wrk against wasmtime serve and host-runner).
    #[arg(long)]
    no_serve: bool,
    /// Only run the protocol benchmark (h2load: HTTP/1.1, h2c, TLS 1.3 with
    /// h1 and h2, native beside host-runner).
    #[arg(long)]
    protocols_only: bool,
    /// Only run the stateful API's benchmark (appends as the vector grows,
    /// statistics, on the embedded store and Redis, with redis-benchmark).
    #[arg(long)]
    stateful_only: bool,
    /// Seconds of load per route in the serving benchmark.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Rounds of the serving benchmark (servers alternate within a round;
    /// the report gives medians).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

/// Builds `vecproc-bench` in release (with `features`) and returns its path.
fn vecproc_bench(root: &Path, features: Option<&str>) -> Result<PathBuf> {
    step(&format!(
        "building vecproc-bench (release{})",
        features
            .map(|f| format!(", --features {f}"))
            .unwrap_or_default()
    ));
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["build", "--release", "-p", "vecproc-bench"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    run(&mut cmd)?;
    Ok(crate::paths::target().join("release/vecproc-bench"))
}

/// Runs every benchmark and writes the report.
pub fn bench(root: &Path, args: Args) -> Result<()> {
    let out = crate::paths::target().join("bench");
    fs::create_dir_all(&out)?;
    if args.report_only {
        return report(root, &out);
    }
    if args.startup_only {
        return startup(root, &out, args.quick);
    }
    if args.protocols_only {
        build::build_service(root)?;
        return protocols(root, &out, &args);
    }
    if args.stateful_only {
        build::build_service(root)?;
        return stateful(root, &out, args.quick);
    }
    build::build(root)?;
    if !args.no_serve {
        // wrk from Debian; without root (or apt) the serving rows are skipped.
        match crate::apt::ensure("/usr/bin/wrk", &["wrk"], &[]) {
            Ok(()) => serve(root, &out, &args)?,
            Err(e) => eprintln!("    skipping the serving benchmark: {e:#}"),
        }
        protocols(root, &out, &args)?;
        stateful(root, &out, args.quick)?;
    }
    if args.serve_only {
        return Ok(());
    }
    let variants = build::build_bench_variants(root)?;
    let quick: &[&str] = if args.quick { &["--quick"] } else { &[] };
    let runs = args.runs.to_string();
    for (features, file) in [
        (None, "rust.json"),
        (Some("portable-sha"), "rust-portable-sha.json"),
    ] {
        let bench = vecproc_bench(root, features)?;
        step(&format!(
            "native and Wasmtime runners -> {}",
            out.join(file).display()
        ));
        run(Command::new(bench)
            .arg("kernels")
            .arg("--wasm")
            .arg(&variants.shipped)
            .arg("--o3")
            .arg(&variants.o3)
            .arg("--size")
            .arg(&variants.size)
            .args(["--runs", &runs])
            .args(quick)
            .arg("--out")
            .arg(out.join(file)))?;
    }
    if !args.no_js {
        js::prepare(root)?;
        step("the JavaScript runners in Node (js/bench/kernels.mjs)");
        run(Command::new("node")
            .current_dir(root.join("js"))
            .arg("bench/kernels.mjs")
            .args(["--runs", &runs])
            .args(quick)
            .arg("--out")
            .arg(out.join("js.json")))?;
        step("the JavaScript boundary: wasm-bindgen, jco, plain JS in Node and Chromium (js/bench/boundary.mjs)");
        run(Command::new("node")
            .current_dir(root.join("js"))
            .arg("bench/boundary.mjs")
            .args(["--n", if args.quick { "100000" } else { "1000000" }])
            .args(["--runs", &runs])
            .arg("--out")
            .arg(&out)
            .arg("--chromium")
            .arg(js::CHROMIUM))?;
    }
    if !args.no_startup {
        startup(root, &out, args.quick)?;
    }
    report(root, &out)
}

/// `vecproc-bench serve`, after building the servers.
fn serve(root: &Path, out: &Path, args: &Args) -> Result<()> {
    let wasmtime = crate::tools::ensure(&crate::tools::WASMTIME)?;
    let host_runner = build::host_runner(root)?;
    let native = native_server(root)?;
    let bench = vecproc_bench(root, None)?;
    step("serving benchmark (vecproc-bench serve)");
    run(Command::new(bench)
        .arg("serve")
        .arg("--wasmtime")
        .arg(wasmtime)
        .arg("--host-runner")
        .arg(host_runner)
        .arg("--native")
        .arg(native)
        .args(load_args(args, out)))
}

/// `vecproc-bench protocols`, after installing h2load (Debian's
/// nghttp2-client) and building the servers; skipped with a message where
/// apt cannot install it.
fn protocols(root: &Path, out: &Path, args: &Args) -> Result<()> {
    if let Err(e) = crate::apt::ensure("/usr/bin/h2load", &["nghttp2-client"], &[]) {
        eprintln!("    skipping the protocol benchmark: {e:#}");
        return Ok(());
    }
    let host_runner = build::host_runner(root)?;
    let native = native_server(root)?;
    let bench = vecproc_bench(root, None)?;
    step("protocol benchmark (vecproc-bench protocols)");
    run(Command::new(bench)
        .arg("protocols")
        .arg("--host-runner")
        .arg(host_runner)
        .arg("--native")
        .arg(native)
        .args(load_args(args, out)))
}

/// `vecproc-bench stateful`, after installing Redis (Debian's
/// redis-server, its packaged service stopped) and building host-runner.
fn stateful(root: &Path, out: &Path, quick: bool) -> Result<()> {
    crate::apt::ensure_redis()?;
    let host_runner = build::host_runner(root)?;
    let bench = vecproc_bench(root, None)?;
    step("stateful API benchmark (vecproc-bench stateful)");
    run(Command::new(bench)
        .arg("stateful")
        .arg("--host-runner")
        .arg(host_runner)
        .arg("--component")
        .arg(build::store_service_path())
        .arg("--out")
        .arg(out)
        .args(quick.then_some("--quick")))
}

/// `--seconds`, `--rounds` (one each with `--quick`) and `--out` for the
/// serving benchmarks.
fn load_args(args: &Args, out: &Path) -> Vec<std::ffi::OsString> {
    let (seconds, rounds) = if args.quick {
        (1, 1)
    } else {
        (args.seconds, args.rounds)
    };
    vec![
        "--seconds".into(),
        seconds.to_string().into(),
        "--rounds".into(),
        rounds.to_string().into(),
        "--out".into(),
        out.into(),
    ]
}

/// Builds `vecproc-native-server` (release) and returns its path.
fn native_server(root: &Path) -> Result<PathBuf> {
    step("building vecproc-native-server (release)");
    run(cargo().current_dir(root).args([
        "build",
        "--release",
        "-p",
        "vecproc-bench",
        "--bin",
        "vecproc-native-server",
    ]))?;
    Ok(crate::paths::target().join("release/vecproc-native-server"))
}

/// `vecproc-bench startup`, after building what it starts.
fn startup(root: &Path, out: &Path, quick: bool) -> Result<()> {
    let service = build::build(root)?.service;
    let host_runner = build::host_runner(root)?;
    let native = native_server(root)?;
    step("building the native vecproc CLI (release)");
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "vecproc-cli"]))?;
    let js_dir = js::prepare_node(root)?;
    let wkg = crate::tools::ensure(&crate::tools::WKG)?;
    let bench = vecproc_bench(root, None)?;
    step("startup and size (vecproc-bench startup)");
    run(Command::new(bench)
        .arg("startup")
        .arg("--service")
        .arg(service)
        .arg("--host-runner")
        .arg(host_runner)
        .arg("--native")
        .arg(native)
        .arg("--cli")
        .arg(crate::paths::target().join("release/vecproc"))
        .arg("--js-dir")
        .arg(js_dir)
        .arg("--wkg")
        .arg(wkg)
        .arg("--out")
        .arg(out)
        .args(quick.then_some("--quick")))
}

/// `vecproc-bench report`.
fn report(root: &Path, out: &Path) -> Result<()> {
    let bench = vecproc_bench(root, None)?;
    run(Command::new(bench).arg("report").arg("--dir").arg(out))
}
