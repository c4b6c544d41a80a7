//! `vecproc-bench startup`, the startup half of `cargo xtask bench`
//! (`cargo xtask bench --only startup` runs it alone): how long a fresh instance, a fresh process and a fresh workerd
//! take to give a first answer, and how big the artifacts are, to check the
//! seed article's "10x faster than container alternatives" and "10-100x
//! smaller than Docker images". Writes `startup.md` and `startup.json`
//! into `--out`.
//!
//! Everything listens on 127.0.0.1 with port 0 (each server reports the port
//! it got), every process started here is killed and waited for when its
//! guard drops, and each loop has a count and a deadline. No container
//! engine runs on this machine, so container images are sized from the
//! layers they would hold, not pulled or started.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use vecproc_harness::cmd::{self, output, step};
use vecproc_harness::{Launch, Registry};

/// Options of `vecproc-bench startup`.
#[derive(clap::Args)]
pub struct Args {
    /// The composed service.
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-service.wasm"))]
    service: PathBuf,
    /// host-runner.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("host-runner"))]
    host_runner: PathBuf,
    /// `vecproc-native-server`.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("vecproc-native-server"))]
    native: PathBuf,
    /// The native `vecproc` command.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("vecproc"))]
    cli: PathBuf,
    /// `js/` with its npm packages installed, for the workerd rows.
    #[arg(long, default_value_os_t = vecproc_harness::paths::repo_root().join("js"))]
    js_dir: PathBuf,
    /// `wkg`, to publish the service to a loopback registry for the
    /// registry rows (`$VECPROC_WKG`, else cargo's bin directory).
    #[arg(long, default_value_os_t = vecproc_harness::paths::tool("VECPROC_WKG", "wkg"))]
    wkg: PathBuf,
    /// Where to write `startup.md` and `startup.json`.
    #[arg(long, default_value_os_t = vecproc_harness::paths::bench_dir())]
    out: PathBuf,
    /// Few runs: checks the pipeline, not the machine.
    #[arg(long)]
    quick: bool,
}

/// A server that has answered its first `GET /health`.
struct Started {
    /// What stops it when dropped (a harness server, or workerd's guard).
    _guard: Box<dyn std::any::Any>,
    addr: String,
    /// host-runner's admin address, when `--admin-addr` was given.
    admin: Option<String>,
    /// Spawn to the server saying it listens (startup line or control fd).
    listening: Duration,
    /// Spawn to the first 200 on `/health`.
    first_answer: Duration,
}

/// An HTTP client for loopback: keep-alive, short connect timeout.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(1))
        .timeout(Duration::from_secs(10))
        .build()
}

/// `GET url` to a 200 with the body read to its end (so the connection is
/// reused), or an error.
fn get(agent: &ureq::Agent, url: &str) -> Result<String> {
    let answer = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    if answer.status() != 200 {
        bail!("GET {url}: status {}", answer.status());
    }
    Ok(answer.into_string()?)
}

