//! The JavaScript hosts, from the npm project in `js/`: the suites (`npm
//! test`: jco in Node, the wasm-bindgen package, the service in workerd
//! and under `jco serve`, the WASI command on every runtime, the demo page
//! in Chromium), the browser demo, and what the benchmarks and `cargo xtask
//! edge` need. All of them read the components `cargo xtask build` wrote.
//!
//! Packages are installed with `npm install --no-save`, which installs the
//! locked versions and never rewrites the lockfile. `npm ci` is not used: the
//! registry this project is developed against lacks some other-platform
//! optional binaries of jco's dependencies (for example
//! `@rolldown/binding-darwin-arm64@1.3.2`), so the lockfile cannot list them
//! and `npm ci` refuses it as out of sync.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{run, step};

/// Debian's Chromium, driven by playwright-core (which downloads no browser).
const CHROMIUM: &str = crate::apt::CHROMIUM.file;

/// Runs every JavaScript suite (`npm test`) with `VECPROC_REQUIRE_ALL=1`,
/// under which a suite whose prerequisite is missing fails instead of
/// skipping, and every tool passed by path: `wasmtime`, and the native
/// `wasmer` CLI when opted in (`--wasmer-cli`).
pub fn test(root: &Path, wasmtime: &Path, wasmer: Option<&Path>) -> Result<()> {
    // npm test transpiles the components first (scripts/transpile.mjs).
    prepare_node(root)?;
    crate::apt::ensure(&[crate::apt::CHROMIUM])?;
    step("JS: npm test (jco bindings and typed API, the wasm-bindgen package, kernels, jco serve; workerd and the WASI runtimes; Chromium)");
    let mut cmd = Command::new("npm");
    cmd.current_dir(root.join("js"))
        .arg("test")
        .env("VECPROC_REQUIRE_ALL", "1")
        .env("VECPROC_WASMTIME", wasmtime)
        .env("VECPROC_CLI", crate::paths::target().join("debug/vecproc"))
        .env("CHROMIUM", CHROMIUM);
    match wasmer {
        Some(wasmer) => cmd.env("VECPROC_WASMER", wasmer),
        None => cmd.env_remove("VECPROC_WASMER"),
    };
    run(&mut cmd)
}

/// Transpiles the component and serves the demo page on
/// `http://127.0.0.1:{port}/demo/` until interrupted.
pub fn demo(root: &Path, port: u16) -> Result<()> {
    prepare_node(root)?;
    run(node(root).arg("scripts/transpile.mjs"))?;
    step(&format!(
        "JS: serving the demo on http://127.0.0.1:{port}/demo/ (Ctrl-C stops)"
    ));
    run(node(root)
        .arg("scripts/serve-demo.mjs")
        .arg(port.to_string()))
}

/// [`prepare_node`], Debian's Chromium, and the components transpiled into
/// the ignored `js/gen/` (skipped when up to date).
pub fn prepare(root: &Path) -> Result<()> {
    prepare_node(root)?;
    crate::apt::ensure(&[crate::apt::CHROMIUM])?;
    step("JS: jco transpile the processor and the kernels -> js/gen/");
    run(node(root).arg("scripts/transpile.mjs"))
}

/// A `node` command running in `js/`.
pub fn node(root: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("js"));
    cmd
}

/// Installs the locked npm packages into `js/node_modules` (a second or
/// two when they are there already), on Node.js 20 or newer.
pub fn prepare_node(root: &Path) -> Result<()> {
    let node_20 = "process.exit(process.versions.node.split('.')[0] >= 20 ? 0 : 1)";
    run(Command::new("node").args(["-e", node_20]))
        .context("the JavaScript hosts need Node.js 20 or newer, with npm")?;
    step("JS: npm install (jco, preview2-shim, playwright-core, workerd, esbuild, @wasmer/sdk; no browsers)");
    run(Command::new("npm")
        .args(["install", "--no-save", "--no-audit", "--no-fund"])
        .current_dir(root.join("js"))
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))
}

/// The JavaScript part of `cargo xtask bench`: the kernels in Node
/// (`js/bench/kernels.mjs`, `runs` timed runs) and the JavaScript boundary
/// in Node and Chromium (`js/bench/boundary.mjs`), written to `out`.
pub fn bench(root: &Path, out: &Path, runs: u32, quick: bool) -> Result<()> {
    let runs = runs.to_string();
    step("the JavaScript runners in Node (js/bench/kernels.mjs)");
    run(node(root)
        .args(["bench/kernels.mjs", "--runs", &runs])
        .args(quick.then_some("--quick"))
        .arg("--out")
        .arg(out.join("js.json")))?;
    step("the JavaScript boundary in Node and Chromium (js/bench/boundary.mjs)");
    let n = if quick { "100000" } else { "1000000" };
    run(node(root)
        .args(["bench/boundary.mjs", "--n", n, "--runs", &runs])
        .arg("--out")
        .arg(out)
        .args(["--chromium", CHROMIUM]))
}
