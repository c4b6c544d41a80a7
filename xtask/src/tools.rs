//! The pinned external tools and Rust targets, installed when missing.
//!
//! `cargo install` checks each tool against its record of installs and
//! reinstalls one at another version or with other features. Installs
//! share one target directory so common dependencies build once, and skip
//! default features the project does not use (for example wac's warg
//! registry client).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::run;

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

/// A [`Tool`], its fields in order.
pub const fn tool(
    krate: &'static str,
    bin: &'static str,
    version: &'static str,
    features: Option<&'static str>,
    minutes: u32,
) -> Tool {
    Tool {
        krate,
        bin,
        version,
        features,
        minutes,
    }
}

/// wac composes them.
pub const WAC: Tool = tool("wac-cli", "wac", "0.12.0", Some("wit"), 2);

/// Binds the wasm-bindgen module (`crates/vecproc-web`) for the browser and
/// Node; must equal the crate's `wasm-bindgen` version exactly.
pub const WASM_BINDGEN: Tool = tool("wasm-bindgen-cli", "wasm-bindgen", "0.2.129", None, 3);

/// The reference server. Only what `wasmtime serve` and `run` use as the
/// suites run them: the default engine (Cranelift, the pooling allocator,
/// the compile cache, WASI 0.3), `wasmtime serve`'s `-S config`/`-S
/// keyvalue`, logging and symbolicated backtraces; not the profilers
/// (`--profile`: ittapi's C build), core dumps or gdb's JIT hooks.
pub const WASMTIME: Tool = tool(
    "wasmtime-cli",
    "wasmtime",
    "48.0.8",
    Some(
        "serve,run,cranelift,cache,pooling-allocator,parallel-compilation,logging,\
         component-model,component-model-async,backtrace,addr2line,demangle,wat,\
         wasi-config,wasi-keyvalue",
    ),
    8,
);

/// Publishes the components to OCI registries (`cargo xtask publish`) and
/// pulls them back independently in the registry suite.
pub const WKG: Tool = tool("wkg", "wkg", "0.16.1", None, 4);

/// The native Wasmer runtime, for `cargo xtask test` (the WASI
/// command under `wasmer run`). Its default features plus the Cranelift
/// backend, which is off by default; 7.4.2 is the last release for rustc
/// 1.95. About 630 crates.
pub const WASMER: Tool = tool(
    "wasmer-cli",
    "wasmer",
    "7.4.2",
    Some("default,cranelift"),
    25,
);

/// Rust targets the guests need: unknown-unknown for every component in
/// `components/` and `tests/fixtures/` (Rust std then imports nothing),
/// wasip2 for the std-Rust fixture guests, wasip1 for the WASI command.
const TARGETS: &[&str] = &["wasm32-wasip1", "wasm32-wasip2", "wasm32-unknown-unknown"];

/// Where `cargo install` puts `tool`.
pub fn path_of(tool: &Tool) -> PathBuf {
    vecproc_harness::paths::cargo_bin(tool.bin)
}

/// Installs `tool` at its pinned version with its features, unless cargo's
/// record of installs says it is there already: `cargo install` itself
/// decides, offline and in a tenth of a second, and reinstalls a tool whose
/// version or features differ.
pub fn ensure(tool: &Tool) -> Result<PathBuf> {
    eprintln!(
        "    {} {}: cargo install --locked (about {} min on 2 cores when missing)",
        tool.krate, tool.version, tool.minutes
    );
    let mut cmd = crate::run::cargo();
    // Built as published: not linted by `cargo xtask test`'s wrapper.
    cmd.env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .args(["install", "--locked", tool.krate, "--version", tool.version])
        .arg("--target-dir")
        .arg(crate::paths::target().join("tool-builds"));
    if let Some(features) = tool.features {
        cmd.args(["--no-default-features", "--features", features]);
    }
    run(&mut cmd).with_context(|| format!("installing {}", tool.krate))?;
    Ok(path_of(tool))
}

/// Adds the Rust targets the guests build for (a quarter of a second when
/// they are there).
pub fn ensure_targets() -> Result<()> {
    run(Command::new("rustup").args(["target", "add"]).args(TARGETS))
}
