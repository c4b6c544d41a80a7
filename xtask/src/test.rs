//! `cargo xtask test`: install what the suites need, lint and build, then
//! run every suite: Rust (unit, guest, end-to-end, contract, manifests) and
//! JavaScript (Node and Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::run::{cargo, output, run, step};
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

/// The guest workspaces, each with the target clippy checks it for (the
/// one its `.cargo/config.toml` names when `None`).
const GUESTS: [(&str, Option<&str>); 3] = [
    ("components", None),
    ("tests/fixtures", None),
    ("tests/fixtures-std", Some("wasm32-wasip2")),
];

/// Runs every suite.
pub fn test(root: &Path, args: Args) -> Result<()> {
    let start = Instant::now();
    let lint = Lint::new(!args.no_lint)?;
    // host-runner's wasi:keyvalue bindings read the fetched WIT, and the
    // containerd shim's build needs protoc and libseccomp, even to lint.
    crate::wit::fetch(root)?;
    apt::ensure_shim_build()?;
    // What needs no guest build is checked first, so a mistake there fails
    // in minutes, not after the tools and guests are built.
    if lint.on {
        step("checking formatting (cargo fmt --check: every workspace)");
        for dir in [
            ".",
            "fuzz",
            "components",
            "tests/fixtures",
            "tests/fixtures-std",
        ] {
            run(cargo()
                .current_dir(root.join(dir))
                .args(["fmt", "--all", "--check"]))?;
        }
        step("linting the fuzz targets (fuzz/, cargo clippy -D warnings, stable)");
        run(cargo().current_dir(root.join("fuzz")).args([
            "clippy",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The root workspace, linted as it is built (see [`Lint`]): every
    // target at once, as `cargo test --workspace` will want them, in one
    // feature set. Not the xtask, whose binary is running: it is linted on
    // its own.
    step(if lint.on {
        "building and linting the workspace (clippy-driver -D warnings; host-runner and its containerd shim included)"
    } else {
        "building the workspace (host-runner and its containerd shim included)"
    });
    run(lint.apply(cargo().current_dir(root).args([
        "build",
        "--workspace",
        "--exclude",
        "xtask",
        "--all-targets",
    ])))?;
    if lint.on {
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
    if lint.on {
        // In the target directory each build uses, so only the lint runs.
        for (dir, target) in GUESTS {
            step(&format!(
                "linting guest crates ({dir}, cargo clippy -D warnings)"
            ));
            let mut cmd = cargo();
            cmd.current_dir(root.join(dir))
                .args(["clippy", "--release", "--workspace"])
                .arg("--target-dir")
                .arg(paths::guests_of(dir))
                .args(target.map(|t| ["--target", t]).into_iter().flatten());
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

    let wasmtime = tools::ensure(&tools::WASMTIME)?;
    // For js/test/wasi.test.mjs: `wasmer run` only when asked for.
    let wasmer = match std::env::var_os("VECPROC_WASMER") {
        Some(path) => Some(PathBuf::from(path)),
        None if args.wasmer_cli => Some(tools::ensure(&tools::WASMER)?),
        None => None,
    };
    // registry.rs: the real wkg, Debian's OCI registry and htpasswd.
    let wkg = tools::ensure(&tools::WKG)?;
    apt::ensure_registry()?;
    apt::ensure("/usr/bin/htpasswd", &["apache2-utils"], &[])?;
    // front_door.rs: curl with nghttp2. keyvalue.rs: Debian's Redis.
    apt::ensure("/usr/bin/curl", &["curl"], &[])?;
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
    // containerd.rs: Debian's containerd and runc, on a private socket.
    apt::ensure(
        "/usr/bin/containerd",
        &["containerd", "runc"],
        &[apt::CONTAINERD],
    )?;
    // contract.rs and manifests.rs: pinned Python tools in venvs.
    let schemathesis = python::schemathesis(root)?;
    let kubernetes_validate = python::kubernetes_validate()?;
    step("running unit, guest, end-to-end and contract tests (cargo test --workspace)");
    // Under the build's environment, so nothing built above is rebuilt.
    let debug = paths::target().join("debug");
    run(lint
        .apply(cargo().current_dir(root))
        .env("VECPROC_WASMTIME", &wasmtime)
        .env("VECPROC_HOST_RUNNER", debug.join("host-runner"))
        .env("VECPROC_SHIM", debug.join("containerd-shim-host-runner-v1"))
        .env("VECPROC_WKG", &wkg)
        .env("VECPROC_SCHEMATHESIS", schemathesis)
        .env("VECPROC_KUBERNETES_VALIDATE", kubernetes_validate)
        .args(["test", "--workspace"]))?;
    step("replaying the fuzz targets' committed seeds (fuzz/, cargo test, stable)");
    run(cargo().current_dir(root.join("fuzz")).args(["test"]))?;

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

/// Lint during the build: clippy-driver as cargo's workspace wrapper, so
/// the workspace's own crates are compiled by it (rustc with clippy's
/// lints, `-D warnings`) and their dependencies by rustc, as under `cargo
/// clippy`, but with code generation: one pass instead of a check and a
/// build of each crate. Off, it leaves commands as they are.
struct Lint {
    on: bool,
    driver: PathBuf,
}

impl Lint {
    /// Finds the toolchain's clippy-driver (beside its rustc) when `on`.
    fn new(on: bool) -> Result<Self> {
        if !on {
            return Ok(Self {
                on,
                driver: PathBuf::new(),
            });
        }
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let sysroot = output(Command::new(&rustc).args(["--print", "sysroot"]))
            .context("asking rustc for its sysroot")?;
        let driver = Path::new(sysroot.trim()).join("bin/clippy-driver");
        ensure!(
            driver.is_file(),
            "{} is missing: the toolchain has no clippy (rustup component add clippy)",
            driver.display()
        );
        Ok(Self { on, driver })
    }

    /// Sets the wrapper and clippy's arguments on `cmd` when on.
    fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        if self.on {
            // cargo-clippy's encoding of the arguments after `--`.
            cmd.env("RUSTC_WORKSPACE_WRAPPER", &self.driver).env(
                "CLIPPY_ARGS",
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
            );
        }
        cmd
    }
}