/// Polls `GET /health` every 200 µs until it answers 200; returns the time
/// since `spawned`.
fn first_answer(addr: &str, spawned: Instant, deadline: Duration) -> Result<Duration> {
    let url = format!("http://{addr}/health");
    loop {
        // A new agent per attempt: no pooled connection from a failed try.
        if get(&agent(), &url).is_ok() {
            return Ok(spawned.elapsed());
        }
        if spawned.elapsed() > deadline {
            bail!("no 200 from {url} within {deadline:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Starts `bin serve --addr=127.0.0.1:0 ARGS...` (host-runner or
/// `vecproc-native-server`, which print `wasmtime serve`'s startup line),
/// with `HOME`, `XDG_CACHE_HOME` and `XDG_CONFIG_HOME` under `home` so the
/// compiled-code cache is the one this benchmark chose, and waits for the
/// first answer.
fn start_server(bin: &Path, args: &[&str], home: &Path) -> Result<Started> {
    let spawned = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(args)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let server = Launch::new(cmd)
        .timeout(Duration::from_secs(30))
        .discard_output()
        .start()?;
    let addr = server.authority().to_string();
    let admin = server.admin();
    let listening = server.listening();
    let first_answer = first_answer(&addr, spawned, Duration::from_secs(30))?;
    Ok(Started {
        _guard: Box::new(server),
        addr,
        admin,
        listening,
        first_answer,
    })
}

/// Starts `workerd serve CONFIG --socket-addr http=127.0.0.1:0
/// --control-fd 3` and waits for its first answer. The shell only moves fd 3
/// onto the pipe read here and `exec`s, so the guard holds workerd itself.
fn start_workerd(workerd: &Path, config: &Path, log: &Path) -> Result<Started> {
    let spawned = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 3>&1 1>&2"#)
        .arg(workerd)
        .arg("serve")
        .arg(config)
        .args(["--socket-addr", "http=127.0.0.1:0", "--control-fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("starting {}", workerd.display()))?;
    let control = child.stdout.take().expect("piped");
    let guard = Box::new(vecproc_harness::process::Child::new(child));
    // Read the control fd on a thread so a workerd that never listens cannot
    // hang the benchmark.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(control).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["event"] == "listen" && event["socket"] == "http" {
                    let _ = tx.send(event["port"].as_u64());
                }
            }
        }
    });
    let port = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => port,
        _ => bail!(
            "workerd did not listen within 30 s: {}",
            fs::read_to_string(log).unwrap_or_default().trim()
        ),
    };
    let listening = spawned.elapsed();
    let addr = format!("127.0.0.1:{port}");
    let first_answer = first_answer(&addr, spawned, Duration::from_secs(30))?;
    Ok(Started {
        _guard: guard,
        addr,
        admin: None,
        listening,
        first_answer,
    })
}

/// median, p90, min, max of a sample, in the sample's unit.
#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    median: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Option<Stats> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some(Stats {
        n: v.len(),
        median: at(0.5),
        p90: at(0.9),
        min: v[0],
        max: v[v.len() - 1],
    })
}

/// One measured row of the timing table.
struct Row {
    what: String,
    /// What one sample is.
    sample: String,
    /// Milliseconds.
    stats: Option<Stats>,
    runs_ms: Vec<f64>,
}

impl Row {
    fn new(what: &str, sample: &str, runs_ms: Vec<f64>) -> Row {
        eprintln!(
            "    {what}: {}",
            stats(runs_ms.clone()).map_or("no samples".into(), |s| format!(
                "median {:.3} ms (n {}, p90 {:.3}, min {:.3}, max {:.3})",
                s.median, s.n, s.p90, s.min, s.max
            ))
        );
        Row {
            what: what.to_string(),
            sample: sample.to_string(),
            stats: stats(runs_ms.clone()),
            runs_ms,
        }
    }
}

