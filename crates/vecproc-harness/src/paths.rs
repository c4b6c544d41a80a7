//! Where the built artifacts and the tools are.
//!
//! The target directory is `$VECPROC_TARGET_DIR` (which `cargo xtask`
//! exports from `cargo metadata`), else `$CARGO_TARGET_DIR`, else `target/`
//! under the repository root. Tools are `$VECPROC_<NAME>` when set (the
//! xtask passes every tool by path), else `~/.cargo/bin/<name>`, else the
//! name on `PATH`.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/vecproc-harness is two levels below the root")
        .to_path_buf()
}

/// cargo's target directory (see the module documentation).
pub fn target_dir() -> PathBuf {
    for var in ["VECPROC_TARGET_DIR", "CARGO_TARGET_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            };
        }
    }
    repo_root().join("target")
}

/// `<target>/wasm/<name>`, whether or not it exists.
pub fn wasm_path(name: &str) -> PathBuf {
    target_dir().join("wasm").join(name)
}

/// `<target>/wasm/<name>`, panicking with what to run if it is absent.
pub fn artifact(name: &str) -> PathBuf {
    let path = wasm_path(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build` (or `cargo xtask test`) first",
        path.display()
    );
    path
}

/// An executable: `$VAR` if set, else `~/.cargo/bin/NAME`, else `NAME` on PATH.
pub fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let installed = cargo_bin(name);
    if installed.exists() {
        return installed;
    }
    PathBuf::from(name)
}

/// Where `cargo install` puts the executable `name`: `$CARGO_HOME/bin`,
/// else `~/.cargo/bin`.
pub fn cargo_bin(name: &str) -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
        .join("bin")
        .join(name)
}

/// The `wasmtime` executable (`$VECPROC_WASMTIME`, see [`tool`]).
pub fn wasmtime_bin() -> PathBuf {
    tool("VECPROC_WASMTIME", "wasmtime")
}

/// The `host-runner` executable: `$VECPROC_HOST_RUNNER`, else
/// `<target>/debug/host-runner` (`cargo xtask test` builds it first),
/// panicking if that is absent.
pub fn host_runner_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VECPROC_HOST_RUNNER") {
        return PathBuf::from(p);
    }
    let p = target_dir().join("debug/host-runner");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p host-runner` (cargo xtask test does)",
        p.display()
    );
    p
}

/// host-runner's containerd shim: `$VECPROC_SHIM`, else
/// `<target>/debug/containerd-shim-host-runner-v1` (`cargo xtask test`
/// builds it), which may be absent ([`crate::containerd`] says so).
pub fn shim_bin() -> PathBuf {
    std::env::var_os("VECPROC_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/containerd-shim-host-runner-v1"))
}

/// A binary built beside the running one (in the same
/// `<target>/<profile>/`), such as host-runner beside `vecproc-bench`.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `<target>/bench`, where the benchmarks write their reports.
pub fn bench_dir() -> PathBuf {
    target_dir().join("bench")
}
