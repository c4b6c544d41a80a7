//! `vecproc-soak`: a bounded soak of host-runner on loopback (run by
//! `cargo xtask soak [--duration 5m] [--clients 8]`, which builds what it
//! needs first; the servers are started by `vecproc-harness`).
//!
//! Two host-runner processes: the composed service, and the misbehaving
//! fixture under a 1 s timeout and a 64 MiB memory cap. Several client
//! threads send a deterministic mix of valid requests (`/stats` and `/sort`
//! with JSON and binary bodies, `/compute`, `/health`), invalid ones (bad
//! JSON, non-finite binary, wrong method, unknown path, bad query,
//! unsupported type) and faulting ones (trap, loop, unbounded memory, stack
//! overflow), and check every answer against the native library
//! (`vecproc-core`) or the documented error. `/compute` is checked against
//! `vecproc_kernels::compute_libm`, the pure-Rust libm, which is bit-identical to
//! what the guest computes (Rust's std on wasm32-unknown-unknown uses the same
//! port of musl's libm; the host's glibc `sin`/`cos` differ in the last bits). A monitor samples each
//! server's RSS and open file descriptors once a second. It stops by itself
//! and writes `<target>/soak/report.json`; it fails if any answer was wrong,
//! a server died, or a server's settled RSS or descriptor count ended past
//! a bound above its start (`--max-rss-growth-mib`, `--max-fd-growth`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use vecproc_core::{SortOrder, Vector};
use vecproc_harness::{Launch, Server};

/// Options of `vecproc-soak` (and `cargo xtask soak`).
#[derive(Parser)]
struct Args {
    /// How long to run: `300s`, `5m`, `1h` or seconds.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Fail if a server's settled RSS ends more than this many MiB above
    /// its start (a leak, or memory a burst never gives back).
    #[arg(long, default_value_t = 32)]
    max_rss_growth_mib: u64,
    /// Fail if a server ends with more than this many descriptors open
    /// above its start.
    #[arg(long, default_value_t = 4)]
    max_fd_growth: usize,
    /// The host-runner binary (default: `$VECPROC_HOST_RUNNER`, else the
    /// target directory's debug build).
    #[arg(long)]
    host_runner: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("bad duration {s:?}"))?;
    Ok(Duration::from_secs(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("bad duration {s:?} (use s, m or h)")),
    }))
}

/// `host-runner serve` of `component` with `flags`, its output discarded
/// after the serving line (the soak would otherwise keep every access log).
fn start(bin: &std::path::Path, component: &std::path::Path, flags: &[&str]) -> Result<Server> {
    let mut cmd: Command = vecproc_harness::serve_command(bin, component, flags);
    cmd.env_remove("RUST_BACKTRACE");
    Ok(Launch::new(cmd).discard_output().start()?)
}

/// RSS in KiB and open file descriptors of `pid`.
fn usage(pid: u32) -> (u64, usize) {
    (
        vecproc_harness::status_kib(pid, "VmRSS:"),
        vecproc_harness::open_fds(pid),
    )
}

/// xorshift64*: the same request mix every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn value(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6
    }
}

#[derive(Default)]
struct Tally {
    sent: u64,
    by_status: BTreeMap<u16, u64>,
    by_kind: BTreeMap<&'static str, u64>,
    wrong: u64,
    examples: Vec<String>,
}

struct Answer {
    status: u16,
    allow: Option<String>,
    body: Vec<u8>,
}

fn send(agent: &ureq::Agent, method: &str, url: &str, ctype: &str, body: &[u8]) -> Result<Answer> {
    let req = agent.request(method, url).set("content-type", ctype);
    let result = if method == "GET" {
        req.call()
    } else {
        req.send_bytes(body)
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => bail!("{method} {url}: {e}"),
    };
    let status = response.status();
    let allow = response.header("allow").map(str::to_string);
    let mut body = Vec::new();
    response
        .into_reader()
        .take(64 << 20)
        .read_to_end(&mut body)?;
    Ok(Answer {
        status,
        allow,
        body,
    })
}

fn error_code(a: &Answer) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&a.body).ok()?;
    v["error"]["code"].as_str().map(str::to_string)
}