/// Milliseconds of `n` sequential `GET /health` on one keep-alive
/// connection, after `warmup` untimed ones.
fn warm_latency(addr: &str, warmup: usize, n: usize) -> Result<Vec<f64>> {
    let agent = agent();
    let url = format!("http://{addr}/health");
    for _ in 0..warmup {
        get(&agent, &url)?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(&agent, &url)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// host-runner's instantiation histogram from `/metrics`: (upper bound in
/// seconds, cumulative count) per bucket, the sum in seconds, the count.
type Histogram = (Vec<(String, u64)>, f64, u64);

fn instantiation_histogram(admin: &str) -> Result<Histogram> {
    let text = get(&agent(), &format!("http://{admin}/metrics"))?;
    let name = "host_runner_instantiation_duration_seconds";
    let (mut buckets, mut sum, mut count) = (Vec::new(), f64::NAN, 0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = rest.rsplit(' ').next().unwrap_or("");
        if let Some(b) = rest.strip_prefix("_bucket{le=\"") {
            let bound = b.split('"').next().unwrap_or("").to_string();
            buckets.push((bound, value.parse().unwrap_or(0)));
        } else if rest.starts_with("_sum ") {
            sum = value.parse().unwrap_or(f64::NAN);
        } else if rest.starts_with("_count ") {
            count = value.parse().unwrap_or(0);
        }
    }
    if count == 0 {
        bail!("no {name} observations in /metrics");
    }
    Ok((buckets, sum, count))
}

/// Bytes of `gzip -6` (gzip's and the OCI tooling's default level) of what
/// `cmd` writes on stdout.
fn gzip_of(cmd: &str) -> Result<u64> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} | gzip -6 -c | wc -c"))
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!("{cmd} | gzip failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("gzip of {cmd}"))
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The shared libraries `ldd` says `bin` loads, resolved to real files.
fn shared_libraries(bin: &Path) -> Vec<PathBuf> {
    let Some(text) = output(Command::new("ldd").arg(bin)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect()
}

/// A copy of `bin` with its symbols and line tables stripped, in `dir`.
fn stripped(bin: &Path, dir: &Path) -> Result<PathBuf> {
    let out = dir.join(format!(
        "{}.stripped",
        bin.file_name().unwrap_or_default().to_string_lossy()
    ));
    fs::copy(bin, &out)?;
    cmd::run(Command::new("strip").arg(&out))?;
    Ok(out)
}

fn len(p: &Path) -> Result<u64> {
    Ok(fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// The published size of gcr.io/distroless/static-debian12, from the
/// distroless README (github.com/GoogleContainerTools/distroless, "The
/// smallest distroless image ... is around 2 MiB"; that is the unpacked
/// image, so its compressed layer is at most this).
const DISTROLESS_STATIC_BYTES: u64 = 2 * 1024 * 1024;

/// Runs the startup and size measurements and writes the report section.
pub fn run(args: Args) -> Result<()> {
    let (cold_runs, warm_n, warmup) = if args.quick {
        (3, 100, 10)
    } else {
        (10, 1000, 50)
    };
    let tmp = args.out.join("startup-tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let result = measure(
        &Inputs {
            service: &args.service,
            host_runner: &args.host_runner,
            native: &args.native,
            cli: &args.cli,
            js_dir: &args.js_dir,
            wkg: &args.wkg,
            tmp: &tmp,
            out: &args.out,
        },
        cold_runs,
        warm_n,
        warmup,
    );
    let _ = fs::remove_dir_all(&tmp);
    result
}

struct Inputs<'a> {
    service: &'a Path,
    host_runner: &'a Path,
    native: &'a Path,
    cli: &'a Path,
    js_dir: &'a Path,
    wkg: &'a Path,
    tmp: &'a Path,
    out: &'a Path,
}

fn measure(i: &Inputs, cold_runs: usize, warm_n: usize, warmup: usize) -> Result<()> {
    let component = i.service.to_str().context("component path")?;
    let load = |_: ()| {
        fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    };
    let load_before = load(());
    let mut rows = Vec::new();
    let mut records = Vec::new();

    // 1. A fresh instance per request in a warm host-runner (its default).
    step(&format!(
        "host-runner, warm: {warm_n} GET /health on one connection, a fresh instance each"
    ));
    let home = i.tmp.join("home-warm");
    let server = start_server(
        i.host_runner,
        &["--admin-addr=127.0.0.1:0", component],
        &home,
    )?;
    rows.push(Row::new(
        "host-runner, warm process: GET /health, fresh instance per request",
        "one request on a keep-alive connection",
        warm_latency(&server.addr, warmup, warm_n)?,
    ));
    let admin = server
        .admin
        .clone()
        .context("host-runner printed no admin address")?;
    let (buckets, sum, count) = instantiation_histogram(&admin)?;
    drop(server);
    let cache_files = walk_count(&home.join("cache"));
    eprintln!("    compiled-code cache under the benchmark's XDG_CACHE_HOME: {cache_files} files");
    let mean_instantiation_us = sum / count as f64 * 1e6;

    // 2. A warm native server, the same request; it stops at the block's end.
    {
        step(&format!(
            "vecproc-native-server, warm: {warm_n} GET /health"
        ));
        let server = start_server(i.native, &[], &i.tmp.join("home-native"))?;
        rows.push(Row::new(
            "native server, warm process: GET /health",
            "one request on a keep-alive connection",
            warm_latency(&server.addr, warmup, warm_n)?,
        ));
    }

    // 3. A fresh native process per request: the CLI, numbers on stdin.
    step(&format!(
        "native vecproc CLI: {warm_n} fresh processes, [1,2,3] on stdin"
    ));
    let mut cli_times = Vec::new();
    for _ in 0..warm_n.min(200) {
        let t = Instant::now();
        let mut child = Command::new(i.cli)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting vecproc")?;
        child.stdin.take().expect("piped").write_all(b"[1,2,3]")?;
        let mut answer = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut answer)?;
        let status = child.wait()?;
        cli_times.push(t.elapsed().as_secs_f64() * 1e3);
        if !status.success() || !answer.contains("\"count\"") {
            bail!("vecproc answered {status}: {answer}");
        }
    }
    rows.push(Row::new(
        "native process per request: `vecproc` CLI, spawn to exit",
        "spawn, stdin `[1,2,3]`, statistics JSON read, exit",
        cli_times,
    ));

    // 4. Cold process starts to the first answer.
    let cold = |label: &str, bin: &Path, args: &[&str], fresh_home: bool| -> Result<Row> {
        step(&format!("{label}: {cold_runs} cold starts"));
        let warm_home = i.tmp.join(format!("home-{}", rows_slug(label)));
        let mut first = Vec::new();
        let mut listen = Vec::new();
        for run in 0..cold_runs {
            let home = if fresh_home {
                i.tmp.join(format!("home-{}-{run}", rows_slug(label)))
            } else {
                warm_home.clone()
            };
            let s = start_server(bin, args, &home)?;
            first.push(s.first_answer.as_secs_f64() * 1e3);
            listen.push(s.listening.as_secs_f64() * 1e3);
            drop(s);
            if fresh_home {
                let _ = fs::remove_dir_all(&home);
            }
        }
        let _ = stats(listen).map(|s| eprintln!("    to listening: median {:.2} ms", s.median));
        Ok(Row::new(
            label,
            "spawn to the first 200 on GET /health",
            first,
        ))
    };
    // Prime the warm cache once (untimed), then time.
    let primed = i.tmp.join(format!(
        "home-{}",
        rows_slug("host-runner, cold process, compiled-code cache warm")
    ));
    drop(start_server(i.host_runner, &[component], &primed)?);
    let primed_files = walk_count(&primed.join("cache"));
    rows.push(cold(
        "host-runner, cold process, compiled-code cache warm",
        i.host_runner,
        &[component],
        false,
    )?);
    rows.push(cold(
        "host-runner, cold process, compiled-code cache empty (compiles, writes the cache)",
        i.host_runner,
        &[component],
        true,
    )?);
    rows.push(cold(
        "host-runner, cold process, --no-cache (compiles)",
        i.host_runner,
        &["--no-cache", component],
        true,
    )?);
    rows.push(cold("native server, cold process", i.native, &[], false)?);

    // 4b. From an OCI registry: spawn to the serving line, by where the
    // component comes from.
    let mut registry_note = String::new();
    match registry_rows(i, cold_runs, &primed) {
        Ok((more, note)) => {
            rows.extend(more);
            registry_note = note;
        }
        Err(e) => {
            eprintln!("    registry rows skipped: {e:#}");
            write!(registry_note, "Registry rows not measured: {e:#}.")?;
        }
    }

    // 5. workerd: cold process start to the first answer, then warm
    // fresh-instance latency.
    let mut workerd_note = String::new();
    match edge_bundle(i) {
        Ok((workerd, config)) => {
            step(&format!("workerd: {cold_runs} cold starts"));
            let log = i.tmp.join("workerd.log");
            let (mut first, mut listen) = (Vec::new(), Vec::new());
            for _ in 0..cold_runs {
                let s = start_workerd(&workerd, &config, &log)?;
                first.push(s.first_answer.as_secs_f64() * 1e3);
                listen.push(s.listening.as_secs_f64() * 1e3);
            }
            let listen_median = stats(listen).map_or(f64::NAN, |s| s.median);
            eprintln!("    to listening (control fd): median {listen_median:.2} ms");
            rows.push(Row::new(
                "workerd, cold process (isolate, transpiled component)",
                "spawn to the first 200 on GET /health",
                first,
            ));
            step(&format!(
                "workerd, warm: {warm_n} GET /health, fresh instance each"
            ));
            let s = start_workerd(&workerd, &config, &log)?;
            rows.push(Row::new(
                "workerd, warm process: GET /health, fresh instance per request",
                "one request on a keep-alive connection",
                warm_latency(&s.addr, warmup, warm_n)?,
            ));
            write!(
                workerd_note,
                "workerd reported listening on its control fd after {listen_median:.1} ms (median)."
            )?;
        }
        Err(e) => {
            eprintln!("    workerd skipped: {e:#}");
            write!(workerd_note, "workerd not measured: {e:#}.")?;
        }
    }

    // 6. Sizes.
    step("sizes");
    let sizes = sizes(i)?;

    let load_after = load(());

    // Report.
    let mut md = String::from("# Startup and size: fresh instances, processes, isolates\n\n");
    let cpu = crate::report::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (commit, date) = crate::report::provenance();
    writeln!(
        md,
        "Commit {commit}, {date}. Machine: {cpu} ({cores} cores). Command: `cargo xtask bench`.\n"
    )?;
    writeln!(
        md,
        "Times in ms. \"warm\" rows: one server process, {warmup} untimed requests, then {warm_n} \
         sequential `GET /health` on one keep-alive connection (ureq), each timed from send to \
         the whole answer. \"cold\" rows: {cold_runs} runs, each timed from spawn to the first \
         200 on `GET /health` (polled every 0.2 ms once the server says it listens). Servers on \
         127.0.0.1, port 0, without `RUST_BACKTRACE`; each host-runner has its own `HOME` and \
         `XDG_CACHE_HOME`, so \"cache empty\" is a fresh directory per run and \"cache warm\" \
         one primed by an untimed start ({primed_files} files in it). The OS page cache is warm \
         in every row (the binaries and the component were just read). {registry_note} \
         {workerd_note} \
         Load average (1 min) {load_before} before, {load_after} after.\n"
    )?;
    writeln!(md, "| what | one sample | n | median | p90 | min | max |")?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|")?;
    for row in &rows {
        match row.stats {
            Some(s) => writeln!(
                md,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                row.what, row.sample, s.n, s.median, s.p90, s.min, s.max
            )?,
            None => writeln!(md, "| {} | {} | 0 | – | – | – | – |", row.what, row.sample)?,
        }
        records.push(
            json!({"what": row.what, "sample": row.sample, "runs_ms": row.runs_ms,
            "median_ms": row.stats.map(|s| s.median), "p90_ms": row.stats.map(|s| s.p90)}),
        );
    }
    writeln!(
        md,
        "\nhost-runner's `/metrics` after the warm run: {count} instantiations, mean \
         {mean_instantiation_us:.1} µs (`host_runner_instantiation_duration_seconds`: \
         `instantiate_async` of the pre-instantiated component, per request).\n"
    )?;
    writeln!(md, "| instantiation ≤ | count (cumulative) | share |")?;
    writeln!(md, "|---:|---:|---:|")?;
    let mut previous = 0;
    for (bound, cumulative) in &buckets {
        if *cumulative > previous || bound == "+Inf" {
            writeln!(
                md,
                "| {} | {cumulative} | {:.1}% |",
                bucket_label(bound),
                *cumulative as f64 / count as f64 * 100.0
            )?;
        }
        previous = *cumulative;
        if *cumulative == count {
            break;
        }
    }
    records.push(json!({"instantiation": {"count": count, "sum_s": sum,
        "mean_us": mean_instantiation_us,
        "buckets": buckets.iter().map(|(b, c)| json!([b, c])).collect::<Vec<_>>()}}));

    writeln!(md, "\n| artifact | bytes | size | gzip -6 |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for (what, bytes, gz) in &sizes {
        writeln!(
            md,
            "| {what} | {bytes} | {} | {} |",
            human(*bytes),
            gz.map_or("–".into(), human)
        )?;
        records.push(json!({"artifact": what, "bytes": bytes, "gzip_bytes": gz}));
    }
    writeln!(
        md,
        "\nNo container engine runs on this machine: the image rows are computed, not pulled. \
         \"scratch + libraries\" is one layer holding the stripped binary and the shared \
         libraries `ldd` lists, as `tar | gzip -6` (a registry stores layers so); the image's \
         config and manifest add about 1-2 KiB. The distroless figure is the unpacked size the \
         distroless README gives for `gcr.io/distroless/static-debian12` (\"around 2 MiB\"), \
         an upper bound of its compressed layer, added to the gzip of the stripped binary, which \
         stands in for a static build of it (not built here)."
    )?;

    fs::create_dir_all(i.out)?;
    fs::write(i.out.join("startup.md"), &md)?;
    fs::write(
        i.out.join("startup.json"),
        serde_json::to_vec_pretty(&Value::Array(records))?,
    )?;
    println!("{md}");
    eprintln!("==> wrote {}: startup.md, startup.json", i.out.display());
    Ok(())
}

/// Cold host-runner starts timed from spawn to its `Serving HTTP on` line,
/// the component named as a local file or as an `oci://` reference to a
/// loopback registry (`vecproc-harness`'s docker-registry) it was just
/// published to with the real wkg: with the pull cache empty, warm, or warm with the
/// registry stopped. The compiled-code cache is the warm one in `primed`
/// in every row but the first, so the rows differ only in how the component
/// is found (and, in the first, compiled).
fn registry_rows(i: &Inputs, cold_runs: usize, primed: &Path) -> Result<(Vec<Row>, String)> {
    let wkg = i.wkg;
    let dir = i.tmp.join("registry");
    fs::create_dir_all(&dir)?;
    let registry = Registry::try_start(None)?;
    let addr = registry.addr.clone();
    let reference = format!(
        "{addr}/vecproc/vector-service:{}",
        env!("CARGO_PKG_VERSION")
    );
    step(&format!(
        "publishing the service to {reference} (wkg oci push)"
    ));
    cmd::run(
        Command::new(wkg)
            .args(["oci", "push", "--insecure", &addr, &reference])
            .arg(i.service),
    )?;
    let tag = format!("oci://{reference}");
    // Spawn to the serving line of `host-runner serve ARGS... COMPONENT`.
    let listen_ms = |cache: Option<&Path>, component: &str, home: &Path| -> Result<f64> {
        let mut args = vec!["--insecure-registry", addr.as_str()];
        let cache = cache.map(|c| c.display().to_string());
        if let Some(cache) = &cache {
            args.extend(["--cache-dir", cache.as_str()]);
        }
        args.push(component);
        let s = start_server(i.host_runner, &args, home)?;
        Ok(s.listening.as_secs_f64() * 1e3)
    };
    // The pinned reference, as `host-runner pull` prints it.
    let warm_cache = dir.join("pull-cache-warm");
    let pulled = Command::new(i.host_runner)
        .args(["pull", "--insecure-registry", &addr, "--cache-dir"])
        .arg(&warm_cache)
        .arg(&tag)
        .stderr(Stdio::inherit())
        .output()
        .context("running host-runner pull")?;
    let pinned = String::from_utf8_lossy(&pulled.stdout).trim().to_string();
    if !pulled.status.success() || !pinned.contains("@sha256:") {
        bail!("host-runner pull {tag} failed or printed no pinned reference: {pinned:?}");
    }
    let file = i.service.to_str().context("component path")?;
    let mut rows = Vec::new();
    fn timed(
        rows: &mut Vec<Row>,
        label: &str,
        cold_runs: usize,
        run: impl FnMut(usize) -> Result<f64>,
    ) -> Result<()> {
        step(&format!("{label}: {cold_runs} cold starts"));
        let runs = (0..cold_runs).map(run).collect::<Result<Vec<_>>>()?;
        rows.push(Row::new(label, "spawn to the `Serving HTTP on` line", runs));
        Ok(())
    }
    timed(
        &mut rows,
        "host-runner from `oci://…:TAG`, pull cache and compiled-code cache both empty (a new node)",
        cold_runs,
        |run| {
            let home = dir.join(format!("home-new-{run}"));
            let cache = dir.join(format!("pull-cache-new-{run}"));
            let ms = listen_ms(Some(&cache), &tag, &home);
            let _ = fs::remove_dir_all(&home);
            let _ = fs::remove_dir_all(&cache);
            ms
        },
    )?;
    timed(
        &mut rows,
        "host-runner from `oci://…:TAG`, pull cache empty (manifest, layer, verify, store)",
        cold_runs,
        |run| {
            let cache = dir.join(format!("pull-cache-empty-{run}"));
            let ms = listen_ms(Some(&cache), &tag, primed);
            let _ = fs::remove_dir_all(&cache);
            ms
        },
    )?;
    timed(
        &mut rows,
        "host-runner from `oci://…:TAG`, pull cache warm (one manifest request)",
        cold_runs,
        |_| listen_ms(Some(&warm_cache), &tag, primed),
    )?;
    timed(
        &mut rows,
        "host-runner from `oci://…@sha256:…`, pull cache warm (no network)",
        cold_runs,
        |_| listen_ms(Some(&warm_cache), &pinned, primed),
    )?;
    timed(
        &mut rows,
        "host-runner from a local file",
        cold_runs,
        |_| listen_ms(None, file, primed),
    )?;
    drop(registry);
    timed(
        &mut rows,
        "host-runner from `oci://…:TAG`, registry stopped, pull cache warm (the last digest seen, with a warning)",
        cold_runs,
        |_| listen_ms(Some(&warm_cache), &tag, primed),
    )?;
    let note = format!(
        "The registry rows start host-runner on `{}` published to Debian's docker-registry \
         on {addr} with `wkg oci push`, `--insecure-registry` and a \
         `--cache-dir` of their own; they are timed to the serving line, before any request.",
        tag.replace(&addr, "HOST:PORT")
    );
    Ok((rows, note))
}

fn bucket_label(bound: &str) -> String {
    match bound.parse::<f64>() {
        Ok(s) if s < 1e-3 => format!("{:.0} µs", s * 1e6),
        Ok(s) => format!("{} ms", s * 1e3),
        Err(_) => bound.to_string(),
    }
}

/// A file-name-safe form of a row label.
fn rows_slug(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Files under `dir`, recursively (0 if it does not exist).
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_count(&p)
            } else {
                1
            }
        })
        .sum()
}

