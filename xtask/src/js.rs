//! The JavaScript hosts: the vector-processor component in Node and in
//! Chromium through jco, from the npm project in `js/`.
//!
//! - [`test`] installs what the JavaScript suites need (the npm packages
//!   pinned in `js/package-lock.json`, Debian's Chromium), transpiles
//!   `target/wasm/vector-processor.wasm` into the ignored `js/gen/`, and runs
//!   the Node suites (generated bindings and typed API; the HTTP API of
//!   `target/wasm/vector-service.wasm` under `jco serve`) and the Chromium
//!   end-to-end test of the demo page, which writes `target/js/demo.png` and
//!   `target/js/browser.json`.
//! - [`demo`] transpiles and serves the browser demo on 127.0.0.1.
//!
//! Both assume `target/wasm/*.wasm` are built: the caller builds first.
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

/// Installs what the JavaScript suites need and runs them all, with every
/// tool passed by path and `VECPROC_REQUIRE_ALL=1`, under which a suite whose
/// prerequisite is missing fails instead of skipping.
pub fn test(root: &Path, tools: &Tools) -> Result<()> {
    let js = js_dir(root);
    require_built(&[
        "vector-processor.wasm",
        "vector-kernels.wasm",
        "vector-service.wasm",
        "vecproc.wasm",
    ])?;
    require_node()?;
    ensure_node_modules(&js)?;
    ensure_chromium()?;
    transpile(&js)?;

    let node = || {
        let mut cmd = node(&js);
        cmd.env("VECPROC_REQUIRE_ALL", "1")
            .env("VECPROC_WASMTIME", tools.wasmtime)
            .env("VECPROC_CLI", crate::paths::target().join("debug/vecproc"));
        match tools.wasmer {
            Some(wasmer) => cmd.env("VECPROC_WASMER", wasmer),
            None => cmd.env_remove("VECPROC_WASMER"),
        };
        cmd
    };
    step("JS: Node suites (jco bindings and typed API; the wasm-bindgen package; kernels; HTTP API under jco serve)");
    run(node().args([
        "--test",
        "test/vector.test.mjs",
        "test/web.test.mjs",
        "test/kernels.test.mjs",
        "test/http.test.mjs",
    ]))?;

    step("JS: the service in workerd vs wasmtime serve; the WASI command on every runtime");
    run(node().args(["--test", "test/edge.test.mjs", "test/wasi.test.mjs"]))?;

    step("JS: Chromium end-to-end test of the demo page (N = 1,000,000)");
    run(node()
        .args(["--test", "test/browser.test.mjs"])
        .env("CHROMIUM", CHROMIUM))?;
    eprintln!(
        "    screenshot: {}",
        crate::paths::target().join("js").join("demo.png").display()
    );
    Ok(())
}

/// Transpiles the component and serves the demo page on
/// `http://127.0.0.1:{port}/demo/` until interrupted.
pub fn demo(root: &Path, port: u16) -> Result<()> {
    let js = js_dir(root);
    require_built(&["vector-processor.wasm"])?;
    require_node()?;
    ensure_node_modules(&js)?;
    transpile(&js)?;

    step(&format!(
        "JS: serving the demo on http://127.0.0.1:{port}/demo/ (Ctrl-C stops)"
    ));
    run(node(&js)
        .arg("scripts/serve-demo.mjs")
        .arg(port.to_string()))
}

/// Checks Node.js and installs the npm packages (for `cargo xtask edge`);
/// returns the npm project's directory.
pub fn prepare_node(root: &Path) -> Result<PathBuf> {
    let js = js_dir(root);
    require_node()?;
    ensure_node_modules(&js)?;
    Ok(js)
}

/// Installs the npm packages and Chromium and transpiles the components (for the
/// benchmark's JavaScript runners).
pub fn prepare(root: &Path) -> Result<()> {
    let js = js_dir(root);
    require_built(&["vector-processor.wasm"])?;
    require_node()?;
    ensure_node_modules(&js)?;
    ensure_chromium()?;
    transpile(&js)
}

fn js_dir(root: &Path) -> PathBuf {
    root.join("js")
}

/// A `node` command running in `js/`.
fn node(js: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.current_dir(js);
    cmd
}

fn require_built(names: &[&str]) -> Result<()> {
    for name in names {
        let wasm = crate::paths::wasm().join(name);
        if !wasm.is_file() {
            bail!(
                "{} is missing: build it first (`cargo xtask build`)",
                wasm.display()
            );
        }
    }
    Ok(())
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

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).ok()?.modified().ok()
}

/// Installs `js/node_modules` from the lockfile when it is missing or older
/// than `package.json` or `package-lock.json`.
fn ensure_node_modules(js: &Path) -> Result<()> {
    let lock = js.join("package-lock.json");
    let manifest = js.join("package.json");
    if !lock.is_file() || !manifest.is_file() {
        bail!("{} needs package.json and package-lock.json", js.display());
    }
    // npm writes node_modules/.package-lock.json at the end of every install.
    let installed = modified(&js.join("node_modules").join(".package-lock.json"));
    let wanted = [modified(&lock), modified(&manifest)];
    let fresh = installed.is_some_and(|at| wanted.iter().all(|w| w.is_some_and(|w| w <= at)));
    if fresh {
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

/// Installs Debian's Chromium with apt-get when [`CHROMIUM`] is missing.
fn ensure_chromium() -> Result<()> {
    crate::apt::ensure(CHROMIUM, &["chromium"], &[])
}

/// `js/scripts/transpile.mjs`: jco transpile into `js/gen/vector-processor/`
/// (skipped when up to date).
fn transpile(js: &Path) -> Result<()> {
    step("JS: jco transpile target/wasm/vector-processor.wasm and vector-kernels*.wasm -> js/gen/");
    run(node(js).arg("scripts/transpile.mjs"))
}
