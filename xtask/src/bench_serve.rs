//! The serving half of `cargo xtask bench`: wrk against `wasmtime serve`
//! and host-runner on the same composed component and routes, in one run,
//! plus cold start (process start to first 200) with and without the
//! compiled-code cache. Writes `target/bench/serve.md` and `serve.json`.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::run::{output, step};

/// A server process on a free loopback port, killed on drop.
struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, extra: &[&str], component: &Path) -> Result<(Running, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(extra)
        .arg(component)
        // A captured backtrace per `wasmtime::Error` (Wasmtime makes one each
        // time a store with fibers is dropped) would be timed otherwise; a
        // production server does not run with these set.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("Serving HTTP on http://") {
                    break rest.trim_end_matches('/').to_string();
                }
            }
            _ => bail!("{} exited before serving", bin.display()),
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let running = Running { child, addr };
    // Cold start ends at the first 200 on /health.
    loop {
        let ok = output(Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{}/health", running.addr),
        ]));
        if ok.as_deref() == Some("200") {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("no 200 from {} within 60 s", bin.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((running, started.elapsed()))
}

/// What wrk reported.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    requests: u64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: f64,
}

/// User plus system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 where unknown.
fn ticks_per_second() -> f64 {
    output(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

fn ms(text: &str) -> f64 {
    let t = text.trim();
    let (num, factor) = if let Some(v) = t.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1e3)
    } else {
        (t, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn wrk(url: &str, script: Option<&Path>, seconds: u32, pid: u32) -> Result<Load> {
    let before = cpu_ticks(pid);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url);
    let out = output(&mut cmd).context("wrk failed (is it installed? apt-get install wrk)")?;
    let mut load = Load {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        non_2xx: 0,
        requests: 0,
        cpu_us: f64::NAN,
    };
    let after = cpu_ticks(pid);
    for line in out.lines() {
        let t = line.trim();
        if t.contains(" requests in ") {
            load.requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(f64::NAN);
        } else if let Some(v) = t.strip_prefix("50%") {
            load.p50_ms = ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            load.p99_ms = ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx = v.trim().parse().unwrap_or(0);
        }
    }
    if let (Some(a), Some(b)) = (before, after) {
        if load.requests > 0 {
            load.cpu_us = (b - a) as f64 / ticks_per_second() * 1e6 / load.requests as f64;
        }
    }
    Ok(load)
}

/// Runs the serving benchmark.
pub fn bench(
    root: &Path,
    wasmtime: &Path,
    host_runner: &Path,
    seconds: u32,
    rounds: u32,
) -> Result<()> {
    let out = root.join("target/bench");
    fs::create_dir_all(&out)?;
    let service = root.join("target/wasm/vector-service.wasm");
    // POST /stats with 10,000 values, as a wrk script.
    let values: Vec<String> = (0..10_000)
        .map(|i| format!("{}", (i * 7919 % 10_007) as f64 / 7.0))
        .collect();
    let body = format!("[{}]", values.join(","));
    let script = out.join("stats.lua");
    fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\nwrk.body = \"{body}\"\n"
        ),
    )?;
    let routes: [(&str, &str, Option<&PathBuf>); 3] = [
        ("GET /health", "/health", None),
        ("GET /compute?n=1000", "/compute?n=1000", None),
        ("POST /stats (10,000 values)", "/stats", Some(&script)),
    ];
    // host-runner's slot-reset defaults, spelled as `wasmtime serve` flags:
    // the third server shows how much of the difference they account for.
    let tuned = format!(
        "-Opooling-pagemap-scan=y,pooling-memory-keep-resident={},pooling-table-keep-resident={}",
        2 << 20,
        64 << 10
    );
    let servers: [(&str, &Path, Vec<&str>); 3] = [
        ("wasmtime serve", wasmtime, vec![]),
        ("host-runner", host_runner, vec![]),
        (
            "wasmtime serve + host-runner's -O reset",
            wasmtime,
            vec![tuned.as_str()],
        ),
    ];
    let configs: [(&str, Vec<&str>); 2] = [
        ("defaults (fresh instance per request)", vec![]),
        (
            "--max-instance-reuse-count=100",
            vec!["--max-instance-reuse-count=100"],
        ),
    ];
    let mut md = String::from("# Serving benchmark: wasmtime serve vs host-runner\n\n");
    writeln!(
        md,
        "`wrk -t2 -c32 -d{seconds}s --latency` on loopback, wrk sharing the 2 cores with the server; \
         one server at a time, same composed component (`target/wasm/vector-service.wasm`), \
         servers started without `RUST_BACKTRACE`. {rounds} rounds, the servers alternating within \
         each round; each cell is the median over the rounds. \"CPU µs/req\" is the server \
         process's user + system time during the run divided by the requests wrk completed. \
         The third server is `wasmtime serve` given host-runner's slot-reset settings as `-O` \
         flags ({tuned}); the ratio compares host-runner with `wasmtime serve` at its defaults.\n"
    )?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    };
    let mut records = Vec::new();
    for (config, config_args) in &configs {
        // results[server][route] = one Load per round
        let mut results: Vec<Vec<Vec<Load>>> = servers
            .iter()
            .map(|_| routes.iter().map(|_| Vec::new()).collect())
            .collect();
        for round in 0..rounds {
            for (s, (name, bin, server_args)) in servers.iter().enumerate() {
                let args: Vec<&str> = server_args.iter().chain(config_args).copied().collect();
                step(&format!("{config}, round {}: {name}", round + 1));
                match start(bin, &args, &service) {
                    Ok((server, _)) => {
                        let pid = server.child.id();
                        for (r, (_, path, script)) in routes.iter().enumerate() {
                            let url = format!("http://{}{path}", server.addr);
                            let load = wrk(&url, script.map(|p| p.as_path()), seconds, pid)?;
                            eprintln!(
                                "    {path}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.0} CPU µs/req",
                                load.rps, load.p50_ms, load.p99_ms, load.cpu_us
                            );
                            results[s][r].push(load);
                        }
                    }
                    Err(e) => eprintln!("    skipped: {e:#}"),
                }
            }
        }
        writeln!(md, "## {config}\n")?;
        writeln!(
            md,
            "| route | server | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs wasmtime serve |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|")?;
        for (r, (label, _, _)) in routes.iter().enumerate() {
            let base = median(results[0][r].iter().map(|l| l.rps).collect());
            for (s, (name, _, _)) in servers.iter().enumerate() {
                let runs = &results[s][r];
                if runs.is_empty() {
                    writeln!(md, "| {label} | {name} | – | – | – | – | – |")?;
                    continue;
                }
                let rps = median(runs.iter().map(|l| l.rps).collect());
                let p50 = median(runs.iter().map(|l| l.p50_ms).collect());
                let p99 = median(runs.iter().map(|l| l.p99_ms).collect());
                let cpu = median(runs.iter().map(|l| l.cpu_us).collect());
                let non_2xx: u64 = runs.iter().map(|l| l.non_2xx).sum();
                writeln!(
                    md,
                    "| {label} | {name} | {rps:.0} | {p50:.2} | {p99:.2} | {cpu:.0} | {:.2}× |",
                    rps / base
                )?;
                records.push(json!({"config": config, "route": label, "server": name,
                    "rps": rps, "p50_ms": p50, "p99_ms": p99, "cpu_us_per_request": cpu,
                    "non_2xx": non_2xx,
                    "rounds": runs.iter().map(|l| json!({"rps": l.rps, "p50_ms": l.p50_ms,
                        "p99_ms": l.p99_ms, "cpu_us_per_request": l.cpu_us})).collect::<Vec<_>>()}));
            }
        }
        writeln!(md)?;
    }

    step("cold start: process start to first 200 on /health");
    writeln!(
        md,
        "## Cold start (process start to first 200, median of 5)\n"
    )?;
    writeln!(md, "| server | compiled-code cache | ms |")?;
    writeln!(md, "|---|---|---:|")?;
    let cold: [(&str, &Path, Vec<&str>, &str); 4] = [
        ("wasmtime serve", wasmtime, vec![], "on (default)"),
        ("wasmtime serve", wasmtime, vec!["-Ccache=n"], "off"),
        ("host-runner", host_runner, vec![], "on (default)"),
        ("host-runner", host_runner, vec!["--no-cache"], "off"),
    ];
    for (name, bin, args, cache) in cold {
        let mut times = Vec::new();
        for _ in 0..5 {
            let (server, took) = start(bin, &args, &service)?;
            drop(server);
            times.push(took.as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        eprintln!("    {name}, cache {cache}: {median:.1} ms");
        writeln!(md, "| {name} | {cache} | {median:.1} |")?;
        records.push(
            json!({"cold_start": name, "cache": cache, "median_ms": median, "runs_ms": times}),
        );
    }
    fs::write(out.join("serve.md"), &md)?;
    fs::write(
        out.join("serve.json"),
        serde_json::to_vec_pretty(&Value::Array(records))?,
    )?;
    println!("{md}");
    Ok(())
}
