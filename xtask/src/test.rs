//! `cargo xtask test`: install what the suites need, lint and build, then
//! run every suite: Rust (unit, guest, end-to-end, contract, manifests) and
//! JavaScript (Node and Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::run::{cargo_in, output, run, step};
use crate::{apt, build, paths, python, tools};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Also run the WASI command under the native `wasmer` CLI, installing
    /// wasmer-cli 7.4.2 when missing (about 630 crates: 11 to 28 minutes on
    /// a fresh 2-core machine, a third of a fresh CI run, so not by
    /// default; Wasmer itself is always tested through `@wasmer/sdk`).
    /// `$VECPROC_WASMER` naming a wasmer binary opts in as well.
    #[arg(long)]
    wasmer_cli: bool,
}

/// Runs every suite.
pub fn test(root: &Path, args: Args) -> Result<()> {
    let start = Instant::now();
    let lint = !args.no_lint;
    // host-runner's wasi:keyvalue bindings read the fetched WIT, and the
    // containerd shim's build needs protoc and libseccomp, even to lint.
    crate::wit::fetch(root)?;
    apt::ensure(&apt::SHIM_BUILD)?;
    // What needs no guest build is checked first, so a mistake there fails
    // in minutes, not after the tools and guests are built.
    if lint {
        step("checking formatting (cargo fmt --check: every workspace)");
        for dir in [
            ".",
            "fuzz",
            "components",
            "tests/fixtures",
            "tests/fixtures-std",
        ] {
            run(&mut cargo_in(&root.join(dir), "fmt --all --check"))?;
        }
        step("linting the fuzz targets (fuzz/, cargo clippy -D warnings, stable)");
        let fuzz = root.join("fuzz");
        run(&mut cargo_in(&fuzz, "clippy --all-targets -- -D warnings"))?;
        lint_while_building()?;
    }
    // The root workspace, every target at once, as `cargo test --workspace`
    // will want them, in one feature set. Not the xtask, whose binary is
    // running: it is linted on its own.
    step("building the workspace, linted unless --no-lint (host-runner and its shim included)");
    run(&mut cargo_in(
        root,
        "build --workspace --exclude xtask --all-targets",
    ))?;
    if lint {
        step("linting the xtask (cargo clippy -p xtask -D warnings)");
        run(&mut cargo_in(
            root,
            "clippy -p xtask --all-targets -- -D warnings",
        ))?;
    }
    // The guests and fixtures, linted as they are built when `lint` is on.
    build::build(root)?;

    let wasmtime = tools::ensure(&tools::WASMTIME)?;
    // For js/test/wasi.test.mjs: `wasmer run` only when asked for.
    let wasmer = match std::env::var_os("VECPROC_WASMER") {
        Some(path) => Some(PathBuf::from(path)),
        None if args.wasmer_cli => Some(tools::ensure(&tools::WASMER)?),
        None => None,
    };
    // registry.rs: the real wkg, Debian's OCI registry and htpasswd.
    let wkg = tools::ensure(&tools::WKG)?;
    // front_door.rs: curl with nghttp2. keyvalue.rs: Redis. telemetry.rs:
    // Prometheus. containerd.rs: containerd and runc, on a private socket.
    use apt::{CONTAINERD, CURL, HTPASSWD, PROMETHEUS, REDIS, REGISTRY};
    apt::ensure(&[REGISTRY, HTPASSWD, CURL, REDIS, PROMETHEUS, CONTAINERD])?;
    // contract.rs and manifests.rs: pinned Python tools in venvs.
    let schemathesis = python::schemathesis(root)?;
    let kubernetes_validate = python::kubernetes_validate()?;
    step("running unit, guest, end-to-end and contract tests (cargo test --workspace)");
    // Under the build's environment (the lint wrapper included), so
    // nothing built above is rebuilt.
    let debug = paths::target().join("debug");
    run(cargo_in(root, "test --workspace")
        .env("VECPROC_WASMTIME", &wasmtime)
        .env("VECPROC_HOST_RUNNER", debug.join("host-runner"))
        .env("VECPROC_SHIM", debug.join("containerd-shim-host-runner-v1"))
        .env("VECPROC_WKG", &wkg)
        .env("VECPROC_SCHEMATHESIS", schemathesis)
        .env("VECPROC_KUBERNETES_VALIDATE", kubernetes_validate))?;
    step("replaying the fuzz targets' committed seeds (fuzz/, cargo test, stable)");
    run(&mut cargo_in(&root.join("fuzz"), "test"))?;

    crate::js::test(root, &wasmtime, wasmer.as_deref())?;
    eprintln!(
        "==> all suites passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Lints during the builds: clippy-driver becomes cargo's workspace
/// wrapper for every cargo command this process starts from here on, so
/// each workspace's own crates (the root's, the guests', the fixtures') are
/// compiled by it (rustc with clippy's lints, `-D warnings`) and their
/// dependencies by rustc, as under `cargo clippy`, but with code
/// generation: one pass instead of a check and a build of each crate.
/// `cargo install` runs without it ([`tools::ensure`]).
fn lint_while_building() -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = output(Command::new(&rustc).args(["--print", "sysroot"]))
        .context("asking rustc for its sysroot")?;
    let driver = Path::new(sysroot.trim()).join("bin/clippy-driver");
    ensure!(
        driver.is_file(),
        "{} is missing: the toolchain has no clippy (rustup component add clippy)",
        driver.display()
    );
    std::env::set_var("RUSTC_WORKSPACE_WRAPPER", driver);
    // cargo-clippy's encoding of the arguments after `--`.
    std::env::set_var(
        "CLIPPY_ARGS",
        "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
    );
    Ok(())
}
