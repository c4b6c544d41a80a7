//! Where the tasks write: cargo's target directory for the root workspace,
//! as `cargo metadata` reports it (so `CARGO_TARGET_DIR` and
//! `build.target-dir` are honoured), and the places under it the tasks share.
//!
//! [`init`] runs once at startup and exports the directory as
//! `VECPROC_TARGET_DIR`, which `vecproc-harness`'s paths (read back here by
//! [`target`]), the suites, the benchmarks and the JavaScript scripts
//! read, so every consumer looks in the same place and a stale `target/`
//! elsewhere is never picked up.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// Asks cargo for the root workspace's target directory and exports it.
pub fn init(root: &Path) -> Result<()> {
    let out = crate::run::cargo_in(root, "metadata --format-version 1 --no-deps --offline")
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cargo metadata's output")?;
    let dir = meta["target_directory"]
        .as_str()
        .ok_or_else(|| anyhow!("cargo metadata names no target_directory"))?;
    std::env::set_var("VECPROC_TARGET_DIR", dir);
    Ok(())
}

/// The root workspace's target directory, as [`init`] exported it.
pub fn target() -> PathBuf {
    vecproc_harness::paths::target_dir()
}

/// `<target>/wasm`: every built component and module.
pub fn wasm() -> PathBuf {
    target().join("wasm")
}

/// The target directory of the guest or fixture workspace in `dir`
/// (`components`, `tests/fixtures`, ...): `<target>/guests/<its last
/// component>`, passed as `--target-dir` to every build of it.
pub fn guests(dir: &str) -> PathBuf {
    let name = Path::new(dir).file_name().and_then(|n| n.to_str());
    target().join("guests").join(name.unwrap_or(dir))
}
