//! `cargo xtask contract` (also a step of `cargo xtask test`): the HTTP
//! contract checked by a third-party client. schemathesis, pinned (with its
//! dependencies in `tests/contract/constraints.txt`) and installed into a
//! venv under the target directory, with the hooks of
//! `tests/contract/vecproc_hooks.py`, generates requests from
//! `components/http-api/openapi.yaml` and runs all its checks against the
//! composed service under the real `wasmtime serve` on a free loopback port,
//! then the `/vectors` operations against the stateful service under
//! host-runner with `-S keyvalue` (settings in `tests/contract/vectors.toml`).
//! Bounded in examples and in time; any failure or error fails the step.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::run::{run, step};

/// The pinned schemathesis release.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

const DEFAULT_MAX_EXAMPLES: u32 = 300;
const DEFAULT_SEED: u64 = 20261201;
const DEFAULT_TIMEOUT_SECONDS: u64 = 120;

/// Options of `cargo xtask contract`.
#[derive(clap::Args)]
pub struct Args {
    /// Test cases per operation and phase (schemathesis `--max-examples`).
    #[arg(long, default_value_t = DEFAULT_MAX_EXAMPLES)]
    pub max_examples: u32,
    /// Random seed; fixed by default so runs are reproducible.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Hard limit on the whole schemathesis run, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECONDS)]
    pub timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            max_examples: DEFAULT_MAX_EXAMPLES,
            seed: DEFAULT_SEED,
            timeout: DEFAULT_TIMEOUT_SECONDS,
        }
    }
}

/// `cargo xtask contract`: build, then check.
pub fn contract(root: &Path, args: Args) -> Result<()> {
    crate::build::build(root)?;
    let wasmtime = crate::tools::ensure(&crate::tools::WASMTIME)?;
    step("building host-runner (cargo build -p host-runner)");
    run(crate::run::cargo()
        .current_dir(root)
        .args(["build", "-p", "host-runner"]))?;
    let host_runner = crate::paths::target().join("debug/host-runner");
    check(root, &wasmtime, &host_runner, &args)
}

/// Installs schemathesis if needed and runs it twice: the stateless routes
/// against `wasmtime serve` serving `vector-service.wasm`, then `/vectors`
/// against host-runner (`host_runner`, `-S keyvalue`, a fresh embedded store)
/// serving `vector-store-service.wasm`.
pub fn check(root: &Path, wasmtime: &Path, host_runner: &Path, args: &Args) -> Result<()> {
    let schemathesis = ensure_schemathesis(root)?;
    let dir = crate::paths::target().join("contract");
    fs::create_dir_all(&dir)?;
    let wasm = crate::paths::target().join("wasm");
    run_against(
        root,
        &schemathesis,
        &dir,
        args,
        Target {
            label: "wasmtime serve",
            cmd: vecproc_harness::serve_command(wasmtime, &wasm.join("vector-service.wasm"), &[]),
            filter: "--exclude-path-regex=^/vectors",
            config: None,
        },
    )?;
    let state = dir.join("state");
    let _ = fs::remove_dir_all(&state);
    let state_arg = state.display().to_string();
    run_against(
        root,
        &schemathesis,
        &dir,
        args,
        Target {
            label: "host-runner -S keyvalue",
            cmd: vecproc_harness::serve_command(
                host_runner,
                &wasm.join("vector-store-service.wasm"),
                &["-Skeyvalue", "--state-dir", &state_arg],
            ),
            filter: "--include-path-regex=^/vectors",
            config: Some(root.join("tests/contract/vectors.toml")),
        },
    )
}

/// One schemathesis run: which server, which operations, which settings.
struct Target {
    label: &'static str,
    cmd: Command,
    filter: &'static str,
    config: Option<PathBuf>,
}

fn run_against(
    root: &Path,
    schemathesis: &Path,
    dir: &Path,
    args: &Args,
    target: Target,
) -> Result<()> {
    let Target {
        label,
        mut cmd,
        filter,
        config,
    } = target;
    let schema = root.join("components/http-api/openapi.yaml");
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let server = vecproc_harness::Launch::new(cmd).discard_output().start()?;
    step(&format!(
        "checking the OpenAPI contract with schemathesis {SCHEMATHESIS_VERSION} against {label} on {} ({filter}; all checks, {} examples, seed {}, at most {} s)",
        server.authority(), args.max_examples, args.seed, args.timeout
    ));
    let start = Instant::now();
    let mut command = Command::new(schemathesis);
    command
        .current_dir(dir)
        .env("PYTHONPATH", root.join("tests/contract"))
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SCHEMATHESIS_HOOKS", "vecproc_hooks");
    if let Some(config) = &config {
        command.arg("--config-file").arg(config);
    }
    let mut child = command
        .arg("run")
        .arg(&schema)
        .arg(format!("--url={}", server.base))
        .arg(filter)
        .args(["--checks", "all", "--mode", "all", "--no-color"])
        .arg(format!("--max-examples={}", args.max_examples))
        .arg(format!("--seed={}", args.seed))
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "10"])
        .args(["--report", "junit", "--report-dir"])
        .arg(dir.join("report"))
        .spawn()
        .with_context(|| format!("starting {}", schemathesis.display()))?;
    let status = wait_with_deadline(&mut child, Duration::from_secs(args.timeout))?;
    let Some(status) = status else {
        bail!(
            "schemathesis did not finish within {} s (killed)",
            args.timeout
        );
    };
    if !status.success() {
        bail!(
            "schemathesis found contract failures or errors against {label} ({status}); see above"
        );
    }
    eprintln!(
        "    contract holds against {label}: done in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The venv's `schemathesis`, installed at the pinned version if missing.
fn ensure_schemathesis(root: &Path) -> Result<PathBuf> {
    crate::python::venv_tool(
        "schemathesis",
        "schemathesis",
        SCHEMATHESIS_VERSION,
        Some(&root.join("tests/contract/constraints.txt")),
    )
}

/// Waits for `child` at most `limit`; kills it and returns `None` past that.
fn wait_with_deadline(
    child: &mut Child,
    limit: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
