//! `cargo xtask`: the project's build steps as a Rust program instead of
//! shell scripts. One module per task; each builds, installs what it needs
//! (`tools`, `apt`, `python`) and invokes: the measurements, the checks and
//! publishing live in the crates and suites it runs.

mod apt;
mod bench;
mod build;
mod contract;
mod edge;
mod fleet;
mod fuzz;
mod js;
mod paths;
mod publish;
mod python;
mod run;
mod serve;
mod soak;
mod test;
mod tools;
mod web;
mod wit;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks for the vector processor")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the guests, their compositions, the fixtures and the WASI command into target/wasm/.
    Build,
    /// Build, compose and serve the service on http://127.0.0.1:8080.
    Serve(serve::Args),
    /// Install what the tests need and run every suite.
    Test(test::Args),
    /// Run the benchmarks and write target/bench/ (report.md, report.json, chart.svg).
    Bench(bench::Args),
    /// Serve the browser demo (the component via jco) on 127.0.0.1.
    Demo {
        /// Port to listen on.
        #[arg(long, default_value_t = 8081)]
        port: u16,
    },
    /// Fetch the pinned WASI WIT into wit/deps/ (done by build as needed).
    FetchWit,
    /// Build the worker bundle and serve the service with workerd on 127.0.0.1:8787.
    Edge(edge::Args),
    /// Publish the four components to an OCI registry with wkg (vecproc-publish; --sign signs them).
    Publish(publish::Args),
    /// Soak host-runner with mixed valid, invalid and faulting requests; report.
    Soak(soak::Args),
    /// Three containerd-shim nodes behind HAProxy through a rolling restart and a kill -9; report.
    Fleet(fleet::Args),
    /// The OpenAPI contract suite alone: schemathesis against `wasmtime serve` and host-runner.
    Contract(contract::Args),
    /// Run the libFuzzer targets in fuzz/ for a bounded time each (nightly).
    Fuzz(fuzz::Args),
}

fn main() -> Result<()> {
    forget_cargo_run_package_env();
    let cli = Cli::parse();
    let root = vecproc_harness::paths::repo_root();
    paths::init(&root)?;
    match cli.task {
        Task::Build => build::build(&root),
        Task::Serve(args) => serve::serve(&root, args),
        Task::Test(args) => test::test(&root, args),
        Task::Bench(args) => bench::bench(&root, args),
        Task::Demo { port } => build::build(&root).and_then(|()| js::demo(&root, port)),
        Task::FetchWit => wit::fetch(&root),
        Task::Edge(args) => edge::edge(&root, args),
        Task::Publish(args) => publish::publish(&root, args),
        Task::Soak(args) => soak::soak(&root, args),
        Task::Fleet(args) => fleet::fleet(&root, args),
        Task::Contract(args) => contract::contract(&root, args),
        Task::Fuzz(args) => fuzz::fuzz(&root, args),
    }
}

/// Removes what `cargo run` told this process about its own package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...). Passed on to the cargo
/// commands run from here, those variables reach build scripts that track
/// them (ring's tracks `CARGO_MANIFEST_DIR`), so a plain `cargo build
/// --release -p host-runner` after `cargo xtask publish` rebuilt ring and
/// everything above it, and the next xtask rebuilt them again.
fn forget_cargo_run_package_env() {
    const EXACT: [&str; 5] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if EXACT.contains(&name) || name.starts_with("CARGO_PKG_") {
            std::env::remove_var(&key);
        }
    }
}
