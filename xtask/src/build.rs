//! `cargo xtask build`: the guest components and their composition.
//!
//! Writes `target/wasm/vector-processor.wasm`, `target/wasm/http-api.wasm`
//! and the composed `target/wasm/vector-service.wasm` (`wac plug`), the
//! test fixtures under `target/wasm/fixtures/` (cargo-component guests and
//! a std-Rust `wasm32-wasip2` guest), and the WASI command
//! `target/wasm/vecproc.wasm` (crate `vecproc-cli`, for runtimes without the
//! component model).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{run, step};
use crate::{tools, wit};

/// Paths of the built artifacts.
pub struct Artifacts {
    /// The composed, servable component.
    pub service: PathBuf,
}

/// Installs what is missing, builds both guests and composes them.
pub fn build(root: &Path) -> Result<Artifacts> {
    tools::ensure_targets()?;
    let cargo_component = tools::ensure(root, &tools::CARGO_COMPONENT)?;
    let wac = tools::ensure(root, &tools::WAC)?;
    wit::fetch(root)?;

    step("building guest components (cargo component build --release)");
    run(Command::new(&cargo_component)
        .current_dir(root.join("components"))
        .args(["component", "build", "--release", "--workspace"]))?;

    let out = root.join("target/wasm");
    fs::create_dir_all(&out)?;
    let built = root.join("components/target/wasm32-wasip1/release");
    for (crate_file, name) in [
        ("vector_processor.wasm", "vector-processor.wasm"),
        ("http_api.wasm", "http-api.wasm"),
    ] {
        fs::copy(built.join(crate_file), out.join(name))
            .with_context(|| format!("copying {}", built.join(crate_file).display()))?;
    }

    step("building fixture guests (tests/fixtures)");
    run(Command::new(&cargo_component)
        .current_dir(root.join("tests/fixtures"))
        .args(["component", "build", "--release", "--workspace"]))?;
    fs::create_dir_all(out.join("fixtures"))?;
    fs::copy(
        root.join("tests/fixtures/target/wasm32-wasip1/release/misbehaving.wasm"),
        out.join("fixtures/misbehaving.wasm"),
    )
    .context("copying the misbehaving fixture")?;

    step(
        "building std-Rust fixture guests (tests/fixtures-std, cargo build --target wasm32-wasip2)",
    );
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root.join("tests/fixtures-std"))
            .args(["build", "--release", "--target", "wasm32-wasip2"]),
    )?;
    fs::copy(
        root.join("tests/fixtures-std/target/wasm32-wasip2/release/cli_guest.wasm"),
        out.join("fixtures/cli-guest.wasm"),
    )
    .context("copying the cli-guest fixture")?;

    step("building WASI 0.3 fixture guests (tests/fixtures-p3, cargo build --target wasm32-unknown-unknown)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root.join("tests/fixtures-p3"))
            .args(["build", "--release"]),
    )?;
    fs::copy(
        root.join("tests/fixtures-p3/target/wasm32-unknown-unknown/release/misbehaving_p3.wasm"),
        out.join("fixtures/misbehaving-p3.wasm"),
    )
    .context("copying the misbehaving-p3 fixture")?;

    step("composing target/wasm/vector-service.wasm (wac plug)");
    let service = out.join("vector-service.wasm");
    run(Command::new(&wac)
        .arg("plug")
        .arg(out.join("http-api.wasm"))
        .arg("--plug")
        .arg(out.join("vector-processor.wasm"))
        .arg("-o")
        .arg(&service))?;

    build_p3(root, &wac, &out)?;

    step("building the WASI command target/wasm/vecproc.wasm (vecproc-cli for wasm32-wasip1)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["build", "-p", "vecproc-cli", "--target", "wasm32-wasip1"])
            .args(["--profile", "wasm-cli"]),
    )?;
    fs::copy(
        root.join("target/wasm32-wasip1/wasm-cli/vecproc.wasm"),
        out.join("vecproc.wasm"),
    )
    .context("copying vecproc.wasm")?;

    for name in [
        "vector-processor.wasm",
        "http-api.wasm",
        "vector-service.wasm",
        "vecproc.wasm",
    ] {
        let len = fs::metadata(out.join(name))?.len();
        eprintln!("    target/wasm/{name}: {:.1} KiB", len as f64 / 1024.0);
    }
    Ok(Artifacts { service })
}

