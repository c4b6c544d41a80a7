//! The pinned external tools and Rust targets, installed when missing.
//!
//! Each tool is checked with `<bin> --version`; a tool at another version is
//! reinstalled at the pinned one. Installs share one target directory so
//! common dependencies build once, and skip default features the project
//! does not use (for example wac's warg registry client).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{output, run, step};

/// A CLI tool installed with `cargo install --locked`.
pub struct Tool {
    /// crates.io package.
    pub krate: &'static str,
    /// Executable name.
    pub bin: &'static str,
    /// Pinned version.
    pub version: &'static str,
    /// Features, with default features off; `None` keeps the defaults.
    pub features: Option<&'static str>,
    /// Rough install time on 2 cores, shown while installing.
    pub minutes: u32,
}

/// wac composes them.
pub const WAC: Tool = Tool {
    krate: "wac-cli",
    bin: "wac",
    version: "0.12.0",
    features: Some("wit"),
    minutes: 2,
};

/// Binds the wasm-bindgen module (`crates/vecproc-web`) for the browser and
/// Node; must equal the crate's `wasm-bindgen` version exactly.
pub const WASM_BINDGEN: Tool = Tool {
    krate: "wasm-bindgen-cli",
    bin: "wasm-bindgen",
    version: "0.2.129",
    features: None,
    minutes: 3,
};

/// The reference server. Only what `wasmtime serve` and `run` use as the
/// suites run them: the default engine (Cranelift, the pooling allocator,
/// the compile cache, WASI 0.3), `wasmtime serve`'s `-S config`/`-S
/// keyvalue`, logging and symbolicated backtraces; not the profilers
/// (`--profile`: ittapi's C build), core dumps or gdb's JIT hooks.
pub const WASMTIME: Tool = Tool {
    krate: "wasmtime-cli",
    bin: "wasmtime",
    version: "48.0.8",
    features: Some(
        "serve,run,cranelift,cache,pooling-allocator,parallel-compilation,logging,\
         component-model,component-model-async,backtrace,addr2line,demangle,wat,\
         wasi-config,wasi-keyvalue",
    ),
    minutes: 8,
};

/// Publishes the components to OCI registries (`cargo xtask publish`) and
/// pulls them back independently in the registry suite.
pub const WKG: Tool = Tool {
    krate: "wkg",
    bin: "wkg",
    version: "0.16.1",
    features: None,
    minutes: 4,
};

/// The native Wasmer runtime, for `cargo xtask test` (the WASI
/// command under `wasmer run`). Its default features plus the Cranelift
/// backend, which is off by default; 7.4.2 is the last release for rustc
/// 1.95. About 630 crates.
pub const WASMER: Tool = Tool {
    krate: "wasmer-cli",
    bin: "wasmer",
    version: "7.4.2",
    features: Some("default,cranelift"),
    minutes: 25,
};

/// Rust targets the guests need: unknown-unknown for every component in
/// `components/` and `tests/fixtures/` (Rust std then imports nothing),
/// wasip2 for the std-Rust fixture guests, wasip1 for the WASI command.
const TARGETS: &[&str] = &["wasm32-wasip1", "wasm32-wasip2", "wasm32-unknown-unknown"];

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
        .join("bin")
}

/// Path of an installed tool's executable.
pub fn path_of(tool: &Tool) -> PathBuf {
    let in_cargo_home = cargo_bin_dir().join(tool.bin);
    if in_cargo_home.exists() {
        return in_cargo_home;
    }
    PathBuf::from(tool.bin)
}

fn installed_version_matches(tool: &Tool) -> bool {
    output(Command::new(path_of(tool)).arg("--version"))
        .is_some_and(|v| v.split_whitespace().any(|word| word == tool.version))
        && installed_features_match(tool)
}

/// Whether cargo's record of the install (`$CARGO_HOME/.crates2.json`)
/// has every feature `tool` needs, so adding one (as `wasi-config` was to
/// wasmtime) reinstalls it. A tool installed some other way, with no record,
/// is taken as it is.
fn installed_features_match(tool: &Tool) -> bool {
    let Some(features) = tool.features else {
        return true;
    };
    let record = cargo_bin_dir().with_file_name(".crates2.json");
    let Ok(text) = std::fs::read_to_string(&record) else {
        return true;
    };
    let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
        return true;
    };
    let key = format!("{} {} ", tool.krate, tool.version);
    let Some((_, install)) = record["installs"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(k, _)| k.starts_with(&key))
    else {
        return true;
    };
    let installed: Vec<&str> = install["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    let missing: Vec<&str> = features
        .split(',')
        .map(str::trim)
        .filter(|f| !installed.contains(f))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "    {} {} is installed without feature(s) {}; reinstalling",
            tool.bin,
            tool.version,
            missing.join(", ")
        );
    }
    missing.is_empty()
}

/// Installs `tool` at its pinned version unless it is already there.
pub fn ensure(tool: &Tool) -> Result<PathBuf> {
    if installed_version_matches(tool) {
        eprintln!("    {} {} is installed", tool.bin, tool.version);
        return Ok(path_of(tool));
    }
    step(&format!(
        "installing {} {} with cargo install --locked (about {} min on 2 cores)",
        tool.krate, tool.version, tool.minutes
    ));
    let mut cmd = crate::run::cargo();
    cmd.args(["install", "--locked", tool.krate, "--version", tool.version])
        .arg("--target-dir")
        .arg(crate::paths::target().join("tool-builds"));
    if let Some(features) = tool.features {
        cmd.args(["--no-default-features", "--features", features]);
    }
    run(&mut cmd).with_context(|| format!("installing {}", tool.krate))?;
    Ok(path_of(tool))
}

/// Adds the Rust targets the guests build for, if missing.
pub fn ensure_targets() -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    let missing: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!("adding Rust targets {}", missing.join(" ")));
    run(Command::new("rustup")
        .args(["target", "add"])
        .args(&missing))
}
