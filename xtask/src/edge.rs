//! `cargo xtask edge`: the composed service in workerd, Cloudflare's
//! Workers runtime, behind a `fetch` handler. Builds
//! `target/wasm/vector-service.wasm`, installs the npm packages (the pinned
//! workerd among them), and runs `js/edge/serve.mjs`, which writes the
//! worker bundle and config into `target/edge/`, starts workerd, and prints
//! `Serving HTTP on http://ADDR/` once it listens (Ctrl-C stops it).

use std::path::Path;

use anyhow::Result;

use crate::run::{run, step};
use crate::{build, js};

/// Options of `cargo xtask edge`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: String,
    /// Requests one instance serves before a new one is made; 1 (the
    /// default) is a fresh instance per request, as `wasmtime serve` does.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    instance_reuse: u32,
}

/// Builds and serves until workerd exits.
pub fn edge(root: &Path, args: Args) -> Result<()> {
    let service = build::build_service(root)?;
    js::prepare_node(root)?;
    step(&format!(
        "edge: node edge/serve.mjs (jco transpile --instantiation async, esbuild, workerd) on {}",
        args.addr
    ));
    run(js::node(root)
        .arg("edge/serve.mjs")
        .arg("--wasm")
        .arg(service)
        .arg("--out")
        .arg(crate::paths::target().join("edge"))
        .args(["--addr", &args.addr])
        .args(["--instance-reuse", &args.instance_reuse.to_string()]))
}