/// Builds the processor twice more for the benchmark, at opt-level 3 like
/// the native build (the shipped guests are built for size, opt-level "s"):
/// `target/wasm/vector-processor-o3.wasm`, and with WebAssembly SIMD
/// (`simd128`) enabled too, `target/wasm/vector-processor-simd.wasm`.
/// Separate target directories keep the default build's cache intact.
pub fn build_bench_variants(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let cargo_component = tools::ensure(root, &tools::CARGO_COMPONENT)?;
    let mut built = Vec::new();
    for (dir, simd, name) in [
        ("o3", false, "vector-processor-o3.wasm"),
        ("o3-simd", true, "vector-processor-simd.wasm"),
    ] {
        step(&format!(
            "building vector-processor at opt-level 3{} -> target/wasm/{name}",
            if simd { " with simd128" } else { "" }
        ));
        let target_dir = root.join("components/target").join(dir);
        let mut cmd = Command::new(&cargo_component);
        cmd.current_dir(root.join("components"))
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
            .args(["component", "build", "--release", "-p", "vector-processor"])
            .arg("--target-dir")
            .arg(&target_dir);
        if simd {
            cmd.env("RUSTFLAGS", "-C target-feature=+simd128");
        }
        run(&mut cmd)?;
        let out = root.join("target/wasm").join(name);
        fs::copy(
            target_dir.join("wasm32-wasip1/release/vector_processor.wasm"),
            &out,
        )
        .with_context(|| format!("copying {name}"))?;
        built.push(out);
    }
    let simd = built.pop().expect("two builds");
    let o3 = built.pop().expect("two builds");
    Ok((o3, simd))
}

/// Builds host-runner in release and returns its path; `$VECPROC_HOST_RUNNER`
/// names a binary to use instead (the test suites pass their debug build).
pub fn host_runner(root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VECPROC_HOST_RUNNER") {
        return Ok(path.into());
    }
    step("building host-runner (cargo build --release -p host-runner)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["build", "--release", "-p", "host-runner"]),
    )?;
    Ok(root.join("target/release/host-runner"))
}

/// Builds the WASI 0.3 HTTP guest (`components/http-api-p3`, a cargo
/// workspace of its own) and composes it with the shipped processor:
/// `target/wasm/http-api-p3.wasm` and `target/wasm/vector-service-p3.wasm`,
/// the service exporting `wasi:http/handler@0.3` that `wasmtime serve` 48
/// serves without flags. cargo-component 0.21.1 cannot build p3 guests, so
/// this is plain `cargo build` for `wasm32-unknown-unknown` with the
/// `wasip3` crate's bindings, linked into a component by the toolchain's
/// `wasm-component-ld` (the crate's `.cargo/config.toml`).
fn build_p3(root: &Path, wac: &Path, out: &Path) -> Result<()> {
    step("building the WASI 0.3 HTTP guest (components/http-api-p3, cargo build --target wasm32-unknown-unknown)");
    let start = std::time::Instant::now();
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root.join("components/http-api-p3"))
            .args(["build", "--release"]),
    )?;
    let built = root.join("components/target/p3/wasm32-unknown-unknown/release/http_api_p3.wasm");
    fs::copy(&built, out.join("http-api-p3.wasm"))
        .with_context(|| format!("copying {}", built.display()))?;
    step("composing target/wasm/vector-service-p3.wasm (wac plug)");
    let service = out.join("vector-service-p3.wasm");
    run(Command::new(wac)
        .arg("plug")
        .arg(out.join("http-api-p3.wasm"))
        .arg("--plug")
        .arg(out.join("vector-processor.wasm"))
        .arg("-o")
        .arg(&service))?;
    for name in ["http-api-p3.wasm", "vector-service-p3.wasm"] {
        let len = fs::metadata(out.join(name))?.len();
        eprintln!("    target/wasm/{name}: {:.1} KiB", len as f64 / 1024.0);
    }
    eprintln!(
        "    p3 guest built and composed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
