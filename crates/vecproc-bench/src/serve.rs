//! `vecproc-bench serve`, the serving half of `cargo xtask bench`: wrk against a native hyper
//! server (`vecproc-native-server`, the machine's limit), `wasmtime serve`
//! and host-runner on the same routes, in one run, with each server's user
//! and kernel CPU time per request; plus cold start (process start to first
//! 200) with and without the compiled-code cache. Writes `serve.md` and
//! `serve.json` into `--out`.
//!
//! What is measured is a list of [`Target`]s, (server, component) pairs: a
//! row for another server or component (a WASI 0.3 build, say) is one more
//! entry in [`targets`].

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use vecproc_harness::cmd::{output, step};
use vecproc_harness::{Launch, Server};

/// Options of `vecproc-bench serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The `wasmtime` CLI (`$VECPROC_WASMTIME`, else cargo's bin directory).
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasmtime_bin())]
    wasmtime: PathBuf,
    /// host-runner.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("host-runner"))]
    host_runner: PathBuf,
    /// `vecproc-native-server`.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("vecproc-native-server"))]
    native: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
}

/// How long and how often the serving benchmarks load each server, and
/// where they write (`serve` and `protocols`).
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Seconds of load per cell.
    #[arg(long, default_value_t = 5)]
    pub seconds: u32,
    /// Rounds (servers alternate within a round; cells are medians).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Where to write the report (`NAME.md`, `NAME.json`).
    #[arg(long, default_value_os_t = vecproc_harness::paths::bench_dir())]
    pub out: PathBuf,
}

/// Runs the serving benchmark.
pub fn run(args: Args) -> Result<()> {
    bench(
        &Servers {
            wasmtime: &args.wasmtime,
            host_runner: &args.host_runner,
            native: &args.native,
        },
        &args.load.out,
        args.load.seconds,
        args.load.rounds.max(1),
    )
}

