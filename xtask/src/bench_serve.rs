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

fn wrk(url: &str, script: Option<&Path>, seconds: u32) -> Result<Load> {
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
    };
    for line in out.lines() {
        let t = line.trim();
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
    Ok(load)
}

/// Runs the serving benchmark.
pub fn bench(root: &Path, wasmtime: &Path, host_runner: &Path, seconds: u32) -> Result<()> {
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
    let configs: [(&str, Vec<&str>, Vec<&str>); 2] = [
        ("defaults (fresh instance per request)", vec![], vec![]),
        (
            "--max-instance-reuse-count=100",
            vec!["--max-instance-reuse-count=100"],
            vec!["--max-instance-reuse-count=100"],
        ),
    ];
    let mut md = String::from("# Serving benchmark: wasmtime serve vs host-runner\n\n");
    writeln!(
        md,
        "`wrk -t2 -c32 -d{seconds}s --latency` on loopback, wrk sharing the 2 cores with the server; \
         one server at a time, same composed component (`target/wasm/vector-service.wasm`).\n"
    )?;
    let mut records = Vec::new();
    for (config, wasmtime_args, host_args) in &configs {
        writeln!(md, "## {config}\n")?;
        writeln!(md, "| route | wasmtime serve req/s | p50 ms | p99 ms | host-runner req/s | p50 ms | p99 ms | ratio |")?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let mut results: Vec<Vec<Option<Load>>> = Vec::new();
        for (bin, args) in [(wasmtime, wasmtime_args), (host_runner, host_args)] {
            step(&format!("wrk against {} {}", bin.display(), args.join(" ")));
            let mut per_route = Vec::new();
            match start(bin, args, &service) {
                Ok((server, _)) => {
                    for (_, path, script) in &routes {
                        let url = format!("http://{}{path}", server.addr);
                        let load = wrk(&url, script.map(|p| p.as_path()), seconds)?;
                        eprintln!(
                            "    {path}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                            load.rps, load.p50_ms, load.p99_ms
                        );
                        per_route.push(Some(load));
                    }
                }
                Err(e) => {
                    eprintln!("    skipped: {e:#}");
                    per_route.extend(routes.iter().map(|_| None));
                }
            }
            results.push(per_route);
        }
        for (i, (label, _, _)) in routes.iter().enumerate() {
            let cell = |l: &Option<Load>| match l {
                Some(l) => format!("{:.0} | {:.2} | {:.2}", l.rps, l.p50_ms, l.p99_ms),
                None => "– | – | –".into(),
            };
            let ratio = match (&results[0][i], &results[1][i]) {
                (Some(a), Some(b)) => format!("{:.2}×", b.rps / a.rps),
                _ => "–".into(),
            };
            writeln!(
                md,
                "| {label} | {} | {} | {ratio} |",
                cell(&results[0][i]),
                cell(&results[1][i])
            )?;
            for (server, l) in [
                ("wasmtime serve", &results[0][i]),
                ("host-runner", &results[1][i]),
            ] {
                if let Some(l) = l {
                    records.push(json!({"config": config, "route": label, "server": server,
                        "rps": l.rps, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "non_2xx": l.non_2xx}));
                }
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
