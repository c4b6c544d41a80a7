//! `vecproc-bench protocols`: what TLS and HTTP/2 cost, host-runner beside
//! the native server doing the same work over the same protocol in the
//! same run. Routes `GET /health` and `POST /stats` (1,000 values) over
//! HTTP/1.1, h2c, TLS 1.3 + HTTP/1.1 and TLS 1.3 + h2, loaded by `h2load`
//! (nghttp2), which reports the TLS version and application protocol it
//! actually negotiated (recorded with each cell, so a row cannot claim a
//! protocol it did not run). Writes `protocols.md` and `protocols.json`.
//!
//! The question the table answers: does TLS or HTTP/2 cost host-runner more
//! server CPU per request than it costs the native server? Each server's
//! added cost is its CPU per request on a protocol minus its own on
//! plaintext HTTP/1.1.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::serve::{median, start, stat_ticks, ticks_per_second};
use vecproc_harness::cmd::step;

/// Options of `vecproc-bench protocols`.
#[derive(clap::Args)]
pub struct Args {
    /// host-runner.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("host-runner"))]
    host_runner: PathBuf,
    /// `vecproc-native-server`.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("vecproc-native-server"))]
    native: PathBuf,
    #[command(flatten)]
    load: crate::serve::LoadArgs,
}

/// A protocol row: how the server is started and how h2load speaks.
struct Protocol {
    label: &'static str,
    tls: bool,
    /// h2load `--h1` (HTTP/1.1; otherwise h2, by ALPN or prior knowledge).
    h1: bool,
}

const PROTOCOLS: [Protocol; 4] = [
    Protocol {
        label: "HTTP/1.1",
        tls: false,
        h1: true,
    },
    Protocol {
        label: "h2c (prior knowledge)",
        tls: false,
        h1: false,
    },
    Protocol {
        label: "TLS 1.3 + HTTP/1.1",
        tls: true,
        h1: true,
    },
    Protocol {
        label: "TLS 1.3 + h2",
        tls: true,
        h1: false,
    },
];

/// Requests in flight: 32 connections of one request for HTTP/1.1, 8
/// connections of 4 streams for HTTP/2.
fn concurrency(h1: bool) -> (u32, u32) {
    if h1 {
        (32, 1)
    } else {
        (8, 4)
    }
}

/// One h2load run.
#[derive(Debug, Clone)]
struct Load {
    rps: f64,
    succeeded: u64,
    failed: u64,
    /// Server CPU (user + kernel) per request, microseconds.
    cpu_us: f64,
    /// What h2load negotiated: `TLSv1.3 h2`, `h2c`, ...
    negotiated: String,
}

fn h2load(
    url: &str,
    protocol: &Protocol,
    body: Option<&Path>,
    seconds: u32,
    pid: u32,
) -> Result<Load> {
    let (connections, streams) = concurrency(protocol.h1);
    let mut cmd = Command::new("h2load");
    cmd.args(["-t", "1", "-c", &connections.to_string()])
        .args(["-m", &streams.to_string()])
        .args(["-D", &seconds.to_string()]);
    if protocol.h1 {
        cmd.arg("--h1");
    }
    if let Some(body) = body {
        cmd.arg("-d").arg(body);
        cmd.args(["-H", "content-type: application/json"]);
    }
    cmd.arg(url);
    let before = stat_ticks(&pid.to_string(), 14);
    let out = cmd
        .output()
        .context("h2load failed to start (apt-get install nghttp2-client)")?;
    let after = stat_ticks(&pid.to_string(), 14);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "h2load {url}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut load = Load {
        rps: f64::NAN,
        succeeded: 0,
        failed: 0,
        cpu_us: f64::NAN,
        negotiated: String::new(),
    };
    let mut tls_version = None;
    let mut application = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // finished in 5.00s, 12345.67 req/s, 1.23MB/s
            load.rps = rest
                .split(", ")
                .nth(1)
                .and_then(|r| r.strip_suffix(" req/s"))
                .and_then(|r| r.parse().ok())
                .unwrap_or(f64::NAN);
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // N total, N started, N done, N succeeded, N failed, N errored, N timeout
            for part in rest.split(", ") {
                let mut words = part.split_whitespace();
                let n: u64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                match words.next() {
                    Some("succeeded") => load.succeeded = n,
                    Some("failed") | Some("errored") | Some("timeout") => load.failed += n,
                    _ => {}
                }
            }
        } else if let Some(v) = line.strip_prefix("TLS Protocol: ") {
            tls_version = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("Application protocol: ") {
            application = Some(v.to_string());
        }
    }
    load.negotiated = match (tls_version, application) {
        (Some(t), Some(a)) => format!("{t} {a}"),
        (None, Some(a)) => a,
        (t, None) => t.unwrap_or_else(|| "?".into()),
    };
    if let (Some(a), Some(b)) = (before, after) {
        if load.succeeded > 0 {
            load.cpu_us =
                (b.0 + b.1 - a.0 - a.1) as f64 / ticks_per_second() * 1e6 / load.succeeded as f64;
        }
    }
    Ok(load)
}

