//! `cargo xtask build`: the guest components and their composition, and
//! everything the tests and benchmarks run; [`build_service`] is the part
//! `cargo xtask serve` needs.
//!
//! Writes `target/wasm/vector-processor.wasm` (opt-level 3 with `simd128`,
//! see [`SHIPPED_PROCESSOR`]), `target/wasm/http-api.wasm` and the composed
//! `target/wasm/vector-service.wasm` (`wac plug`); then the benchmark
//! component `target/wasm/vector-kernels.wasm` (built as the processor is)
//! with its size-optimised variant, the test fixtures under
//! `target/wasm/fixtures/` (cargo-component guests and a std-Rust
//! `wasm32-wasip2` guest), and the WASI command `target/wasm/vecproc.wasm`
//! (crate `vecproc-cli`, for runtimes without the component model).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{run, step};
use crate::{paths, tools, wit};

/// Paths of the built artifacts.
pub struct Artifacts {
    /// The composed, servable component.
    pub service: PathBuf,
}

/// What `cargo xtask serve` needs and nothing more: installs what is
/// missing, builds both guests and composes them into
/// `target/wasm/vector-service.wasm`.
pub fn build_service(root: &Path) -> Result<Artifacts> {
    tools::ensure_targets()?;
    let cargo_component = tools::ensure(&tools::CARGO_COMPONENT)?;
    let wac = tools::ensure(&tools::WAC)?;
    wit::fetch(root)?;

    step("building the HTTP guest (cargo component build --release -p http-api)");
    run(Command::new(&cargo_component)
        .current_dir(root.join("components"))
        .args(["component", "build", "--release", "-p", "http-api"])
        .arg("--target-dir")
        .arg(paths::guests("components")))?;

    let out = crate::paths::wasm();
    fs::create_dir_all(&out)?;
    let built = paths::guests("components").join("wasm32-wasip1/release/http_api.wasm");
    fs::copy(&built, out.join("http-api.wasm"))
        .with_context(|| format!("copying {}", built.display()))?;
    build_component(root, &cargo_component, &SHIPPED_PROCESSOR)?;

    step("composing target/wasm/vector-service.wasm (wac plug)");
    let service = out.join("vector-service.wasm");
    run(Command::new(&wac)
        .arg("plug")
        .arg(out.join("http-api.wasm"))
        .arg("--plug")
        .arg(out.join("vector-processor.wasm"))
        .arg("-o")
        .arg(&service))?;
    Ok(Artifacts { service })
}

/// Everything `cargo xtask build` writes: the service ([`build_service`]),
/// the test fixtures, the WASI 0.3 build and the WASI command.
pub fn build(root: &Path) -> Result<Artifacts> {
    let artifacts = build_service(root)?;
    let cargo_component = tools::path_of(&tools::CARGO_COMPONENT);
    let wac = tools::path_of(&tools::WAC);
    let out = crate::paths::wasm();

    step("building fixture guests (tests/fixtures)");
    run(Command::new(&cargo_component)
        .current_dir(root.join("tests/fixtures"))
        .args(["component", "build", "--release", "--workspace"])
        .arg("--target-dir")
        .arg(paths::guests("fixtures")))?;
    fs::create_dir_all(out.join("fixtures"))?;
    // The fixture imports a growable table (`tables`), which Rust cannot
    // provide: a hand-written component does, plugged in with wac.
    let grower = out.join("fixtures/table-grower.wasm");
    let wat = root.join("tests/fixtures/table-grower.wat");
    fs::write(
        &grower,
        wat::parse_file(&wat).with_context(|| format!("parsing {}", wat.display()))?,
    )?;
    step("composing target/wasm/fixtures/misbehaving.wasm (wac plug, with table-grower.wasm)");
    run(Command::new(&wac)
        .arg("plug")
        .arg(paths::guests("fixtures").join("wasm32-wasip1/release/misbehaving.wasm"))
        .arg("--plug")
        .arg(&grower)
        .arg("-o")
        .arg(out.join("fixtures/misbehaving.wasm")))?;

    step(
        "building std-Rust fixture guests (tests/fixtures-std, cargo build --target wasm32-wasip2)",
    );
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root.join("tests/fixtures-std"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(paths::guests("fixtures-std")),
    )?;
    fs::copy(
        paths::guests("fixtures-std").join("wasm32-wasip2/release/cli_guest.wasm"),
        out.join("fixtures/cli-guest.wasm"),
    )
    .context("copying the cli-guest fixture")?;

    step("building WASI 0.3 fixture guests (tests/fixtures-p3, cargo build --target wasm32-unknown-unknown)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root.join("tests/fixtures-p3"))
            .args(["build", "--release"])
            .arg("--target-dir")
            .arg(paths::guests("fixtures-p3")),
    )?;
    fs::copy(
        paths::guests("fixtures-p3").join("wasm32-unknown-unknown/release/misbehaving_p3.wasm"),
        out.join("fixtures/misbehaving-p3.wasm"),
    )
    .context("copying the misbehaving-p3 fixture")?;

    build_p3(root, &wac, &out)?;
    build_component(root, &cargo_component, &SHIPPED_KERNELS)?;
    build_component(root, &cargo_component, &SIZE_KERNELS)?;

    step("building the WASI command target/wasm/vecproc.wasm (vecproc-cli for wasm32-wasip1)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["build", "-p", "vecproc-cli", "--target", "wasm32-wasip1"])
            .args(["--profile", "wasm-cli"]),
    )?;
    fs::copy(
        crate::paths::target().join("wasm32-wasip1/wasm-cli/vecproc.wasm"),
        out.join("vecproc.wasm"),
    )
    .context("copying vecproc.wasm")?;

    for name in [
        "vector-processor.wasm",
        SHIPPED_KERNELS.file,
        SIZE_KERNELS.file,
        "http-api.wasm",
        "vector-service.wasm",
        "vecproc.wasm",
    ] {
        let len = fs::metadata(out.join(name))?.len();
        eprintln!("    target/wasm/{name}: {:.1} KiB", len as f64 / 1024.0);
    }
    Ok(artifacts)
}