/// Builds the worker for a fresh instance per request into the benchmark's
/// temporary directory (as `cargo xtask edge` does); returns the workerd
/// binary and the config.
fn edge_bundle(i: &Inputs) -> Result<(PathBuf, PathBuf)> {
    let js_dir = i.js_dir;
    let workerd = js_dir.join("node_modules/.bin/workerd");
    if !workerd.exists() {
        bail!("{} is missing", workerd.display());
    }
    let out = i.tmp.join("edge");
    step("building the worker (js/edge/build.mjs, --instance-reuse 1)");
    cmd::run(
        Command::new("node")
            .current_dir(js_dir)
            .arg("edge/build.mjs")
            .arg("--wasm")
            .arg(i.service)
            .arg("--out")
            .arg(&out)
            .args(["--addr", "127.0.0.1:0", "--instance-reuse", "1"]),
    )?;
    Ok((workerd, out.join("config.capnp")))
}

/// (artifact, bytes, gzip bytes) rows.
fn sizes(i: &Inputs) -> Result<Vec<(String, u64, Option<u64>)>> {
    let mut rows = Vec::new();
    let component = i.service;
    rows.push((
        "`vector-service.wasm` (the composed component)".to_string(),
        len(component)?,
        Some(gzip_of(&format!("cat {}", quoted(component)))?),
    ));
    let hr = stripped(i.host_runner, i.tmp)?;
    rows.push((
        "host-runner (release, as built: line tables)".to_string(),
        len(i.host_runner)?,
        None,
    ));
    rows.push((
        "host-runner (release, stripped)".to_string(),
        len(&hr)?,
        Some(gzip_of(&format!("cat {}", quoted(&hr)))?),
    ));
    let native = i.native;
    let ns = stripped(native, i.tmp)?;
    let ns_gz = gzip_of(&format!("cat {}", quoted(&ns)))?;
    rows.push((
        "vecproc-native-server (release, as built)".to_string(),
        len(native)?,
        None,
    ));
    rows.push((
        "vecproc-native-server (release, stripped)".to_string(),
        len(&ns)?,
        Some(ns_gz),
    ));
    let libs = shared_libraries(native);
    let mut files = vec![ns.clone()];
    files.extend(libs.iter().cloned());
    let unpacked: u64 = files.iter().filter_map(|f| len(f).ok()).sum();
    let list: Vec<String> = files.iter().map(|f| quoted(f)).collect();
    let layer = gzip_of(&format!(
        "tar --dereference -cf - {} 2>/dev/null",
        list.join(" ")
    ))?;
    let names: Vec<String> = libs
        .iter()
        .filter_map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    rows.push((
        format!(
            "image: scratch + native server + its libraries ({})",
            names.join(", ")
        ),
        unpacked,
        Some(layer),
    ));
    rows.push((
        "image: gcr.io/distroless/static-debian12 (≤ 2 MiB, published) + native server".to_string(),
        DISTROLESS_STATIC_BYTES + len(&ns)?,
        Some(DISTROLESS_STATIC_BYTES + ns_gz),
    ));

    Ok(rows)
}
