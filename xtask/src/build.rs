//! `cargo xtask build`: the guest components, their compositions, and
//! everything the tests and benchmarks run, under `<target>/wasm/`.
//!
//! Every guest is a plain cargo crate built for `wasm32-unknown-unknown` and
//! linked into a component by the toolchain's `wasm-component-ld`
//! (`components/.cargo/config.toml` says why), in a target directory of its
//! workspace's own ([`paths::guests`]).
//!
//! - [`build_guests`], what `cargo xtask serve` needs: `http-api.wasm`, its
//!   stateful build `http-api-stateful.wasm`, and `vector-processor.wasm`
//!   (opt-level 3 with `simd128`, see [`SHIPPED_PROCESSOR`]);
//! - [`build_service`]: those composed with `wac plug` into
//!   `vector-service.wasm` and `vector-store-service.wasm`;
//! - [`build`], everything: also the WASI 0.3 build (`http-api-p3.wasm`,
//!   `vector-service-p3.wasm`), the benchmark component
//!   `vector-kernels.wasm` (built as the processor is) with its
//!   size-optimised variant, the test fixtures under `fixtures/`, the WASI
//!   command `vecproc.wasm` (crate `vecproc-cli`, for runtimes without the
//!   component model), and the wasm-bindgen package `target/web/`
//!   ([`crate::web`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{cargo, run, step};
use crate::{paths, tools, wit};

