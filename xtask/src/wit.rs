//! WASI WIT for the guests, taken from a pinned crates.io package.
//!
//! The repository does not commit `wasi:*` WIT. The `wasi` crate at
//! `0.14.1+wasi-0.2.3` ships the WASI 0.2.3 packages that the `http-api`
//! world names (`wit/worlds.wit`); a throwaway manifest under `target/`
//! vendors it and its `wit/deps/*` is copied into the ignored `wit/deps/`.
//!
//! `wasi:keyvalue@0.2.0-draft2` (the stateful service's store, which
//! host-runner's `keyvalue/` serves) is in no WASI crate; the `spin-sdk`
//! package ships it, and the same throwaway manifest vendors it beside
//! `wasi`: its `wit/deps/wasi-keyvalue-2024-10-17` becomes
//! `wit/deps/keyvalue-2024-10-17`.
//!
//! `wasi:config` and `wasi:keyvalue@0.2.0-draft` (for the `platform` and
//! `kv-draft` test fixtures) come from the crates that serve them,
//! `wasmtime-wasi-config` and `wasmtime-wasi-keyvalue`, which host-runner
//! depends on: cargo has their source already, and `cargo metadata` says
//! where.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::run::{run, step};

const CRATE: &str = "wasi";
const VERSION: &str = "0.14.1+wasi-0.2.3";
/// The package that ships `wasi:keyvalue@0.2.0-draft2`, and where.
const KEYVALUE_CRATE: &str = "spin-sdk";
const KEYVALUE_VERSION: &str = "7.0.0";
const KEYVALUE_DIR: &str = "wit/deps/wasi-keyvalue-2024-10-17";
/// Where the draft2 WIT goes in `wit/deps/` (host-runner's bindings read it
/// there too).
const KEYVALUE_DEPS: &str = "keyvalue-2024-10-17";
/// Written into `wit/deps/` once a copy is complete.
const STAMP: &str = ".fetched-from";

/// Fetches the WASI WIT into `wit/deps/` unless the pinned copy is there.
pub fn fetch(root: &Path) -> Result<()> {
    let deps = root.join("wit/deps");
    let stamp = format!("{CRATE}@{VERSION}\n{KEYVALUE_CRATE}@{KEYVALUE_VERSION}\n");
    if fs::read_to_string(deps.join(STAMP)).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    step(&format!(
        "fetching WASI WIT from crates.io packages {CRATE} {VERSION} and \
         {KEYVALUE_CRATE} {KEYVALUE_VERSION} (wasi:keyvalue@0.2.0-draft2)"
    ));
    let scratch = crate::paths::target().join("wasi-wit");
    fs::create_dir_all(scratch.join("src"))?;
    fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"wasi-wit-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{CRATE} = \"={VERSION}\"\n\
             {KEYVALUE_CRATE} = {{ version = \"={KEYVALUE_VERSION}\", default-features = false }}\n\n\
             [workspace]\n"
        ),
    )?;
    fs::write(scratch.join("src/lib.rs"), "")?;
    run(crate::run::cargo().current_dir(&scratch).args([
        "vendor",
        "--versioned-dirs",
        "--quiet",
        "vendor",
    ]))?;
    let vendor = scratch.join("vendor");
    replace_dir(&vendor.join(format!("{CRATE}-{VERSION}/wit/deps")), &deps)?;
    let keyvalue = vendor.join(format!(
        "{KEYVALUE_CRATE}-{KEYVALUE_VERSION}/{KEYVALUE_DIR}"
    ));
    copy_dir(&keyvalue, &deps.join(KEYVALUE_DEPS))?;
    fs::write(deps.join(STAMP), stamp)?;
    Ok(())
}

/// WIT that fixtures take from the crates host-runner serves it with:
/// (crate, its directory, the fixture's directory it goes to).
const FIXTURE_WIT: [(&str, &str, &str); 2] = [
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

/// Copies the `wasi:config` and `wasi:keyvalue@0.2.0-draft` WIT that
/// host-runner serves (with the crates `wasmtime serve` uses) into the
/// `platform` and `kv-draft` fixtures' ignored `wit/deps/`, from the
/// packages cargo resolved for host-runner.
pub fn fetch_config(root: &Path) -> Result<()> {
    let metadata = crate::run::output(crate::run::cargo().current_dir(root).args([
        "metadata",
        "--format-version",
        "1",
        "--quiet",
    ]))
    .context("cargo metadata failed (run it in the repository to see why)")?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    for (krate, dir, to) in FIXTURE_WIT {
        let manifest = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == krate)
            .and_then(|p| p["manifest_path"].as_str())
            .with_context(|| {
                format!("cargo metadata lists no {krate} (host-runner's dependency)")
            })?;
        let crate_dir = Path::new(manifest).parent().expect("in a directory");
        replace_dir(&crate_dir.join(dir), &root.join(to))?;
    }
    Ok(())
}

/// Replaces `to` with a copy of `from`.
fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    copy_dir(from, to)
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
