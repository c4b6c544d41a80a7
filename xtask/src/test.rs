//! `cargo xtask test`: install what the suites need, build the guests, then
//! run formatting and lint checks and every test suite: Rust (unit, guest,
//! end-to-end under `wasmtime serve`) and JavaScript (Node and Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::run::{cargo, output, run, step};
use crate::{apt, build, paths, tools};

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
    // What needs no guest build is linted first, so a mistake there fails
    // in minutes, not after the tools and guests are built.
    // host-runner's wasi:keyvalue bindings read the fetched WIT, so even
    // clippy needs it.
    crate::wit::fetch(root)?;
    // The containerd shim's build needs protoc and libseccomp (runwasi's
    // library), so even clippy does.
    apt::ensure_shim_build()?;
    if !args.no_lint {
        step("checking formatting (cargo fmt --check: the root workspace and fuzz/)");
        run(cargo().current_dir(root).args(["fmt", "--all", "--check"]))?;
        run(cargo()
            .current_dir(root.join("fuzz"))
            .args(["fmt", "--all", "--check"]))?;
        step("linting the fuzz targets (fuzz/, cargo clippy -D warnings, stable)");
        run(cargo().current_dir(root.join("fuzz")).args([
            "clippy",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The root workspace, linted as it is built: its own crates compile
    // through clippy-driver (what `cargo clippy` runs, here with code
    // generation), so lint and build are one pass over ~600 crates instead
    // of a check and a build of each. Every target at once, as `cargo test
    // --workspace` will want them, in one feature set; host-runner's and
    // the shim's binaries for the suites. Not the xtask, whose binary is
    // running (the registry suite runs it as `VECPROC_XTASK`): it is
    // linted on its own.
    let lint = if args.no_lint {
        None
    } else {
        Some(Lint::new()?)
    };
    step(if lint.is_some() {
        "building and linting the workspace (clippy-driver -D warnings; host-runner and its containerd shim included)"
    } else {
        "building the workspace (host-runner and its containerd shim included)"
    });
    run(Lint::apply(
        &lint,
        cargo().current_dir(root).args([
            "build",
            "--workspace",
            "--exclude",
            "xtask",
            "--all-targets",
        ]),
    ))?;
    if !args.no_lint {
        step("linting the xtask (cargo clippy -p xtask -D warnings)");
        run(cargo().current_dir(root).args([
            "clippy",
            "-p",
            "xtask",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    build::build(root)?;
    let wasmtime = tools::ensure(&tools::WASMTIME)?;
    // For js/test/wasi.test.mjs: `wasmer run` only when asked for.
    let wasmer = match std::env::var_os("VECPROC_WASMER") {
        Some(path) => Some(std::path::PathBuf::from(path)),
        None if args.wasmer_cli => Some(tools::ensure(&tools::WASMER)?),
        None => None,
    };
    // The registry suite: the real wkg, Debian's OCI registry and htpasswd.
    let wkg = tools::ensure(&tools::WKG)?;
    apt::ensure_registry()?;
    apt::ensure("/usr/bin/htpasswd", &["apache2-utils"], &[])?;
    // host-runner's TLS and HTTP/2 suite (front_door.rs): curl with nghttp2.
    apt::ensure("/usr/bin/curl", &["curl"], &[])?;
    // keyvalue.rs: Debian's Redis, started by the suite on free loopback
    // ports.
    apt::ensure_redis()?;
    // telemetry.rs: Debian's Prometheus scrapes the admin endpoint. Its
    // packaged service (every interface, :9090) is stopped at once.
    apt::ensure_without_recommends(
        "/usr/bin/prometheus",
        &["prometheus"],
        &[apt::Service {
            name: "prometheus",
            packaged_cmdline: "^/usr/bin/prometheus$",
        }],
    )?;

    if !args.no_lint {
        step("checking formatting of the guest workspaces (cargo fmt --check)");
        for dir in ["components", "tests/fixtures", "tests/fixtures-std"] {
            run(cargo()
                .current_dir(root.join(dir))
                .args(["fmt", "--all", "--check"]))?;
        }
        // Each with the target its `.cargo/config.toml` names, or wasip2
        // (Rust std) for the std fixtures, in the target directory its
        // build uses.
        for (dir, target) in [
            ("components", None),
            ("tests/fixtures", None),
            ("tests/fixtures-std", Some("wasm32-wasip2")),
        ] {
            step(&format!(
                "linting guest crates ({dir}, cargo clippy -D warnings)"
            ));
            let mut cmd = cargo();
            cmd.current_dir(root.join(dir))
                .args(["clippy", "--release", "--workspace"])
                .arg("--target-dir")
                .arg(paths::guests_of(dir));
            if let Some(target) = target {
                cmd.args(["--target", target]);
            }
            run(cmd.args(["--", "-D", "warnings"]))?;
        }
        step("linting the stateful HTTP guest (components/, --features stateful)");
        run(cargo()
            .current_dir(root.join("components"))
            .args([
                "clippy",
                "--release",
                "-p",
                "http-api",
                "--features",
                "stateful",
            ])
            .arg("--target-dir")
            .arg(paths::guests_of("components"))
            .args(["--", "-D", "warnings"]))?;
    }

    // containerd.rs: Debian's containerd and runc, started by the suite on
    // a private socket.
    apt::ensure(
        "/usr/bin/containerd",
        &["containerd", "runc"],
        &[apt::CONTAINERD],
    )?;
    step("running unit, guest and end-to-end tests (cargo test --workspace)");
    // Under the build's environment, so nothing built above is rebuilt.
    run(Lint::apply(&lint, cargo().current_dir(root))
        .env("VECPROC_WASMTIME", &wasmtime)
        .env(
            "VECPROC_HOST_RUNNER",
            crate::paths::target().join("debug/host-runner"),
        )
        .env("VECPROC_WKG", &wkg)
        .env(
            "VECPROC_SHIM",
            crate::paths::target().join("debug/containerd-shim-host-runner-v1"),
        )
        .env("VECPROC_XTASK", std::env::current_exe()?)
        .args(["test", "--workspace"]))?;
    step("replaying the fuzz targets' committed seeds (fuzz/, cargo test, stable)");
    run(cargo().current_dir(root.join("fuzz")).args(["test"]))?;
    crate::contract::check(
        root,
        &wasmtime,
        &crate::paths::target().join("debug/host-runner"),
        &crate::contract::Args::default(),
    )?;

    crate::python::validate_manifests(root)?;

    crate::js::test(
        root,
        &crate::js::Tools {
            wasmtime: &wasmtime,
            wasmer: wasmer.as_deref(),
        },
    )?;
    eprintln!(
        "==> all suites passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// clippy-driver as cargo's workspace wrapper: the workspace's own crates
/// are compiled by it (rustc with clippy's lints, `-D warnings`), their
/// dependencies by rustc, as under `cargo clippy`, but with code generation.
struct Lint {
    driver: PathBuf,
}

impl Lint {
    /// Finds the toolchain's clippy-driver (beside its rustc).
    fn new() -> Result<Self> {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let sysroot = output(Command::new(&rustc).args(["--print", "sysroot"]))
            .context("asking rustc for its sysroot")?;
        let driver = Path::new(sysroot.trim()).join("bin/clippy-driver");
        ensure!(
            driver.is_file(),
            "{} is missing: the toolchain has no clippy (rustup component add clippy)",
            driver.display()
        );
        Ok(Self { driver })
    }

    /// Sets the wrapper and clippy's arguments on `cmd` when linting.
    fn apply<'a>(lint: &Option<Self>, cmd: &'a mut Command) -> &'a mut Command {
        if let Some(lint) = lint {
            // cargo-clippy's encoding of the arguments after `--`.
            cmd.env("RUSTC_WORKSPACE_WRAPPER", &lint.driver).env(
                "CLIPPY_ARGS",
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
            );
        }
        cmd
    }
}
