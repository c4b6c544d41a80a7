//! `cargo xtask build`: the guest components and their composition, and
//! everything the tests and benchmarks run; [`build_service`] is the part
//! `cargo xtask serve` needs.
//!
//! Every guest is a plain cargo crate built for `wasm32-unknown-unknown` and
//! linked into a component by the toolchain's `wasm-component-ld`
//! (`components/.cargo/config.toml` says why). Writes
//! `target/wasm/vector-processor.wasm` (opt-level 3 with `simd128`, see
//! [`SHIPPED_PROCESSOR`]), `target/wasm/http-api.wasm` and the composed
//! `target/wasm/vector-service.wasm` (`wac plug`), the stateful build
//! `http-api-stateful.wasm` composed into `vector-store-service.wasm`; then the WASI 0.3 build
//! (`http-api-p3.wasm`, `vector-service-p3.wasm`), the benchmark component
//! `target/wasm/vector-kernels.wasm` (built as the processor is) with its
//! size-optimised variant, the test fixtures under `target/wasm/fixtures/`,
//! the WASI command `target/wasm/vecproc.wasm` (crate `vecproc-cli`, for
//! runtimes without the component model), and the wasm-bindgen package
//! `target/web/` ([`crate::web`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{cargo, run, step};
use crate::{paths, tools, wit};

/// Paths of the built artifacts.
pub struct Artifacts {
    /// The composed, servable component.
    pub service: PathBuf,
}

