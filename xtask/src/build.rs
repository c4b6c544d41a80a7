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
//!   (opt-level 3 with `simd128`, see [`SHIPPED`]);
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

use crate::run::{self, run, step};
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
fn guest_build(root: &Path, dir: &str, args: &str) -> Result<()> {
    step(&format!(
        "building guests ({dir}, cargo build --release {args})"
    ));
    let mut cmd = run::cargo_in(&root.join(dir), &format!("build --release {args}"));
    run(cmd.arg("--target-dir").arg(paths::guests(dir)))
}

/// `wac plug SOCKET --plug PLUG -o OUT`.
fn plug(socket: &Path, plug: &Path, out: &Path) -> Result<()> {
    step(&format!("composing {} (wac plug)", out.display()));
    let mut wac = Command::new(tools::path_of(&tools::WAC));
    run(wac
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
    guest_build(root, "components", "-p http-api")?;
    let api = copy_out(&built("components", "http-api"), "http-api.wasm")?;
    guest_build(root, "components", "-p http-api --features stateful")?;
    let stateful = copy_out(&built("components", "http-api"), "http-api-stateful.wasm")?;
    let processor = build_component(root, "vector-processor", &SHIPPED, "vector-processor.wasm")?;
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

    guest_build(root, "components", "-p http-api-p3")?;
    let api_p3 = copy_out(&built("components", "http-api-p3"), "http-api-p3.wasm")?;
    let processor = out.join("vector-processor.wasm");
    plug(&api_p3, &processor, &out.join("vector-service-p3.wasm"))?;

    wit::fetch_config(root)?;
    guest_build(root, "tests/fixtures", "--workspace")?;
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

    guest_build(root, "tests/fixtures-std", "--target wasm32-wasip2")?;
    copy_out(
        &paths::guests("fixtures-std").join("wasm32-wasip2/release/cli_guest.wasm"),
        "fixtures/cli-guest.wasm",
    )?;

    build_component(root, "vector-kernels", &SHIPPED, "vector-kernels.wasm")?;
    build_component(root, "vector-kernels", &SIZE, "vector-kernels-size.wasm")?;

    step("building the WASI command target/wasm/vecproc.wasm (vecproc-cli for wasm32-wasip1)");
    let cli = "build -p vecproc-cli --target wasm32-wasip1 --profile wasm-cli";
    run(&mut run::cargo_in(root, cli))?;
    let cli = paths::target().join("wasm32-wasip1/wasm-cli/vecproc.wasm");
    copy_out(&cli, "vecproc.wasm")?;

    crate::web::build(root)?;
    Ok(())
}

/// How a component of `components/` is optimised: its target directory
/// under `<target>/guests/` (one per variant, so each build stays cached),
/// the opt-level, and whether `simd128` is on.
struct Opt(&'static str, &'static str, bool);

/// The processor as it ships, and the benchmark's kernels built alike:
/// opt-level 3 with `simd128`, measured faster than the size-optimised
/// build on every kernel (BENCHMARKS.md). Every runtime it is served on
/// (Wasmtime, jco in Node and Chromium, workerd) runs SIMD.
const SHIPPED: Opt = Opt("components-o3-simd", "3", true);
/// The benchmark's comparisons: the workspace profile (opt-level "s", the
/// HTTP guests' build) and opt-level 3 without SIMD.
const SIZE: Opt = Opt("components", "s", false);
const O3: Opt = Opt("components-o3", "3", false);

/// Builds `package` of `components/` with `opt` into `<target>/wasm/<file>`.
fn build_component(root: &Path, package: &str, opt: &Opt, file: &str) -> Result<PathBuf> {
    let &Opt(dir, level, simd) = opt;
    let with = if simd { " with simd128" } else { "" };
    step(&format!(
        "building {package} at opt-level {level}{with} -> target/wasm/{file}"
    ));
    let mut cmd = run::cargo_in(
        &root.join("components"),
        &format!("build --release -p {package}"),
    );
    cmd.arg("--target-dir")
        .arg(paths::guests(dir))
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", level);
    if simd {
        // RUSTFLAGS replaces the `rustflags` of components/.cargo/config.toml,
        // so the initial heap it reserves is named again here.
        cmd.env(
            "RUSTFLAGS",
            "-C target-feature=+simd128 -C link-arg=--initial-heap=262144",
        );
    }
    run(&mut cmd)?;
    copy_out(&built(dir, package), file)
}

/// Builds `vector-kernels-o3.wasm`, the benchmark's third variant beside
/// the two [`build`] writes.
pub fn build_bench_variants(root: &Path) -> Result<()> {
    build_component(root, "vector-kernels", &O3, "vector-kernels-o3.wasm").map(drop)
}

/// Builds host-runner in release and returns its path; `$VECPROC_HOST_RUNNER`
/// names a binary to use instead.
pub fn host_runner(root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VECPROC_HOST_RUNNER") {
        return Ok(path.into());
    }
    wit::fetch(root)?;
    step("building host-runner (cargo build --release -p host-runner)");
    run(&mut run::cargo_in(root, "build --release -p host-runner"))?;
    Ok(paths::target().join("release/host-runner"))
}