/// One request of the mix; `Ok(None)` if the answer was right, `Ok(Some(why))` if wrong.
fn one(
    rng: &mut Rng,
    agent: &ureq::Agent,
    service: &str,
    fixture: &str,
) -> Result<(&'static str, u16, Option<String>)> {
    let kind = rng.below(20);
    let json = "application/json";
    Ok(match kind {
        0..=5 => {
            let n = 1 + rng.below(2000) as usize;
            let values: Vec<f64> = (0..n).map(|_| rng.value()).collect();
            let binary = rng.below(2) == 0;
            let body = if binary {
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            } else {
                serde_json::to_vec(&values)?
            };
            let ctype = if binary {
                "application/octet-stream"
            } else {
                json
            };
            let a = send(agent, "POST", &format!("{service}/stats"), ctype, &body)?;
            let mut native = Vector::new();
            native
                .add_values(&values)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let expected = serde_json::to_value(native.statistics())?;
            let got: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            let wrong = (a.status != 200 || got != expected)
                .then(|| format!("/stats n={n} binary={binary}: {} {got}", a.status));
            ("stats", a.status, wrong)
        }
        6..=9 => {
            let n = 1 + rng.below(2000) as usize;
            let values: Vec<f64> = (0..n).map(|_| rng.value()).collect();
            let desc = rng.below(2) == 0;
            let a = send(
                agent,
                "POST",
                &format!("{service}/sort?order={}", if desc { "desc" } else { "asc" }),
                json,
                &serde_json::to_vec(&values)?,
            )?;
            let mut native = Vector::new();
            native
                .add_values(&values)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let order = if desc {
                SortOrder::Descending
            } else {
                SortOrder::Ascending
            };
            let expected = native.sorted(order).to_vec();
            let got: Vec<f64> = serde_json::from_slice(&a.body).unwrap_or_default();
            let wrong =
                (a.status != 200 || got != expected).then(|| format!("/sort n={n}: {}", a.status));
            ("sort", a.status, wrong)
        }
        10 => {
            let n = rng.below(100_000) as u32;
            let a = send(agent, "GET", &format!("{service}/compute?n={n}"), json, &[])?;
            let got: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            let ok = a.status == 200
                && got["n"] == n
                && got["result"].as_f64() == Some(vecproc_kernels::compute_libm(n));
            (
                "compute",
                a.status,
                (!ok).then(|| format!("/compute?n={n}: {} {got}", a.status)),
            )
        }
        11 => {
            let a = send(agent, "GET", &format!("{service}/health"), json, &[])?;
            let ok = a.status == 200 && a.body == br#"{"status":"ok"}"#;
            (
                "health",
                a.status,
                (!ok).then(|| format!("/health: {}", a.status)),
            )
        }
        12..=15 => {
            // Invalid input: each must get its documented status and code.
            let (method, path, ctype, body, status, code): (&str, &str, &str, Vec<u8>, u16, &str) =
                match kind {
                    12 => (
                        "POST",
                        "/stats",
                        json,
                        b"[1, \"two\"]".to_vec(),
                        400,
                        "not_a_number",
                    ),
                    13 => (
                        "POST",
                        "/sort",
                        "application/octet-stream",
                        f64::NAN.to_le_bytes().to_vec(),
                        400,
                        "non_finite",
                    ),
                    14 => (
                        "POST",
                        "/health",
                        json,
                        Vec::new(),
                        405,
                        "method_not_allowed",
                    ),
                    _ => (
                        "POST",
                        "/stats",
                        "text/plain",
                        b"1".to_vec(),
                        415,
                        "unsupported_media_type",
                    ),
                };
            let a = send(agent, method, &format!("{service}{path}"), ctype, &body)?;
            let ok = a.status == status
                && error_code(&a).as_deref() == Some(code)
                && (status != 405 || a.allow.as_deref() == Some("GET"));
            (
                "invalid",
                a.status,
                (!ok).then(|| format!("{method} {path}: {} not {status} {code}", a.status)),
            )
        }
        16 => {
            let (method, path, expected, code) = [
                ("GET", "/nope", 404, "not_found"),
                ("GET", "/compute?n=abc", 400, "bad_query"),
                ("POST", "/sort?order=up", 400, "bad_query"),
                ("POST", "/stats", 400, "bad_json"),
            ][rng.below(4) as usize];
            let body: &[u8] = if path == "/stats" { b"[1, 2" } else { b"[1]" };
            let a = send(agent, method, &format!("{service}{path}"), json, body)?;
            let ok = a.status == expected && error_code(&a).as_deref() == Some(code);
            (
                "invalid",
                a.status,
                (!ok).then(|| format!("{method} {path}: {} not {expected} {code}", a.status)),
            )
        }
        _ => {
            // A faulting guest: always the 500 page, never a crash.
            let path = ["/trap", "/recurse", "/alloc", "/loop"][rng.below(4) as usize];
            let a = send(agent, "GET", &format!("{fixture}{path}"), json, &[])?;
            let ok = a.status == 500
                && String::from_utf8_lossy(&a.body).contains("500 Internal Server Error");
            (
                "fault",
                a.status,
                (!ok).then(|| format!("fixture {path}: {}", a.status)),
            )
        }
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = args
        .host_runner
        .clone()
        .unwrap_or_else(vecproc_harness::host_runner_bin);
    let mut service = start(&bin, &vecproc_harness::artifact("vector-service.wasm"), &[])?;
    let mut fixture = start(
        &bin,
        &vecproc_harness::artifact("fixtures/misbehaving.wasm"),
        &["-Wtimeout=1s", "-Wmax-memory-size=67108864"],
    )?;
    eprintln!(
        "==> soaking {} (service) and {} (faulting fixture) for {:?} with {} clients",
        service.base, fixture.base, args.duration, args.clients
    );
    let pids = [("service", service.pid()), ("fixture", fixture.pid())];
    let start_usage: Vec<_> = pids.iter().map(|(_, p)| usage(*p)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new(Mutex::new(start_usage.clone()));
    let monitor = {
        let (stop, peaks) = (Arc::clone(&stop), Arc::clone(&peaks));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut peaks = peaks.lock().unwrap();
                for (i, (_, pid)) in pids.iter().enumerate() {
                    let (rss, fds) = usage(*pid);
                    peaks[i] = (peaks[i].0.max(rss), peaks[i].1.max(fds));
                }
                drop(peaks);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let deadline = Instant::now() + args.duration;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let (service, fixture, tally) = (
                service.base.clone(),
                fixture.base.clone(),
                Arc::clone(&tally),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
                while Instant::now() < deadline {
                    let result = one(&mut rng, &agent, &service, &fixture);
                    let mut t = tally.lock().unwrap();
                    t.sent += 1;
                    match result {
                        Ok((kind, status, wrong)) => {
                            *t.by_status.entry(status).or_default() += 1;
                            *t.by_kind.entry(kind).or_default() += 1;
                            if let Some(why) = wrong {
                                t.wrong += 1;
                                if t.examples.len() < 10 {
                                    t.examples.push(why);
                                }
                            }
                        }
                        Err(e) => {
                            t.wrong += 1;
                            if t.examples.len() < 10 {
                                t.examples.push(format!("{e:#}"));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    // Let finished guests' slots and connections settle before the last sample.
    std::thread::sleep(Duration::from_secs(2));
    let end_usage: Vec<_> = pids.iter().map(|(_, p)| usage(*p)).collect();
    let crashes = [service.is_running(), fixture.is_running()]
        .iter()
        .filter(|a| !**a)
        .count();
    let t = tally.lock().unwrap();
    let peaks = peaks.lock().unwrap();
    let servers: Vec<_> = pids
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            serde_json::json!({
                "server": name,
                "rss_kib": {"start": start_usage[i].0, "peak": peaks[i].0, "end": end_usage[i].0},
                "fds": {"start": start_usage[i].1, "peak": peaks[i].1, "end": end_usage[i].1},
            })
        })
        .collect();
    let report = serde_json::json!({
        "duration_s": args.duration.as_secs(),
        "clients": args.clients,
        "requests": t.sent,
        "by_status": t.by_status,
        "by_kind": t.by_kind,
        "wrong_answers": t.wrong,
        "wrong_examples": t.examples,
        "crashes": crashes,
        "servers": servers,
    });
    let dir = vecproc_harness::target_dir().join("soak");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("    report: {}", dir.join("report.json").display());
    let grown: Vec<String> = pids
        .iter()
        .enumerate()
        .filter_map(|(i, (name, _))| {
            let rss_mib = end_usage[i].0.saturating_sub(start_usage[i].0) / 1024;
            let fds = end_usage[i].1.saturating_sub(start_usage[i].1);
            (rss_mib > args.max_rss_growth_mib || fds > args.max_fd_growth).then(|| {
                format!(
                    "{name} ended {rss_mib} MiB and {fds} descriptors above its start \
                     (bounds: {} MiB, {})",
                    args.max_rss_growth_mib, args.max_fd_growth
                )
            })
        })
        .collect();
    if t.wrong > 0 || crashes > 0 || !grown.is_empty() {
        bail!(
            "soak failed: {} wrong answers, {crashes} crashed servers{}",
            t.wrong,
            grown.iter().map(|g| format!("; {g}")).collect::<String>()
        );
    }
    Ok(())
}
