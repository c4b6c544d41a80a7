//! `vecproc-bench stateful`: the stateful API (`vector-store-service.wasm`
//! under host-runner `-S keyvalue`) on the embedded store and on Redis.
//!
//! - Appends of 1, 100 and 10,000 values, one client in sequence, measured
//!   at several lengths of the vector (filled in between with 10,000-value
//!   appends) up to a million values: appends per second, values per
//!   second, p50 and p99 latency. The question: does an append's cost stay
//!   flat as the vector grows?
//! - `GET /vectors/{id}/stats` on the million-value vector beside the
//!   stateless `POST /stats` of the same values (binary body), same server.
//! - The limit the Redis path can approach: `redis-benchmark`'s own SET and
//!   GET on the same Redis, with 3-byte values and with 64 KiB values (one
//!   chunk).
//!
//! Writes `stateful.md` and `stateful.json`. Timings are printed and
//! written, never asserted.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use vecproc_harness::cmd::step;
use vecproc_harness::redis::Redis;
use vecproc_harness::{serve_command, temp_dir, Server};

/// Options of `vecproc-bench stateful`.
#[derive(clap::Args)]
pub struct Args {
    /// host-runner.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("host-runner"))]
    host_runner: PathBuf,
    /// The stateful service.
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-store-service.wasm"))]
    component: PathBuf,
    /// Fewer appends and a smaller vector: checks the pipeline.
    #[arg(long)]
    quick: bool,
    /// Where `stateful.md` and `stateful.json` go.
    #[arg(long, default_value_os_t = vecproc_harness::paths::bench_dir())]
    out: PathBuf,
}

/// Latency summary of one cell.
struct Cell {
    backend: &'static str,
    batch: usize,
    at: usize,
    appends: usize,
    p50_ms: f64,
    p99_ms: f64,
    per_second: f64,
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

fn binary(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn append(agent: &ureq::Agent, url: &str, values: &[f64]) -> Result<()> {
    let r = agent
        .post(url)
        .set("content-type", "application/octet-stream")
        .send_bytes(&binary(values))
        .with_context(|| format!("POST {url}"))?;
    if r.status() != 200 {
        bail!("POST {url}: {}", r.status());
    }
    Ok(())
}

/// Deterministic values (xorshift), so runs compare.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2_000_000) as f64 - 1_000_000.0
        })
        .collect()
}

/// The appends of one backend.
fn appends(backend: &'static str, server: &Server, quick: bool) -> Result<(Vec<Cell>, String)> {
    let agent = agent();
    let checkpoints: &[usize] = if quick {
        &[0, 50_000]
    } else {
        &[0, 100_000, 500_000, 990_000]
    };
    let mut cells = Vec::new();
    let mut big = String::new();
    for batch in [1usize, 100, 10_000] {
        let r = agent
            .post(&server.url("/vectors"))
            .call()
            .context("POST /vectors")?;
        let location = r.header("location").context("no Location")?.to_string();
        let url = server.url(&format!("{location}/values"));
        let mut len = 0usize;
        let fill = values(10_000, 7);
        for &at in checkpoints {
            while len < at {
                let n = (at - len).min(10_000);
                append(&agent, &url, &fill[..n])?;
                len += n;
            }
            let count = match (batch, quick) {
                (10_000, true) => 3,
                (10_000, false) => 20,
                (_, true) => 20,
                (_, false) => 200,
            };
            let payload = values(batch, at as u64 + 1);
            let mut took = Vec::with_capacity(count);
            let start = Instant::now();
            for _ in 0..count {
                let t = Instant::now();
                append(&agent, &url, &payload)?;
                took.push(t.elapsed());
            }
            let total = start.elapsed();
            len += count * batch;
            took.sort();
            let cell = Cell {
                backend,
                batch,
                at,
                appends: count,
                p50_ms: percentile(&took, 0.5),
                p99_ms: percentile(&took, 0.99),
                per_second: count as f64 / total.as_secs_f64(),
            };
            eprintln!(
                "    {backend}: batch {batch} at {at}: {:.0} appends/s, p50 {:.2} ms, p99 {:.2} ms",
                cell.per_second, cell.p50_ms, cell.p99_ms
            );
            cells.push(cell);
        }
        if batch == 10_000 {
            big = location;
        }
    }
    Ok((cells, big))
}

/// Median milliseconds of `n` calls of `f`.
fn median_ms(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        took.push(t.elapsed());
    }
    took.sort();
    Ok(percentile(&took, 0.5))
}

/// Stateful `GET stats` against stateless `POST /stats` of the same values.
fn stats(server: &Server, location: &str, quick: bool) -> Result<(usize, f64, f64)> {
    let agent = agent();
    let mut all: Vec<f64> = Vec::new();
    let mut url = server.url(&format!("{location}/values?limit=100000"));
    loop {
        let page: serde_json::Value = agent.get(&url).call()?.into_json()?;
        all.extend(
            page["values"]
                .as_array()
                .context("values")?
                .iter()
                .filter_map(|v| v.as_f64()),
        );
        match page["next"].as_str() {
            Some(n) => url = server.url(n),
            None => break,
        }
    }
    let body = binary(&all);
    let n = if quick { 3 } else { 10 };
    let stateful = median_ms(n, || {
        agent
            .get(&server.url(&format!("{location}/stats")))
            .call()?
            .into_string()?;
        Ok(())
    })?;
    let stateless = median_ms(n, || {
        agent
            .post(&server.url("/stats"))
            .set("content-type", "application/octet-stream")
            .send_bytes(&body)?
            .into_string()?;
        Ok(())
    })?;
    Ok((all.len(), stateful, stateless))
}

