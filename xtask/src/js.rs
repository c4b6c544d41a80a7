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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::run::{run, step};

/// Debian's Chromium, driven by playwright-core (which downloads no browser).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Oldest Node.js major version the suites run on.
const NODE_MAJOR_MIN: u32 = 20;

/// The tools the JavaScript suites run beside Node, passed to them by path
/// (never found by searching PATH).
pub struct Tools<'a> {
    /// `wasmtime`, for `wasmtime serve` and `wasmtime run`.
    pub wasmtime: &'a Path,
    /// The native `wasmer` CLI, for `wasmer run` (opt-in: `--wasmer-cli`).
    pub wasmer: Option<&'a Path>,
}

/// Runs every JavaScript suite (`npm test`) with every tool passed by path
/// and `VECPROC_REQUIRE_ALL=1`, under which a suite whose prerequisite is
/// missing fails instead of skipping.
pub fn test(root: &Path, tools: &Tools) -> Result<()> {
    prepare(root)?;
    step("JS: npm test (jco bindings and typed API, the wasm-bindgen package, kernels, jco serve; workerd and the WASI runtimes; Chromium)");
    let mut cmd = Command::new("npm");
    cmd.current_dir(root.join("js"))
        .arg("test")
        .env("VECPROC_REQUIRE_ALL", "1")
        .env("VECPROC_WASMTIME", tools.wasmtime)
        .env("VECPROC_CLI", crate::paths::target().join("debug/vecproc"))
        .env("CHROMIUM", CHROMIUM);
    match tools.wasmer {
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

/// Checks Node.js and installs the npm packages; returns `js/`.
pub fn prepare_node(root: &Path) -> Result<PathBuf> {
    require_node()?;
    ensure_node_modules(&root.join("js"))?;
    Ok(root.join("js"))
}

/// [`prepare_node`], Debian's Chromium, and the components transpiled into
/// the ignored `js/gen/` (skipped when up to date).
pub fn prepare(root: &Path) -> Result<()> {
    prepare_node(root)?;
    crate::apt::ensure(CHROMIUM, &["chromium"], &[])?;
    step("JS: jco transpile the processor and the kernels -> js/gen/");
    run(node(root).arg("scripts/transpile.mjs"))
}

/// A `node` command running in `js/`.
pub fn node(root: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("js"));
    cmd
}

/// Fails clearly unless `node --version` reports at least [`NODE_MAJOR_MIN`].
fn require_node() -> Result<()> {
    let out = Command::new("node").arg("--version").output().context(
        "Node.js is needed for the JavaScript hosts: install Node.js 20 or newer (with npm)",
    )?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .with_context(|| format!("could not read the Node.js version from {version:?}"))?;
    if major < NODE_MAJOR_MIN {
        bail!("Node.js {version} is too old: the JavaScript hosts need {NODE_MAJOR_MIN} or newer");
    }
    Ok(())
}

/// Installs `js/node_modules` from the lockfile when it is missing or older
/// than `package.json` or `package-lock.json`.
fn ensure_node_modules(js: &Path) -> Result<()> {
    let modified = |p: &Path| fs::metadata(p).ok()?.modified().ok();
    // npm writes node_modules/.package-lock.json at the end of every install.
    let installed: Option<SystemTime> = modified(&js.join("node_modules/.package-lock.json"));
    let wanted = [
        modified(&js.join("package-lock.json")),
        modified(&js.join("package.json")),
    ];
    if wanted.iter().any(Option::is_none) {
        bail!("{} needs package.json and package-lock.json", js.display());
    }
    if installed.is_some_and(|at| wanted.iter().all(|w| w.is_some_and(|w| w <= at))) {
        return Ok(());
    }
    step(
        "JS: installing the pinned npm packages (jco, preview2-shim, playwright-core, workerd, \
         esbuild, @wasmer/sdk; no browsers)",
    );
    run(Command::new("npm")
        .args(["install", "--no-save", "--no-audit", "--no-fund"])
        .current_dir(js)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))
}
