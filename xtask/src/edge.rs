//! `cargo xtask edge`: the composed service in workerd, Cloudflare's
//! Workers runtime, behind a `fetch` handler.
//!
//! Builds `target/wasm/vector-service.wasm`, writes the worker bundle and a
//! workerd config into `target/edge/` with `js/edge/build.mjs` (jco
//! transpile in instantiation mode, esbuild for the browser platform), and
//! runs the pinned `workerd` binary from `js/node_modules`. workerd reports
//! readiness on its control fd (`--control-fd 3`: one JSON line,
//! `{"event":"listen","socket":"http","port":N}`); once it has, this prints
//! `Serving HTTP on http://ADDR/` on stderr like `wasmtime serve` and
//! host-runner, and then waits for workerd to exit (Ctrl-C stops both).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

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

/// The request-body limit the worker enforces: the guest's own, which
/// `VECPROC_MAX_BODY_BYTES` sets at build time (64 MiB by default).
fn max_body_bytes() -> Result<u64> {
    match std::env::var("VECPROC_MAX_BODY_BYTES") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("VECPROC_MAX_BODY_BYTES={v:?} is not a byte count")),
        Err(_) => Ok(64 * 1024 * 1024),
    }
}

/// Builds and serves until workerd exits.
pub fn edge(root: &Path, args: Args) -> Result<()> {
    let (host, _) = args
        .addr
        .rsplit_once(':')
        .with_context(|| format!("--addr {:?} is not HOST:PORT", args.addr))?;
    let limit = max_body_bytes()?;
    let artifacts = build::build(root)?;
    let js_dir = js::prepare_node(root)?;
    let out = crate::paths::target().join("edge");

    step("edge: building the worker into target/edge/ (jco transpile --instantiation async, esbuild)");
    run(Command::new("node")
        .current_dir(&js_dir)
        .arg("edge/build.mjs")
        .arg("--wasm")
        .arg(&artifacts.service)
        .arg("--out")
        .arg(&out)
        .args(["--addr", &args.addr])
        .args(["--max-request-body-bytes", &limit.to_string()])
        .args(["--instance-reuse", &args.instance_reuse.to_string()]))?;

    let workerd = js_dir.join("node_modules/.bin/workerd");
    if !workerd.exists() {
        bail!(
            "{} is missing: the npm install did not bring workerd",
            workerd.display()
        );
    }
    step(&format!(
        "edge: workerd serve target/edge/config.capnp on {} (Ctrl-C stops)",
        args.addr
    ));
    // The shell puts workerd's control fd 3 on the pipe this process reads
    // and its own stdout on stderr, so no file descriptor juggling is
    // needed here.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 3>&1 1>&2"#)
        .arg(&workerd)
        .arg("serve")
        .arg(out.join("config.capnp"))
        .arg("--socket-addr")
        .arg(format!("http={}", args.addr))
        .args(["--control-fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", workerd.display()))?;
    let control = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(control).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.context("reading workerd's control fd")?;
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
            if event["event"] == "listen" && event["socket"] == "http" {
                port = event["port"].as_u64();
                break;
            }
        }
    }
    let Some(port) = port else {
        let status = child.wait()?;
        bail!("workerd exited ({status}) before it listened");
    };
    eprintln!("Serving HTTP on http://{host}:{port}/");
    // Keep draining the control pipe so workerd never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    let status = child.wait().context("waiting for workerd")?;
    if !status.success() {
        bail!("workerd exited ({status})");
    }
    Ok(())
}
