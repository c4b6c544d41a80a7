//! The wasm-bindgen package `target/web/` (`crates/vecproc-web`, the
//! article's browser path): the module built for `wasm32-unknown-unknown`
//! with the `wasm-web` profile (opt-level "s", LTO), bound by the pinned
//! `wasm-bindgen` CLI twice, `--target web` into `target/web/web/` (an ES
//! module with an `init` default export, for browsers) and `--target nodejs`
//! into `target/web/node/` (CommonJS), each with TypeScript declarations.
//! The npm manifest and README come from `crates/vecproc-web/` (the package
//! is publishable as it stands; nothing here publishes it).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::run::{cargo_in, run, step};
use crate::{paths, tools};

/// Builds the module and writes the package; returns `target/web/`.
pub fn build(root: &Path) -> Result<PathBuf> {
    let bindgen = tools::ensure(&tools::WASM_BINDGEN)?;
    step(
        "building the wasm-bindgen module (vecproc-web, wasm32-unknown-unknown, profile wasm-web)",
    );
    let module = "build -p vecproc-web --target wasm32-unknown-unknown --profile wasm-web";
    run(&mut cargo_in(root, module))?;
    let module = paths::target().join("wasm32-unknown-unknown/wasm-web/vecproc_web.wasm");
    let out = paths::target().join("web");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    for (target, sub) in [("web", "web"), ("nodejs", "node")] {
        step(&format!(
            "wasm-bindgen --target {target} -> target/web/{sub}/"
        ));
        run(std::process::Command::new(&bindgen)
            .arg(&module)
            .args(["--target", target, "--out-dir"])
            .arg(out.join(sub)))?;
    }
    // The package is an ES module package; the Node build is CommonJS.
    fs::write(
        out.join("node/package.json"),
        "{ \"type\": \"commonjs\" }\n",
    )?;
    let source = root.join("crates/vecproc-web");
    for file in ["package.json", "README.md"] {
        fs::copy(source.join(file), out.join(file))
            .with_context(|| format!("copying crates/vecproc-web/{file}"))?;
    }
    Ok(out)
}