/// One release build of a component of the `components/` workspace with a
/// given optimisation, in a target directory of its own when it differs from
/// the workspace profile (so that the default build's cache stays intact).
struct ComponentBuild {
    /// The cargo package.
    package: &'static str,
    /// Target directory under `<target>/guests/`; `None` for the workspace
    /// profile (opt-level "s", no SIMD) in the workspace's own
    /// ([`paths::guests`]`("components")`).
    target_dir: Option<&'static str>,
    /// `opt-level` of the release profile for this build.
    opt_level: &'static str,
    /// Whether WebAssembly SIMD (`-C target-feature=+simd128`) is enabled.
    simd: bool,
    /// File written under `target/wasm/`.
    file: &'static str,
}

/// The shipped processor: opt-level 3 with `simd128`. `cargo xtask bench`
/// measured the same build of the kernels at 1.43× native on blur and
/// 1.46-1.60× on matmul, against 2.23× and 2.87-3.31× for the
/// size-optimised build (BENCHMARKS.md). Every runtime the repository serves
/// it on (Wasmtime, jco in Node and Chromium, workerd) runs SIMD;
/// `cargo xtask test` runs it on all of them.
const SHIPPED_PROCESSOR: ComponentBuild = ComponentBuild {
    package: "vector-processor",
    target_dir: Some("components-o3-simd"),
    opt_level: "3",
    simd: true,
    file: "vector-processor.wasm",
};

/// The benchmark component, built as the processor ships.
const SHIPPED_KERNELS: ComponentBuild = ComponentBuild {
    package: "vector-kernels",
    file: "vector-kernels.wasm",
    ..SHIPPED_PROCESSOR
};

/// The benchmark component at the workspace profile (opt-level "s"), the
/// processor's shipped build before opt-level 3 + SIMD.
const SIZE_KERNELS: ComponentBuild = ComponentBuild {
    package: "vector-kernels",
    target_dir: None,
    opt_level: "s",
    simd: false,
    file: "vector-kernels-size.wasm",
};

/// The benchmark's variant at opt-level 3 without SIMD.
const O3_KERNELS: ComponentBuild = ComponentBuild {
    package: "vector-kernels",
    target_dir: Some("components-o3"),
    opt_level: "3",
    simd: false,
    file: "vector-kernels-o3.wasm",
};

fn build_component(root: &Path, cargo_component: &Path, b: &ComponentBuild) -> Result<PathBuf> {
    step(&format!(
        "building {} at opt-level {}{} -> target/wasm/{}",
        b.package,
        b.opt_level,
        if b.simd { " with simd128" } else { "" },
        b.file
    ));
    let target_dir = match b.target_dir {
        Some(dir) => paths::guests(dir),
        None => paths::guests("components"),
    };
    let mut cmd = Command::new(cargo_component);
    cmd.current_dir(root.join("components")).args([
        "component",
        "build",
        "--release",
        "-p",
        b.package,
    ]);
    cmd.arg("--target-dir").arg(&target_dir);
    if b.target_dir.is_some() {
        cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", b.opt_level);
    }
    if b.simd {
        cmd.env("RUSTFLAGS", "-C target-feature=+simd128");
    }
    run(&mut cmd)?;
    let out = crate::paths::wasm().join(b.file);
    let built = target_dir
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", b.package.replace('-', "_")));
    fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    Ok(out)
}

/// The benchmark component's three builds, for `cargo xtask bench`: as the
/// processor ships (`vector-kernels.wasm`, written by [`build`]), opt-level 3
/// without SIMD (`vector-kernels-o3.wasm`, built here) and for size
/// (`vector-kernels-size.wasm`, written by [`build`]).
pub struct BenchVariants {
    /// opt-level 3 with simd128.
    pub shipped: PathBuf,
    /// opt-level 3 without SIMD.
    pub o3: PathBuf,
    /// opt-level "s".
    pub size: PathBuf,
}

/// Builds the opt-level 3 variant and checks the other two exist.
pub fn build_bench_variants(root: &Path) -> Result<BenchVariants> {
    let cargo_component = tools::ensure(&tools::CARGO_COMPONENT)?;
    let o3 = build_component(root, &cargo_component, &O3_KERNELS)?;
    let wasm = crate::paths::wasm();
    let (shipped, size) = (
        wasm.join(SHIPPED_KERNELS.file),
        wasm.join(SIZE_KERNELS.file),
    );
    for path in [&shipped, &size] {
        anyhow::ensure!(
            path.exists(),
            "{} is missing: run cargo xtask build",
            path.display()
        );
    }
    Ok(BenchVariants { shipped, o3, size })
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
    Ok(crate::paths::target().join("release/host-runner"))
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
            .args(["build", "--release"])
            .arg("--target-dir")
            .arg(paths::guests("http-api-p3")),
    )?;
    let built =
        paths::guests("http-api-p3").join("wasm32-unknown-unknown/release/http_api_p3.wasm");
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