/// Where a guest workspace's release build of `crate_name` lands.
fn built(workspace: &str, crate_name: &str) -> PathBuf {
    paths::guests(workspace)
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// Copies a built guest to `target/wasm/<file>`.
fn publish_artifact(from: &Path, file: &str) -> Result<PathBuf> {
    let to = paths::wasm().join(file);
    fs::create_dir_all(to.parent().expect("under target/wasm"))?;
    fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
    Ok(to)
}

/// `wac plug SOCKET --plug PLUG -o OUT`.
fn plug(wac: &Path, socket: &Path, plug: &Path, out: &Path) -> Result<()> {
    step(&format!(
        "composing {} (wac plug {} --plug {})",
        out.display(),
        socket.file_name().unwrap_or_default().to_string_lossy(),
        plug.file_name().unwrap_or_default().to_string_lossy()
    ));
    run(Command::new(wac)
        .arg("plug")
        .arg(socket)
        .arg("--plug")
        .arg(plug)
        .arg("-o")
        .arg(out))
}

/// The two shipped guests, built: `target/wasm/http-api.wasm` and
/// `target/wasm/vector-processor.wasm`. Needs only the Rust targets and the
/// WASI WIT; what `cargo xtask serve` builds before it composes them with
/// host-runner (in-process wac-graph, the same bytes as `wac plug`: the
/// composition suite checks it).
pub fn build_guests(root: &Path) -> Result<Guests> {
    tools::ensure_targets()?;
    wit::fetch(root)?;
    step("building the HTTP guest (components/, cargo build --release -p http-api)");
    run(cargo()
        .current_dir(root.join("components"))
        .args(["build", "--release", "-p", "http-api"])
        .arg("--target-dir")
        .arg(paths::guests("components")))?;
    let api = publish_artifact(&built("components", "http-api"), "http-api.wasm")?;
    step(
        "building the stateful HTTP guest (components/, cargo build --release -p http-api \
         --features stateful)",
    );
    run(cargo()
        .current_dir(root.join("components"))
        .args([
            "build",
            "--release",
            "-p",
            "http-api",
            "--features",
            "stateful",
        ])
        .arg("--target-dir")
        .arg(paths::guests("components")))?;
    let stateful = publish_artifact(&built("components", "http-api"), "http-api-stateful.wasm")?;
    let processor = build_component(root, &SHIPPED_PROCESSOR)?;
    Ok(Guests {
        api,
        stateful,
        processor,
    })
}

/// The shipped guests' paths.
pub struct Guests {
    /// `target/wasm/http-api.wasm`.
    pub api: PathBuf,
    /// `target/wasm/http-api-stateful.wasm` (`/vectors` over wasi:keyvalue).
    pub stateful: PathBuf,
    /// `target/wasm/vector-processor.wasm`.
    pub processor: PathBuf,
}

/// Where the composed service goes: `target/wasm/vector-service.wasm`.
pub fn service_path() -> PathBuf {
    paths::wasm().join("vector-service.wasm")
}

/// Where the composed stateful service goes:
/// `target/wasm/vector-store-service.wasm`.
pub fn store_service_path() -> PathBuf {
    paths::wasm().join("vector-store-service.wasm")
}

/// The guests ([`build_guests`]) composed with `wac plug` into
/// `target/wasm/vector-service.wasm`.
pub fn build_service(root: &Path) -> Result<Artifacts> {
    let wac = tools::ensure(&tools::WAC)?;
    let guests = build_guests(root)?;
    let service = service_path();
    plug(&wac, &guests.api, &guests.processor, &service)?;
    plug(
        &wac,
        &guests.stateful,
        &guests.processor,
        &store_service_path(),
    )?;
    Ok(Artifacts { service })
}

/// Everything `cargo xtask build` writes: the service ([`build_service`]),
/// the test fixtures, the WASI 0.3 build and the WASI command.
pub fn build(root: &Path) -> Result<Artifacts> {
    let artifacts = build_service(root)?;
    let wac = tools::path_of(&tools::WAC);
    let out = paths::wasm();

    step("building the WASI 0.3 HTTP guest (components/, cargo build --release -p http-api-p3)");
    run(cargo()
        .current_dir(root.join("components"))
        .args(["build", "--release", "-p", "http-api-p3"])
        .arg("--target-dir")
        .arg(paths::guests("components")))?;
    let api_p3 = publish_artifact(&built("components", "http-api-p3"), "http-api-p3.wasm")?;
    plug(
        &wac,
        &api_p3,
        &out.join(SHIPPED_PROCESSOR.file),
        &out.join("vector-service-p3.wasm"),
    )?;

    wit::fetch_config(root)?;
    step("building fixture guests (tests/fixtures, cargo build --release --workspace)");
    run(cargo()
        .current_dir(root.join("tests/fixtures"))
        .args(["build", "--release", "--workspace"])
        .arg("--target-dir")
        .arg(paths::guests("fixtures")))?;
    publish_artifact(
        &built("fixtures", "misbehaving-p3"),
        "fixtures/misbehaving-p3.wasm",
    )?;
    publish_artifact(&built("fixtures", "platform"), "fixtures/platform.wasm")?;
    publish_artifact(&built("fixtures", "kv-draft"), "fixtures/kv-draft.wasm")?;
    // The fixture imports a growable table (`tables`), which Rust cannot
    // provide: a hand-written component does, plugged in with wac.
    let grower = out.join("fixtures/table-grower.wasm");
    let wat = root.join("tests/fixtures/table-grower.wat");
    fs::write(
        &grower,
        wat::parse_file(&wat).with_context(|| format!("parsing {}", wat.display()))?,
    )?;
    plug(
        &wac,
        &built("fixtures", "misbehaving"),
        &grower,
        &out.join("fixtures/misbehaving.wasm"),
    )?;

    step(
        "building std-Rust fixture guests (tests/fixtures-std, cargo build --target wasm32-wasip2)",
    );
    run(cargo()
        .current_dir(root.join("tests/fixtures-std"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(paths::guests("fixtures-std")))?;
    publish_artifact(
        &paths::guests("fixtures-std").join("wasm32-wasip2/release/cli_guest.wasm"),
        "fixtures/cli-guest.wasm",
    )?;

    build_component(root, &SHIPPED_KERNELS)?;
    build_component(root, &SIZE_KERNELS)?;

    step("building the WASI command target/wasm/vecproc.wasm (vecproc-cli for wasm32-wasip1)");
    run(cargo()
        .current_dir(root)
        .args(["build", "-p", "vecproc-cli", "--target", "wasm32-wasip1"])
        .args(["--profile", "wasm-cli"]))?;
    publish_artifact(
        &paths::target().join("wasm32-wasip1/wasm-cli/vecproc.wasm"),
        "vecproc.wasm",
    )?;

    crate::web::build(root)?;

    report_sizes(
        &out,
        "target/wasm",
        &[
            SHIPPED_PROCESSOR.file,
            SHIPPED_KERNELS.file,
            SIZE_KERNELS.file,
            "http-api.wasm",
            "vector-service.wasm",
            "http-api-stateful.wasm",
            "vector-store-service.wasm",
            "http-api-p3.wasm",
            "vector-service-p3.wasm",
            "vecproc.wasm",
        ],
    )?;
    Ok(artifacts)
}

/// Prints the size of each of `files` under `dir`, shown as `shown/FILE`.
pub fn report_sizes(dir: &Path, shown: &str, files: &[&str]) -> Result<()> {
    for file in files {
        let len = fs::metadata(dir.join(file))
            .with_context(|| format!("{shown}/{file} was not written"))?
            .len();
        eprintln!("    {shown}/{file}: {:.1} KiB", len as f64 / 1024.0);
    }
    Ok(())
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

fn build_component(root: &Path, b: &ComponentBuild) -> Result<PathBuf> {
    step(&format!(
        "building {} at opt-level {}{} -> target/wasm/{}",
        b.package,
        b.opt_level,
        if b.simd { " with simd128" } else { "" },
        b.file
    ));
    let workspace = b.target_dir.unwrap_or("components");
    let mut cmd = cargo();
    cmd.current_dir(root.join("components"))
        .args(["build", "--release", "-p", b.package])
        .arg("--target-dir")
        .arg(paths::guests(workspace));
    if b.target_dir.is_some() {
        cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", b.opt_level);
    }
    if b.simd {
        // RUSTFLAGS replaces the `rustflags` of components/.cargo/config.toml,
        // so the initial heap it reserves is named again here.
        cmd.env(
            "RUSTFLAGS",
            "-C target-feature=+simd128 -C link-arg=--initial-heap=262144",
        );
    }
    run(&mut cmd)?;
    publish_artifact(&built(workspace, b.package), b.file)
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
    let o3 = build_component(root, &O3_KERNELS)?;
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
    wit::fetch(root)?;
    step("building host-runner (cargo build --release -p host-runner)");
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "host-runner"]))?;
    Ok(crate::paths::target().join("release/host-runner"))
}
