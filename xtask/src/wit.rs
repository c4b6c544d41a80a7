//! WASI WIT for the guests and fixtures, copied out of pinned crates'
//! sources (the repository commits no `wasi:*` WIT; `wit/deps/` and the
//! fixtures' `wit/deps/` are ignored). `cargo metadata` says where cargo
//! keeps each crate's source, downloading it if needed.
//!
//! - [`fetch`]: the WASI 0.2.3 packages the `http-api` world names
//!   (`wit/worlds.wit`), from the `wasi` crate, and
//!   `wasi:keyvalue@0.2.0-draft2` (the stateful service's store, which
//!   host-runner's `keyvalue/` serves), which no WASI crate ships but
//!   `spin-sdk` does; both pinned by a throwaway manifest under `<target>/`.
//! - [`fetch_config`]: `wasi:config` and `wasi:keyvalue@0.2.0-draft` for
//!   the `platform` and `kv-draft` fixtures, from the crates host-runner
//!   serves them with (`wasmtime-wasi-config`, `wasmtime-wasi-keyvalue`, as
//!   `wasmtime serve` does).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::run::{cargo_in, output, step};

/// A WIT directory taken from a crate: (crate, the directory in its
/// source, where it goes under the repository root).
type Copy = (&'static str, &'static str, &'static str);

/// The throwaway manifest's dependencies, which pin what [`fetch`] copies.
const PINS: &str = "wasi = \"=0.14.1+wasi-0.2.3\"\n\
    spin-sdk = { version = \"=7.0.0\", default-features = false }\n";

/// What [`fetch`] copies, in order (the second lands inside the first).
const WASI: [Copy; 2] = [
    ("wasi", "wit/deps", "wit/deps"),
    (
        "spin-sdk",
        "wit/deps/wasi-keyvalue-2024-10-17",
        "wit/deps/keyvalue-2024-10-17",
    ),
];

/// What [`fetch_config`] copies, from host-runner's dependencies.
const FIXTURE_WIT: [Copy; 2] = [
    (
        "wasmtime-wasi-config",
        "wit/deps/config",
        "tests/fixtures/platform/wit/deps/config",
    ),
    (
        "wasmtime-wasi-keyvalue",
        "wit/deps/keyvalue",
        "tests/fixtures/kv-draft/wit/deps/keyvalue",
    ),
];

/// Fetches the WASI WIT into `wit/deps/` unless the pinned copy is there
/// (`wit/deps/.fetched-from` holds the pins of the last complete copy).
pub fn fetch(root: &Path) -> Result<()> {
    let stamp = root.join("wit/deps/.fetched-from");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == PINS) {
        return Ok(());
    }
    step("fetching WASI WIT from the crates.io packages wasi and spin-sdk (wasi:keyvalue@0.2.0-draft2)");
    let scratch = crate::paths::target().join("wasi-wit");
    fs::create_dir_all(scratch.join("src"))?;
    let package = "[package]\nname = \"wasi-wit\"\nversion = \"0.0.0\"\nedition = \"2021\"\n";
    let manifest = format!("{package}\n[dependencies]\n{PINS}\n[workspace]\n");
    fs::write(scratch.join("Cargo.toml"), manifest)?;
    fs::write(scratch.join("src/lib.rs"), "")?;
    copy(&scratch, root, &WASI)?;
    fs::write(stamp, PINS)?;
    Ok(())
}

/// Copies the fixtures' WIT from the packages cargo resolved for
/// host-runner.
pub fn fetch_config(root: &Path) -> Result<()> {
    copy(root, root, &FIXTURE_WIT)
}

/// Replaces each destination of `copies` with the directory from its
/// crate, as resolved for the manifest in `manifest_dir`.
fn copy(manifest_dir: &Path, root: &Path, copies: &[Copy]) -> Result<()> {
    let mut metadata = cargo_in(manifest_dir, "metadata --format-version 1 --quiet");
    let metadata = output(&mut metadata).with_context(|| {
        format!(
            "cargo metadata failed in {} (run it there to see why)",
            manifest_dir.display()
        )
    })?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    for (krate, dir, to) in copies {
        let manifest = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == *krate)
            .and_then(|p| p["manifest_path"].as_str())
            .with_context(|| format!("cargo metadata lists no {krate}"))?;
        let to = root.join(to);
        if to.exists() {
            fs::remove_dir_all(&to).with_context(|| format!("removing {}", to.display()))?;
        }
        copy_dir(&Path::new(manifest).with_file_name(dir), &to)?;
    }
    Ok(())
}

/// Copies `from` into `to`; a missing `from` (a package's layout changed)
/// is named in the error.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}