/// `redis-benchmark -t set,get` on `port` with `size`-byte values:
/// (test, requests/s, p50 ms, p99 ms).
fn redis_benchmark(
    port: u16,
    size: usize,
    requests: usize,
) -> Result<Vec<(String, f64, f64, f64)>> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-n", &requests.to_string()])
        .args(["-d", &size.to_string(), "-c", "1", "--csv"])
        .output()
        .context("running redis-benchmark (Debian's redis-tools)")?;
    if !out.status.success() {
        bail!("redis-benchmark: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
        if f.len() >= 7 {
            rows.push((
                f[0].to_string(),
                f[1].parse().unwrap_or(0.0),
                f[4].parse().unwrap_or(0.0),
                f[6].parse().unwrap_or(0.0),
            ));
        }
    }
    Ok(rows)
}

/// Runs everything and writes the report.
pub fn run(args: Args) -> Result<()> {
    fs::create_dir_all(&args.out)?;
    let redis_dir = temp_dir("bench-redis");
    let redis = Redis::start(&redis_dir)?;
    let state = temp_dir("bench-state");
    let mut cells = Vec::new();
    let mut stats_rows = Vec::new();
    for backend in ["embedded", "redis"] {
        let mut extra: Vec<String> = vec!["-Skeyvalue".into()];
        if backend == "embedded" {
            extra.push("--state-dir".into());
            extra.push(state.display().to_string());
        } else {
            extra.push("--keyvalue-redis".into());
            extra.push(redis.url());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut cmd = serve_command(&args.host_runner, &args.component, &extra);
        cmd.env_remove("RUST_BACKTRACE");
        let server = vecproc_harness::Launch::new(cmd).discard_output().start()?;
        step(&format!("stateful appends on the {backend} store"));
        let (mut c, big) = appends(backend, &server, args.quick)?;
        cells.append(&mut c);
        let (n, stateful, stateless) = stats(&server, &big, args.quick)?;
        eprintln!(
            "    {backend}: {n} values: GET stats {stateful:.1} ms, POST /stats {stateless:.1} ms"
        );
        stats_rows.push((backend, n, stateful, stateless));
    }
    step("redis-benchmark on the same Redis (SET and GET, one client)");
    let small = redis_benchmark(redis.port, 3, if args.quick { 2_000 } else { 20_000 })?;
    let chunk = redis_benchmark(redis.port, 65_536, if args.quick { 200 } else { 2_000 })?;
    write_report(&args.out, &cells, &stats_rows, &small, &chunk, args.quick)?;
    let _ = fs::remove_dir_all(&state);
    drop(redis);
    let _ = fs::remove_dir_all(&redis_dir);
    Ok(())
}

fn write_report(
    out: &Path,
    cells: &[Cell],
    stats_rows: &[(&str, usize, f64, f64)],
    small: &[(String, f64, f64, f64)],
    chunk: &[(String, f64, f64, f64)],
    quick: bool,
) -> Result<()> {
    let mut md = String::new();
    writeln!(
        md,
        "# Stateful API ({})\n\nOne client, appends in sequence, binary bodies; host-runner \
         (release) serving `vector-store-service.wasm` with `-S keyvalue`. \"at\" is the \
         vector's length when the appends were timed.\n",
        if quick { "quick run" } else { "full run" }
    )?;
    writeln!(
        md,
        "| store | values per append | at | appends | appends/s | values/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for c in cells {
        writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} |",
            c.backend,
            c.batch,
            c.at,
            c.appends,
            c.per_second,
            c.per_second * c.batch as f64,
            c.p50_ms,
            c.p99_ms
        )?;
    }
    writeln!(
        md,
        "\n| store | values | GET /vectors/{{id}}/stats p50 ms | POST /stats (same values) p50 ms | ratio |\n|---|---:|---:|---:|---:|"
    )?;
    for (b, n, s, l) in stats_rows {
        writeln!(md, "| {b} | {n} | {s:.1} | {l:.1} | {:.2} |", s / l)?;
    }
    writeln!(
        md,
        "\n`redis-benchmark` on the same Redis, one client (the limit the Redis path can approach):\n\n| test | value bytes | requests/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|"
    )?;
    for (rows, size) in [(small, 3), (chunk, 65_536)] {
        for (t, rps, p50, p99) in rows {
            writeln!(md, "| {t} | {size} | {rps:.0} | {p50:.3} | {p99:.3} |")?;
        }
    }
    fs::write(out.join("stateful.md"), &md)?;
    let json = json!({
        "appends": cells.iter().map(|c| json!({
            "store": c.backend, "batch": c.batch, "at": c.at, "appends": c.appends,
            "per_second": c.per_second, "p50_ms": c.p50_ms, "p99_ms": c.p99_ms,
        })).collect::<Vec<_>>(),
        "stats": stats_rows.iter().map(|(b, n, s, l)| json!({
            "store": b, "values": n, "stateful_ms": s, "stateless_ms": l,
        })).collect::<Vec<_>>(),
        "redis_benchmark": small.iter().map(|r| (r, 3)).chain(chunk.iter().map(|r| (r, 65_536)))
            .map(|((t, rps, p50, p99), size)| json!({
                "test": t, "bytes": size, "rps": rps, "p50_ms": p50, "p99_ms": p99,
            })).collect::<Vec<_>>(),
    });
    fs::write(out.join("stateful.json"), serde_json::to_vec_pretty(&json)?)?;
    print!("{md}");
    eprintln!("    wrote {}", out.join("stateful.md").display());
    Ok(())
}
