//! `cargo xtask contract`: the contract suite alone
//! (`tests/tests/e2e/contract.rs`, schemathesis against `wasmtime serve`
//! and host-runner; a step of `cargo xtask test` too), with its bounds
//! passed as the suite's `VECPROC_CONTRACT_*` variables.

use std::path::Path;

use anyhow::Result;

use crate::run::{cargo_in, run, step};
use crate::{build, python, tools};

/// Options of `cargo xtask contract`.
#[derive(clap::Args)]
pub struct Args {
    /// Test cases per operation and phase (schemathesis `--max-examples`).
    #[arg(long, default_value_t = 300)]
    max_examples: u32,
    /// Random seed; fixed by default so runs are reproducible.
    #[arg(long, default_value_t = 20261201)]
    seed: u64,
    /// Hard limit on each schemathesis run, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Builds the services and host-runner, installs schemathesis, runs the suite.
pub fn contract(root: &Path, args: Args) -> Result<()> {
    build::build_service(root)?;
    let wasmtime = tools::ensure(&tools::WASMTIME)?;
    let schemathesis = python::schemathesis(root)?;
    step("building host-runner (cargo build -p host-runner)");
    run(&mut cargo_in(root, "build -p host-runner"))?;
    step("the contract suite (cargo test -p vecproc-tests --test e2e contract::)");
    let mut suite = cargo_in(
        root,
        "test -p vecproc-tests --test e2e contract:: -- --nocapture",
    );
    run(suite
        .env("VECPROC_WASMTIME", wasmtime)
        .env("VECPROC_SCHEMATHESIS", schemathesis)
        .env("VECPROC_CONTRACT_EXAMPLES", args.max_examples.to_string())
        .env("VECPROC_CONTRACT_SEED", args.seed.to_string())
        .env("VECPROC_CONTRACT_TIMEOUT", args.timeout.to_string()))
}