/// Starts `bin serve --addr=127.0.0.1:0 EXTRA... [COMPONENT]` and waits for
/// its first 200 on `/health` (over HTTPS too, the certificate unchecked).
pub(crate) fn start(
    bin: &Path,
    extra: &[&str],
    component: Option<&Path>,
) -> Result<(Server, Duration)> {
    let started = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(extra)
        .args(component)
        // A captured backtrace per `wasmtime::Error` (Wasmtime makes one each
        // time a store with fibers is dropped) would be timed otherwise; a
        // production server does not run with these set.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let running = Launch::new(cmd).discard_output().start()?;
    // Cold start ends at the first 200 on /health.
    loop {
        let ok = output(Command::new("curl").args([
            "-s",
            "-k",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &running.url("/health"),
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
    /// Server CPU time per request in user space, in microseconds.
    user_us: f64,
    /// Server CPU time per request in the kernel, in microseconds.
    sys_us: f64,
    /// wrk's own CPU time (user + kernel) per request, in microseconds.
    wrk_us: f64,
}

impl Load {
    /// Server CPU time (user + kernel) per request, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.user_us + self.sys_us
    }
}

/// Two fields of `/proc/{who}/stat` (1-based field numbers of the whole
/// line), in clock ticks: utime and stime are 14 and 15 (all threads of the
/// process, including those that exited); cutime and cstime, 16 and 17, are
/// the children's that were waited for.
pub(crate) fn stat_ticks(who: &str, first: usize) -> Option<(u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces;
    // field 3 starts two bytes after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(first)?, field(first + 1)?))
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 where unknown.
pub(crate) fn ticks_per_second() -> f64 {
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
    let before = stat_ticks(&pid.to_string(), 14);
    let wrk_before = stat_ticks("self", 16);
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
        user_us: f64::NAN,
        sys_us: f64::NAN,
        wrk_us: f64::NAN,
    };
    let after = stat_ticks(&pid.to_string(), 14);
    let wrk_after = stat_ticks("self", 16);
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
    if load.requests > 0 {
        let per_request =
            |ticks: u64| ticks as f64 / ticks_per_second() * 1e6 / load.requests as f64;
        if let (Some(a), Some(b)) = (before, after) {
            load.user_us = per_request(b.0 - a.0);
            load.sys_us = per_request(b.1 - a.1);
        }
        if let (Some(a), Some(b)) = (wrk_before, wrk_after) {
            load.wrk_us = per_request(b.0 + b.1 - a.0 - a.1);
        }
    }
    Ok(load)
}

/// The server binaries the benchmark runs.
struct Servers<'a> {
    wasmtime: &'a Path,
    host_runner: &'a Path,
    native: &'a Path,
}

/// One row of the tables: a server and the component it serves.
struct Target {
    /// Server column.
    server: &'static str,
    /// Component column.
    component_label: &'static str,
    bin: PathBuf,
    /// Arguments before the component (besides `serve --addr=...`).
    args: Vec<String>,
    /// `None` for the native server, which serves no component.
    component: Option<PathBuf>,
    /// Whether the instance-reuse configurations apply (they are
    /// `wasmtime serve` / host-runner flags).
    wasm: bool,
}

/// Every (server, component) pair measured, in table order; the first wasm
/// row is the baseline of the req/s ratio. The p3 rows are there when
/// `target/wasm/vector-service-p3.wasm` has been built.
fn targets(servers: &Servers) -> Vec<Target> {
    let wasm = vecproc_harness::target_dir().join("wasm");
    let p2 = wasm.join("vector-service.wasm");
    let p3 = wasm.join("vector-service-p3.wasm");
    // host-runner's slot-reset defaults, spelled as `wasmtime serve` flags:
    // this row shows how much of the difference they account for.
    let tuned = format!(
        "-Opooling-pagemap-scan=y,pooling-memory-keep-resident={},pooling-table-keep-resident={}",
        256 << 10,
        64 << 10
    );
    let target = |server, component_label, bin: &Path, args: &[&str], component: &Path| Target {
        server,
        component_label,
        bin: bin.to_path_buf(),
        args: args.iter().map(|a| a.to_string()).collect(),
        component: Some(component.to_path_buf()),
        wasm: true,
    };
    let mut all = vec![
        Target {
            server: "native (hyper + vecproc-core)",
            component_label: "–",
            bin: servers.native.to_path_buf(),
            args: Vec::new(),
            component: None,
            wasm: false,
        },
        target("wasmtime serve", "p2", servers.wasmtime, &[], &p2),
        target("host-runner", "p2", servers.host_runner, &[], &p2),
        target(
            "wasmtime serve + host-runner's -O reset",
            "p2",
            servers.wasmtime,
            &[tuned.as_str()],
            &p2,
        ),
    ];
    if p3.exists() {
        // `wasmtime serve` 48 serves a WASI 0.3 component by default.
        all.push(target("wasmtime serve", "p3", servers.wasmtime, &[], &p3));
        all.push(target("host-runner", "p3", servers.host_runner, &[], &p3));
    }
    all
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Runs the serving benchmark into `out`.
fn bench(servers: &Servers, out: &Path, seconds: u32, rounds: u32) -> Result<()> {
    fs::create_dir_all(out)?;
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
    let targets = targets(servers);
    let configs: [(&str, Vec<&str>); 2] = [
        (
            "defaults (p2: a fresh instance per request; p3: reuse 128, 16 at once)",
            vec![],
        ),
        (
            "--max-instance-reuse-count=100",
            vec!["--max-instance-reuse-count=100"],
        ),
    ];
    let mut md = String::from("# Serving benchmark: native vs wasmtime serve vs host-runner\n\n");
    let (commit, date) = crate::report::provenance();
    writeln!(
        md,
        "Commit {commit}, {date}. Command: `cargo xtask bench`.\n"
    )?;
    writeln!(
        md,
        "`wrk -t2 -c32 -d{seconds}s --latency` on loopback, wrk sharing the 2 cores with the server; \
         one server at a time, servers started without `RUST_BACKTRACE`. {rounds} rounds, the \
         servers alternating within each round; each cell is the median over the rounds. \
         \"native\" is `vecproc-native-server`: the same routes and answers from `vecproc_core::api` \
         on hyper 1 and tokio, no WebAssembly (its `/compute` calls glibc's `sin`/`cos`, the \
         guest Rust's port of musl's libm). \"p2\" is `target/wasm/vector-service.wasm`, \"p3\" its WASI 0.3 build \
         `vector-service-p3.wasm` when built. Server CPU is the server process's user and kernel \
         time (`/proc/PID/stat` utime and stime, all threads, {} Hz ticks) during the run divided \
         by the requests wrk completed; wrk CPU is wrk's own (user + kernel, from the benchmark's \
         waited-for children). With both cores busy, req/s is about 2 cores / (server + wrk CPU \
         per request). The ratio compares each server with `wasmtime serve` (p2) at the same \
         settings.\n",
        ticks_per_second()
    )?;
    let mut records = Vec::new();
    for (config, config_args) in &configs {
        // results[target][route] = one Load per round
        let mut results: Vec<Vec<Vec<Load>>> = targets
            .iter()
            .map(|_| routes.iter().map(|_| Vec::new()).collect())
            .collect();
        for round in 0..rounds {
            for (t, target) in targets.iter().enumerate() {
                let mut args: Vec<&str> = target.args.iter().map(String::as_str).collect();
                if target.wasm {
                    args.extend(config_args);
                }
                step(&format!(
                    "{config}, round {}: {} ({})",
                    round + 1,
                    target.server,
                    target.component_label
                ));
                match start(&target.bin, &args, target.component.as_deref()) {
                    Ok((server, _)) => {
                        let pid = server.pid();
                        for (r, (_, path, script)) in routes.iter().enumerate() {
                            let url = server.url(path);
                            let load = wrk(&url, script.map(|p| p.as_path()), seconds, pid)?;
                            eprintln!(
                                "    {path}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, server CPU µs/req {:.1} user + {:.1} kernel, wrk {:.1}",
                                load.rps, load.p50_ms, load.p99_ms, load.user_us, load.sys_us, load.wrk_us
                            );
                            results[t][r].push(load);
                        }
                    }
                    Err(e) => eprintln!("    skipped: {e:#}"),
                }
            }
        }
        writeln!(md, "## {config}\n")?;
        writeln!(
            md,
            "| route | server | component | req/s | p50 ms | p99 ms | server CPU µs/req: user | kernel | total | wrk CPU µs/req | req/s vs wasmtime serve |"
        )?;
        writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let baseline = targets
            .iter()
            .position(|t| t.server == "wasmtime serve" && t.component_label == "p2");
        for (r, (label, _, _)) in routes.iter().enumerate() {
            let base = baseline.map_or(f64::NAN, |b| {
                median(results[b][r].iter().map(|l| l.rps).collect())
            });
            for (t, target) in targets.iter().enumerate() {
                let (name, component) = (target.server, target.component_label);
                let runs = &results[t][r];
                if runs.is_empty() {
                    writeln!(
                        md,
                        "| {label} | {name} | {component} | – | – | – | – | – | – | – | – |"
                    )?;
                    continue;
                }
                let m = |f: fn(&Load) -> f64| median(runs.iter().map(f).collect());
                let (rps, p50, p99) = (m(|l| l.rps), m(|l| l.p50_ms), m(|l| l.p99_ms));
                let (user, sys, cpu, wrk_cpu) = (
                    m(|l| l.user_us),
                    m(|l| l.sys_us),
                    m(Load::cpu_us),
                    m(|l| l.wrk_us),
                );
                let non_2xx: u64 = runs.iter().map(|l| l.non_2xx).sum();
                let non_2xx_note = if non_2xx > 0 {
                    format!(" ({non_2xx} non-2xx)")
                } else {
                    String::new()
                };
                writeln!(
                    md,
                    "| {label} | {name} | {component} | {rps:.0}{non_2xx_note} | {p50:.2} | {p99:.2} | {user:.1} | {sys:.1} | {cpu:.1} | {wrk_cpu:.1} | {:.2}× |",
                    rps / base
                )?;
                records.push(json!({"config": config, "route": label, "server": name,
                    "component": component,
                    "rps": rps, "p50_ms": p50, "p99_ms": p99,
                    "cpu_us_per_request": cpu, "user_us_per_request": user,
                    "sys_us_per_request": sys, "wrk_cpu_us_per_request": wrk_cpu,
                    "non_2xx": non_2xx,
                    "rounds": runs.iter().map(|l| json!({"rps": l.rps, "p50_ms": l.p50_ms,
                        "p99_ms": l.p99_ms, "requests": l.requests,
                        "user_us_per_request": l.user_us, "sys_us_per_request": l.sys_us,
                        "wrk_cpu_us_per_request": l.wrk_us})).collect::<Vec<_>>()}));
            }
        }
        writeln!(md)?;
    }

    step("cold start: process start to first 200 on /health");
    writeln!(
        md,
        "## Cold start (process start to first 200, median of 5)\n"
    )?;
    writeln!(md, "| server | component | compiled-code cache | ms |")?;
    writeln!(md, "|---|---|---|---:|")?;
    for target in &targets {
        // The -O row differs from `wasmtime serve` only in how slots reset.
        if target.server.contains("-O reset") {
            continue;
        }
        let no_cache: &[&str] = if !target.wasm {
            &[]
        } else if target.bin == servers.host_runner {
            &["--no-cache"]
        } else {
            &["-Ccache=n"]
        };
        let caches: &[(&[&str], &str)] = if target.wasm {
            &[(&[], "on (default)"), (no_cache, "off")]
        } else {
            &[(&[], "–")]
        };
        for (cache_args, cache) in caches {
            let args: Vec<&str> = target
                .args
                .iter()
                .map(String::as_str)
                .chain(cache_args.iter().copied())
                .collect();
            let mut times = Vec::new();
            for _ in 0..5 {
                match start(&target.bin, &args, target.component.as_deref()) {
                    Ok((server, took)) => {
                        drop(server);
                        times.push(took.as_secs_f64() * 1e3);
                    }
                    Err(e) => {
                        eprintln!("    skipped: {e:#}");
                        break;
                    }
                }
            }
            let median = median(times.clone());
            let (name, component) = (target.server, target.component_label);
            eprintln!("    {name} ({component}), cache {cache}: {median:.1} ms");
            writeln!(md, "| {name} | {component} | {cache} | {median:.1} |")?;
            records.push(
                json!({"cold_start": name, "component": component, "cache": cache,
                "median_ms": median, "runs_ms": times}),
            );
        }
    }
    fs::write(out.join("serve.md"), &md)?;
    fs::write(
        out.join("serve.json"),
        serde_json::to_vec_pretty(&Value::Array(records))?,
    )?;
    println!("{md}");
    Ok(())
}