/// Runs the protocol benchmark.
pub fn run(args: Args) -> Result<()> {
    let crate::serve::LoadArgs {
        seconds,
        rounds,
        out,
    } = args.load;
    let dir = out.join("protocols");
    fs::create_dir_all(&dir)?;
    // h2load does not verify it.
    let (cert, key) = vecproc_harness::certs::self_signed(
        &dir,
        "bench",
        vecproc_harness::certs::Key::Ec,
        "127.0.0.1",
    )?;
    let values: Vec<String> = (0..1_000)
        .map(|i| format!("{}", (i * 7919 % 10_007) as f64 / 7.0))
        .collect();
    let body = dir.join("stats-1000.json");
    fs::write(&body, format!("[{}]", values.join(",")))?;
    let service = vecproc_harness::target_dir().join("wasm/vector-service.wasm");
    let routes: [(&str, &str, Option<&Path>); 2] = [
        ("GET /health", "/health", None),
        ("POST /stats (1,000 values)", "/stats", Some(&body)),
    ];
    let servers: [(&str, &Path); 2] = [
        ("native (hyper + vecproc-core)", &args.native),
        ("host-runner", &args.host_runner),
    ];
    let rounds = rounds.max(1);
    // results[server][protocol][route] = one Load per round
    let mut results = vec![vec![vec![Vec::<Load>::new(); routes.len()]; PROTOCOLS.len()]; 2];
    for round in 0..rounds {
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            for (s, (name, bin)) in servers.iter().enumerate() {
                step(&format!(
                    "round {}: {name} over {}",
                    round + 1,
                    protocol.label
                ));
                let mut flags: Vec<String> = Vec::new();
                if protocol.tls {
                    flags.extend([
                        "--tls-cert".into(),
                        cert.display().to_string(),
                        "--tls-key".into(),
                        key.display().to_string(),
                    ]);
                }
                let host_runner = *bin == args.host_runner.as_path();
                if !protocol.tls && !protocol.h1 {
                    flags.push("--h2c".into());
                }
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                let component = host_runner.then_some(service.as_path());
                let (server, _) = start(bin, &flags, component)?;
                for (r, (_, path, body)) in routes.iter().enumerate() {
                    let load = h2load(&server.url(path), protocol, *body, seconds, server.pid())?;
                    eprintln!(
                        "    {path}: {:.0} req/s, {:.1} µs server CPU/req, {} ok, {} failed, negotiated {}",
                        load.rps, load.cpu_us, load.succeeded, load.failed, load.negotiated
                    );
                    results[s][p][r].push(load);
                }
            }
        }
    }

    let mut md =
        String::from("# Protocols: what TLS and HTTP/2 cost, host-runner beside native\n\n");
    let (commit, date) = crate::report::provenance();
    writeln!(
        md,
        "Commit {commit}, {date}. Command: `cargo xtask bench` (or `--only protocols`).\n"
    )?;
    writeln!(
        md,
        "`h2load -t1 -D{}` on loopback sharing the 2 cores with the server: HTTP/1.1 with 32 \
         connections of one request, HTTP/2 with 8 connections of 4 streams (32 requests in \
         flight either way). TLS is rustls with ring on both servers, ECDSA P-256; the \
         negotiated column is what h2load reported. {rounds} rounds, servers alternating; cells \
         are medians. Server CPU is the server's user + kernel time (`/proc/PID/stat`) divided \
         by the requests that succeeded. \"+CPU\" is what the protocol adds to that server's own \
         CPU per request over plaintext HTTP/1.1: the cost of the protocol. The native server \
         is `vecproc-native-server`, which sets up hyper-util's automatic builder per \
         connection as host-runner does (ALPN over TLS; HTTP/1.1 only on plaintext, HTTP/2 by \
         prior knowledge with `--h2c`, given to both for the h2c row); host-runner serves \
         `vector-service.wasm` with its defaults (a fresh instance per request).\n",
        seconds
    )?;
    writeln!(
        md,
        "| route | protocol | negotiated | native req/s | native CPU µs/req | native +CPU | host-runner req/s | host-runner CPU µs/req | host-runner +CPU | host-runner / native req/s |"
    )?;
    writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut records = Vec::new();
    for (r, (route, _, _)) in routes.iter().enumerate() {
        let cell = |s: usize, p: usize, f: fn(&Load) -> f64| {
            median(results[s][p][r].iter().map(f).collect())
        };
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            let rps = [cell(0, p, |l| l.rps), cell(1, p, |l| l.rps)];
            let cpu = [cell(0, p, |l| l.cpu_us), cell(1, p, |l| l.cpu_us)];
            let added = [
                cpu[0] - cell(0, 0, |l| l.cpu_us),
                cpu[1] - cell(1, 0, |l| l.cpu_us),
            ];
            let failed: u64 = (0..2)
                .flat_map(|s| results[s][p][r].iter().map(|l| l.failed))
                .sum();
            let negotiated = results[1][p][r]
                .first()
                .map_or("?".to_string(), |l| l.negotiated.clone());
            let plus = |v: f64| {
                if p == 0 {
                    "–".to_string()
                } else {
                    format!("{v:+.1}")
                }
            };
            writeln!(
                md,
                "| {route} | {}{} | {negotiated} | {:.0} | {:.1} | {} | {:.0} | {:.1} | {} | {:.2} |",
                protocol.label,
                if failed > 0 { format!(" ({failed} failed)") } else { String::new() },
                rps[0],
                cpu[0],
                plus(added[0]),
                rps[1],
                cpu[1],
                plus(added[1]),
                rps[1] / rps[0],
            )?;
            for (s, (name, _)) in servers.iter().enumerate() {
                records.push(json!({
                    "route": route, "protocol": protocol.label, "server": name,
                    "rps": rps[s], "cpu_us_per_request": cpu[s],
                    "added_cpu_us_vs_h1": added[s],
                    "rounds": results[s][p][r].iter().map(|l| json!({
                        "rps": l.rps, "succeeded": l.succeeded, "failed": l.failed,
                        "cpu_us_per_request": l.cpu_us, "negotiated": l.negotiated,
                    })).collect::<Vec<_>>(),
                }));
            }
        }
    }
    fs::write(out.join("protocols.md"), &md)?;
    fs::write(
        out.join("protocols.json"),
        serde_json::to_vec_pretty(&records)?,
    )?;
    println!("{md}");
    Ok(())
}
