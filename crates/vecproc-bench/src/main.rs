//! `vecproc-bench`: every measurement of `cargo xtask bench`, which builds
//! what is measured and then runs these subcommands:
//!
//! - `kernels`: the kernels natively and in the `vector-kernels` component
//!   under Wasmtime (records for the report);
//! - `serve`: wrk against the native server, `wasmtime serve` and
//!   host-runner, with CPU per request and cold starts (`serve.md`);
//! - `protocols`: h2load against the native server and host-runner over
//!   HTTP/1.1, h2c and TLS 1.3 (h1 and h2), with the CPU each protocol adds
//!   (`protocols.md`);
//! - `stateful`: the stateful API's appends as the vector grows, its
//!   statistics beside the stateless route's, on the embedded store and
//!   Redis, with `redis-benchmark`'s figures (`stateful.md`);
//! - `fleet`: three nodes of the stateful service (containerd shim
//!   containers) behind HAProxy on one Redis, under load through a rolling
//!   restart and a `kill -9` (`fleet.md`);
//! - `startup`: fresh instances, processes, registry starts, workerd and
//!   sizes (`startup.md`);
//! - `report`: the kernel table from the records (`report.md`, `chart.svg`),
//!   with the JavaScript boundary table from `js/bench/boundary.mjs`'s.
//!
//! Servers are started with `vecproc-harness`, as the tests start them.
//! Timings are printed and written, never asserted.

mod boundary;
mod fleet;
mod kernels;
mod protocols;
mod report;
mod serve;
mod startup;
mod stateful;
mod wasm;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "The benchmarks of `cargo xtask bench`", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Time the kernels natively and inside the component.
    Kernels(kernels::Args),
    /// Serve under load: native, wasmtime serve, host-runner.
    Serve(serve::Args),
    /// What TLS and HTTP/2 cost: native beside host-runner.
    Protocols(protocols::Args),
    /// Startup and size.
    Startup(startup::Args),
    /// The stateful API on the embedded store and Redis.
    Stateful(stateful::Args),
    /// Three nodes behind HAProxy through a rolling restart and a kill -9.
    Fleet(fleet::Args),
    /// Write the kernel report from the records.
    Report(report::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Kernels(args) => kernels::run(args),
        Task::Serve(args) => serve::run(args),
        Task::Protocols(args) => protocols::run(args),
        Task::Startup(args) => startup::run(args),
        Task::Stateful(args) => stateful::run(args),
        Task::Fleet(args) => fleet::run(args),
        Task::Report(args) => report::run(args),
    }
}