/// Where a guest workspace's release build of `crate_name` lands.
fn built(workspace: &str, crate_name: &str) -> PathBuf {
    paths::guests(workspace)
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// Copies a built guest to `<target>/wasm/<file>`.
fn copy_out(from: &Path, file: &str) -> Result<PathBuf> {
    let to = paths::wasm().join(file);
    fs::create_dir_all(to.parent().expect("under target/wasm"))?;
    fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
    Ok(to)
}

/// `cargo build --release ARGS` in the guest workspace `dir`, in its own
/// target directory.
fn cargo_in(root: &Path, dir: &str, args: &[&str]) -> Result<()> {
    step(&format!(
        "building guests ({dir}, cargo build --release {})",
        args.join(" ")
    ));
    run(cargo()
        .current_dir(root.join(dir))
        .args(["build", "--release"])
        .args(args)
        .arg("--target-dir")
        .arg(paths::guests_of(dir)))
}

/// `wac plug SOCKET --plug PLUG -o OUT`.
fn plug(socket: &Path, plug: &Path, out: &Path) -> Result<()> {
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    step(&format!(
        "composing {} (wac plug {} --plug {})",
        name(out),
        name(socket),
        name(plug)
    ));
    run(Command::new(tools::path_of(&tools::WAC))
        .arg("plug")
        .arg(socket)
        .arg("--plug")
        .arg(plug)
        .arg("-o")
        .arg(out))
}

/// The shipped guests' paths.
pub struct Guests {
    /// `http-api.wasm`.
    pub api: PathBuf,
    /// `http-api-stateful.wasm` (`/vectors` over wasi:keyvalue).
    pub stateful: PathBuf,
    /// `vector-processor.wasm`.
    pub processor: PathBuf,
}

/// The three shipped guests, built. Needs only the Rust targets and the
/// WASI WIT: `cargo xtask serve` builds these and composes them with
/// host-runner (in-process wac-graph, the same bytes as `wac plug`: the
/// composition suite checks it).
pub fn build_guests(root: &Path) -> Result<Guests> {
    tools::ensure_targets()?;
    wit::fetch(root)?;
    cargo_in(root, "components", &["-p", "http-api"])?;
    let api = copy_out(&built("components", "http-api"), "http-api.wasm")?;
    cargo_in(
        root,
        "components",
        &["-p", "http-api", "--features", "stateful"],
    )?;
    let stateful = copy_out(&built("components", "http-api"), "http-api-stateful.wasm")?;
    let processor = build_component(root, &SHIPPED_PROCESSOR)?;
    Ok(Guests {
        api,
        stateful,
        processor,
    })
}

/// `<target>/wasm/vector-service.wasm`, the composed service.
pub fn service_path() -> PathBuf {
    paths::wasm().join("vector-service.wasm")
}

/// `<target>/wasm/vector-store-service.wasm`, the composed stateful service.
pub fn store_service_path() -> PathBuf {
    paths::wasm().join("vector-store-service.wasm")
}

/// The guests composed with `wac plug`; returns [`service_path`].
pub fn build_service(root: &Path) -> Result<PathBuf> {
    tools::ensure(&tools::WAC)?;
    let guests = build_guests(root)?;
    plug(&guests.api, &guests.processor, &service_path())?;
    plug(&guests.stateful, &guests.processor, &store_service_path())?;
    Ok(service_path())
}

/// Everything `cargo xtask build` writes.
pub fn build(root: &Path) -> Result<()> {
    build_service(root)?;
    let out = paths::wasm();

    cargo_in(root, "components", &["-p", "http-api-p3"])?;
    let api_p3 = copy_out(&built("components", "http-api-p3"), "http-api-p3.wasm")?;
    let processor = out.join(SHIPPED_PROCESSOR.file);
    plug(&api_p3, &processor, &out.join("vector-service-p3.wasm"))?;

    wit::fetch_config(root)?;
    cargo_in(root, "tests/fixtures", &["--workspace"])?;
    for name in ["misbehaving-p3", "platform", "kv-draft"] {
        copy_out(&built("fixtures", name), &format!("fixtures/{name}.wasm"))?;
    }
    // The fixture imports a growable table (`tables`), which Rust cannot
    // provide: a hand-written component does, plugged in with wac.
    let grower = out.join("fixtures/table-grower.wasm");
    let wat = root.join("tests/fixtures/table-grower.wat");
    fs::write(
        &grower,
        wat::parse_file(&wat).with_context(|| format!("parsing {}", wat.display()))?,
    )?;
    let misbehaving = out.join("fixtures/misbehaving.wasm");
    plug(&built("fixtures", "misbehaving"), &grower, &misbehaving)?;

    cargo_in(root, "tests/fixtures-std", &["--target", "wasm32-wasip2"])?;
    copy_out(
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
    copy_out(
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
    )
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
    /// profile (opt-level "s", no SIMD) in the workspace's own.
    target_dir: Option<&'static str>,
    /// `opt-level` of the release profile for this build.
    opt_level: &'static str,
    /// Whether WebAssembly SIMD (`-C target-feature=+simd128`) is enabled.
    simd: bool,
    /// File written under `<target>/wasm/`.
    file: &'static str,
}

/// The shipped processor: opt-level 3 with `simd128`, which `cargo xtask
/// bench` measured faster than the size-optimised build on every kernel
/// (BENCHMARKS.md). Every runtime the repository serves it on (Wasmtime,
/// jco in Node and Chromium, workerd) runs SIMD; `cargo xtask test` runs it
/// on all of them.
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
    copy_out(&built(workspace, b.package), b.file)
}

/// The benchmark component's three builds, for `cargo xtask bench`.
pub struct BenchVariants {
    /// opt-level 3 with simd128 (`vector-kernels.wasm`, as the processor ships).
    pub shipped: PathBuf,
    /// opt-level 3 without SIMD (`vector-kernels-o3.wasm`, built here).
    pub o3: PathBuf,
    /// opt-level "s" (`vector-kernels-size.wasm`).
    pub size: PathBuf,
}

/// Builds the opt-level 3 variant beside the two [`build`] writes.
pub fn build_bench_variants(root: &Path) -> Result<BenchVariants> {
    let o3 = build_component(root, &O3_KERNELS)?;
    let wasm = paths::wasm();
    Ok(BenchVariants {
        shipped: wasm.join(SHIPPED_KERNELS.file),
        o3,
        size: wasm.join(SIZE_KERNELS.file),
    })
}

/// Builds host-runner in release and returns its path; `$VECPROC_HOST_RUNNER`
/// names a binary to use instead.
pub fn host_runner(root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VECPROC_HOST_RUNNER") {
        return Ok(path.into());
    }
    wit::fetch(root)?;
    step("building host-runner (cargo build --release -p host-runner)");
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "host-runner"]))?;
    Ok(paths::target().join("release/host-runner"))
}
