//! `cargo xtask test`: install what the suites need, build the guests, then
//! run formatting and lint checks and every test suite: Rust (unit, guest,
//! end-to-end under `wasmtime serve`) and JavaScript (Node and Chromium).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::run::{run, step};
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

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs every suite.
pub fn test(root: &Path, args: Args) -> Result<()> {
    let start = Instant::now();
    // What needs no guest build is linted first, so a mistake there fails
    // in minutes, not after the tools and guests are built.
    if !args.no_lint {
        step("checking formatting (cargo fmt --check: the root workspace and fuzz/)");
        run(cargo().current_dir(root).args(["fmt", "--all", "--check"]))?;
        run(cargo()
            .current_dir(root.join("fuzz"))
            .args(["fmt", "--all", "--check"]))?;
        step("linting native crates (cargo clippy -D warnings)");
        run(cargo().current_dir(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        step("linting the fuzz targets (fuzz/, cargo clippy -D warnings, stable)");
        run(cargo().current_dir(root.join("fuzz")).args([
            "clippy",
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
    apt::ensure(
        "/usr/bin/docker-registry",
        &["docker-registry", "apache2-utils"],
        &[apt::Service {
            name: "docker-registry",
            packaged_cmdline: "/etc/docker/registry/config.yml",
        }],
    )?;
    apt::ensure("/usr/bin/htpasswd", &["apache2-utils"], &[])?;
    let cargo_component = tools::path_of(&tools::CARGO_COMPONENT);

    if !args.no_lint {
        step("checking formatting of the guest workspaces (cargo fmt --check)");
        for dir in [
            "components",
            "components/http-api-p3",
            "tests/fixtures",
            "tests/fixtures-std",
            "tests/fixtures-p3",
        ] {
            run(cargo()
                .current_dir(root.join(dir))
                .args(["fmt", "--all", "--check"]))?;
        }
        for dir in ["components", "tests/fixtures"] {
            step(&format!(
                "linting guest crates ({dir}, cargo component clippy -D warnings)"
            ));
            // cargo-component does not pass `-D warnings` through to clippy,
            // so any warning in its output fails the step instead.
            let out = Command::new(&cargo_component)
                .current_dir(root.join(dir))
                .args(["component", "clippy", "--release", "--workspace"])
                .arg("--target-dir")
                .arg(paths::guests_of(dir))
                .output()?;
            let text = String::from_utf8_lossy(&out.stderr);
            eprint!("{text}");
            if !out.status.success() || text.lines().any(|l| l.starts_with("warning")) {
                bail!("cargo component clippy reported problems in {dir}");
            }
        }
        step("linting std-Rust fixture guests (cargo clippy --target wasm32-wasip2 -D warnings)");
        run(cargo()
            .current_dir(root.join("tests/fixtures-std"))
            .args(["clippy", "--release", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(paths::guests("fixtures-std"))
            .args(["--", "-D", "warnings"]))?;
        for dir in ["components/http-api-p3", "tests/fixtures-p3"] {
            step(&format!(
                "linting WASI 0.3 guests ({dir}, cargo clippy -D warnings)"
            ));
            run(cargo()
                .current_dir(root.join(dir))
                .args(["clippy", "--release"])
                .arg("--target-dir")
                .arg(paths::guests_of(dir))
                .args(["--", "-D", "warnings"]))?;
        }
    }

    step("building host-runner for the end-to-end suites");
    run(cargo()
        .current_dir(root)
        .args(["build", "-p", "host-runner"]))?;
    step("running unit, guest and end-to-end tests (cargo test --workspace)");
    run(cargo()
        .current_dir(root)
        .env("VECPROC_WASMTIME", &wasmtime)
        .env(
            "VECPROC_HOST_RUNNER",
            crate::paths::target().join("debug/host-runner"),
        )
        .env("VECPROC_WKG", &wkg)
        .env("VECPROC_XTASK", std::env::current_exe()?)
        .args(["test", "--workspace"]))?;
    step("replaying the fuzz targets' committed seeds (fuzz/, cargo test, stable)");
    run(cargo().current_dir(root.join("fuzz")).args(["test"]))?;
    crate::contract::check(root, &wasmtime, &crate::contract::Args::default())?;

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
