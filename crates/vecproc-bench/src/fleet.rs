//! `vecproc-bench fleet`: three nodes of the stateful service behind
//! Debian's HAProxy, on one shared Redis, under a bounded mixed load at a
//! fixed rate, through a rolling restart of all three (SIGTERM, drain,
//! start) and then a `kill -9` of one.
//!
//! The nodes are host-runner's containerd shim running the service's OCI
//! image (pushed by `host-runner image` to Debian's registry on loopback,
//! pulled by Debian's containerd on a private socket), or, where
//! containerd cannot start, three host-runner processes (the report says
//! which). HAProxy health-checks each node's `/healthz` on its admin port
//! (503 once a drain begins, so a draining node gets no new request while
//! its own finish), retries a failed connection on another node (`retries`,
//! `option redispatch`, `retry-on conn-failure empty-response`), and opens
//! a fresh server connection per request (`option http-server-close`), so
//! no request is ever written to a connection a draining node is closing.
//! It sets no `on-marked-down shutdown-sessions`: that would cut the
//! requests a draining node is finishing.
//!
//! The load: 8 clients on keep-alive connections to HAProxy, each paced to
//! its share of the rate, cycling through `GET /compute`, `POST /stats`,
//! `GET /vectors/{id}` and an append of one unique value to one of four
//! vectors. Afterwards every vector is read back: each acknowledged append
//! must be there exactly once.
//!
//! Writes `fleet.md` and `fleet.json`. Failures are counted and reported,
//! never asserted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use vecproc_harness::cmd::step;
use vecproc_harness::containerd::Containerd;
use vecproc_harness::process::Child;
use vecproc_harness::redis::Redis;
use vecproc_harness::{free_port, serve_command, temp_dir, Launch, Registry, Server};

/// Options of `vecproc-bench fleet`.
#[derive(clap::Args)]
pub struct Args {
    /// host-runner (pushes the image; serves when containerd cannot).
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("host-runner"))]
    host_runner: PathBuf,
    /// containerd-shim-host-runner-v1.
    #[arg(long, default_value_os_t = vecproc_harness::paths::sibling("containerd-shim-host-runner-v1"))]
    shim: PathBuf,
    /// The stateful service.
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-store-service.wasm"))]
    component: PathBuf,
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Requests per second, all clients together.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Three host-runner processes even where containerd can start.
    #[arg(long)]
    processes: bool,
    /// Where `fleet.md` and `fleet.json` go.
    #[arg(long, default_value_os_t = vecproc_harness::paths::bench_dir())]
    out: PathBuf,
}

const NODES: usize = 3;
const CLIENTS: usize = 8;
const VECTORS: usize = 4;

/// How the nodes run.
enum Runtime {
    Containerd(Box<Containers>),
    Processes,
}

/// containerd with the service's image pulled from the registry.
struct Containers {
    containerd: Containerd,
    image: String,
    _registry: Registry,
}

/// One node: fixed ports, so HAProxy's configuration holds across restarts.
struct Node {
    port: u16,
    admin: u16,
    server: Option<Server>,
    id: String,
    generation: u32,
}

struct Fleet {
    runtime: Runtime,
    host_runner: PathBuf,
    component: PathBuf,
    redis_url: String,
    nodes: Vec<Node>,
    haproxy_socket: PathBuf,
    started: Instant,
    events: Vec<(f64, String)>,
}

impl Fleet {
    fn event(&mut self, what: String) {
        let t = self.started.elapsed().as_secs_f64();
        eprintln!("    [{t:6.2}s] {what}");
        self.events.push((t, what));
    }

    fn start_node(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.generation += 1;
        node.id = format!("node{i}-{}", node.generation);
        let addr = format!("127.0.0.1:{}", node.port);
        let admin = format!("127.0.0.1:{}", node.admin);
        let launch = match &self.runtime {
            Runtime::Containerd(c) => Launch::new(c.containerd.run_command(
                &c.image,
                &node.id,
                &[
                    ("HOST_RUNNER_ADDR", &addr),
                    ("HOST_RUNNER_ADMIN_ADDR", &admin),
                    ("HOST_RUNNER_WASI", "keyvalue"),
                    ("HOST_RUNNER_KEYVALUE_REDIS", &self.redis_url),
                    ("HOST_RUNNER_DRAIN_TIMEOUT", "20s"),
                ],
                &[],
                &[],
            )),
            Runtime::Processes => Launch::new(serve_command(
                &self.host_runner,
                &self.component,
                &[
                    &format!("--addr={addr}"),
                    &format!("--admin-addr={admin}"),
                    "-Skeyvalue",
                    &format!("--keyvalue-redis={}", self.redis_url),
                    "--drain-timeout=20s",
                ],
            )),
        };
        let server = launch
            .discard_output()
            .timeout(Duration::from_secs(60))
            .start()
            .with_context(|| format!("starting node {i}"))?;
        let took = server.listening();
        node.server = Some(server);
        let id = node.id.clone();
        self.event(format!(
            "{id} serving {:.0} ms after its start",
            took.as_secs_f64() * 1000.0
        ));
        self.wait_status(i, "UP")?;
        self.event(format!("{id} UP in HAProxy"));
        Ok(())
    }

    /// SIGTERM (`ctr task kill`, or `kill`) or SIGKILL; waits for the exit.
    fn stop_node(&mut self, i: usize, kill: bool) -> Result<()> {
        let signal = if kill { "SIGKILL" } else { "SIGTERM" };
        let id = self.nodes[i].id.clone();
        let mut server = self.nodes[i].server.take().context("node not running")?;
        let sent = Instant::now();
        match &self.runtime {
            Runtime::Containerd(c) => {
                c.containerd
                    .ctr_output(&["tasks", "kill", "-s", signal, &id])?;
            }
            Runtime::Processes => {
                Command::new("kill")
                    .arg(format!("-{}", if kill { "KILL" } else { "TERM" }))
                    .arg(server.pid().to_string())
                    .status()?;
            }
        }
        self.event(format!("{signal} to {id}"));
        let code = server.wait_exit(Duration::from_secs(60));
        self.event(format!(
            "{id} exited ({}) {:.2} s after {signal}",
            code.map_or("by a signal".into(), |c| format!("status {c}")),
            sent.elapsed().as_secs_f64()
        ));
        drop(server);
        Ok(())
    }

    /// Waits until HAProxy reports node `i` as `status` (`UP`, `DOWN`).
    fn wait_status(&self, i: usize, status: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if haproxy_status(&self.haproxy_socket, &format!("n{i}"))?.starts_with(status) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("HAProxy never reported n{i} {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `show stat` over HAProxy's admin socket: node `server`'s status column.
fn haproxy_status(socket: &Path, server: &str) -> Result<String> {
    let mut stream = UnixStream::connect(socket).context("HAProxy's stats socket")?;
    stream.write_all(b"show stat\n")?;
    let mut csv = String::new();
    stream.read_to_string(&mut csv)?;
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = header
        .iter()
        .position(|h| *h == "status")
        .context("no status column")?;
    Ok(csv
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&server))
        .and_then(|f| f.get(col).map(|s| s.to_string()))
        .unwrap_or_default())
}

fn haproxy_config(dir: &Path, front: u16, nodes: &[Node]) -> String {
    let mut cfg = format!(
        "global\n  maxconn 4096\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout check 1s\n\
         \x20 retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n  option http-server-close\n\
         frontend api\n  bind 127.0.0.1:{front}\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n  option httpchk GET /healthz\n  http-check expect status 200\n\
         \x20 default-server inter 250ms fastinter 100ms downinter 250ms fall 1 rise 2\n",
        dir.join("haproxy.sock").display()
    );
    for (i, n) in nodes.iter().enumerate() {
        let _ = writeln!(
            cfg,
            "  server n{i} 127.0.0.1:{} check port {}",
            n.port, n.admin
        );
    }
    cfg
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Compute,
    Stats,
    Metadata,
    Append,
}

impl Kind {
    fn idempotent(self) -> bool {
        matches!(self, Kind::Compute | Kind::Metadata)
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Compute => "GET /compute",
            Kind::Stats => "POST /stats",
            Kind::Metadata => "GET /vectors/{id}",
            Kind::Append => "POST /vectors/{id}/values",
        }
    }
}

/// One request's fate: when it started (s since the load began), how long
/// it took, its status (0: no answer).
#[derive(Clone, Copy)]
struct Outcome {
    kind: Kind,
    at: f64,
    ms: f64,
    status: u16,
}

fn client(
    w: usize,
    base: String,
    vectors: Arc<Vec<String>>,
    interval: Duration,
    stop: Arc<AtomicBool>,
    load_start: Instant,
    acked: Arc<Mutex<Vec<(usize, f64)>>>,
) -> Vec<Outcome> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut outcomes = Vec::new();
    let mut next = Instant::now() + interval.mul_f64(w as f64 / CLIENTS as f64);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        if Instant::now() > next + interval * 10 {
            next = Instant::now(); // far behind: no burst to catch up
        }
        let kind = [Kind::Compute, Kind::Stats, Kind::Metadata, Kind::Append][seq as usize % 4];
        let vector = (w + seq as usize) % VECTORS;
        // A value no other append carries: client, sequence.
        let value = (w as f64) * 1e7 + seq as f64;
        seq += 1;
        let started = Instant::now();
        let result = match kind {
            Kind::Compute => agent.get(&format!("{base}/compute?n=20000")).call(),
            Kind::Stats => agent
                .post(&format!("{base}/stats"))
                .set("content-type", "application/json")
                .send_string("[4, 1, 3, 2, 5]"),
            Kind::Metadata => agent.get(&format!("{base}{}", vectors[vector])).call(),
            Kind::Append => agent
                .post(&format!("{base}{}/values", vectors[vector]))
                .set("content-type", "application/json")
                .send_string(&format!("[{value}]")),
        };
        let status = match result {
            Ok(r) => {
                let s = r.status();
                let _ = r.into_string();
                s
            }
            Err(ureq::Error::Status(s, r)) => {
                let _ = r.into_string();
                s
            }
            Err(_) => 0,
        };
        if kind == Kind::Append && status == 200 {
            acked.lock().unwrap().push((vector, value));
        }
        outcomes.push(Outcome {
            kind,
            at: started.duration_since(load_start).as_secs_f64(),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            status,
        });
    }
    outcomes
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Every value stored in the vector at `path`, page by page.
fn stored_values(base: &str, path: &str) -> Result<Vec<f64>> {
    let mut values = Vec::new();
    let mut next = Some(format!("{path}/values?limit=10000"));
    while let Some(page) = next {
        let body: serde_json::Value = ureq::get(&format!("{base}{page}"))
            .call()
            .with_context(|| format!("GET {page}"))?
            .into_json()?;
        values.extend(
            body["values"]
                .as_array()
                .context("values")?
                .iter()
                .filter_map(|v| v.as_f64()),
        );
        next = body["next"].as_str().map(str::to_string);
    }
    Ok(values)
}

/// Runs the fleet and writes the report.
pub fn run(args: Args) -> Result<()> {
    fs::create_dir_all(&args.out)?;
    let dir = temp_dir("fleet");
    let redis = Redis::start(&dir.join("redis")).context("starting Redis")?;
    let runtime = if args.processes {
        Runtime::Processes
    } else {
        match Containerd::try_start(&args.shim) {
            Ok(containerd) => {
                let registry = Registry::try_start(None).context("starting docker-registry")?;
                step(&format!(
                    "pushing the service's image to {} and pulling it into containerd",
                    registry.addr
                ));
                let image = registry.push_image(
                    &args.host_runner,
                    &args.component,
                    "vecproc/vector-store-service-image:fleet",
                )?;
                containerd.ctr_output(&["images", "pull", "--plain-http", &image])?;
                Runtime::Containerd(Box::new(Containers {
                    containerd,
                    image,
                    _registry: registry,
                }))
            }
            Err(e) => {
                eprintln!(
                    "    containerd cannot start here ({e}): three host-runner processes instead"
                );
                Runtime::Processes
            }
        }
    };
    let runtime_name = match &runtime {
        Runtime::Containerd(_) => {
            "containerd 1.6 with containerd-shim-host-runner-v1 (ctr run --net-host)"
        }
        Runtime::Processes => "host-runner processes",
    };
    let nodes: Vec<Node> = (0..NODES)
        .map(|_| Node {
            port: free_port(),
            admin: free_port(),
            server: None,
            id: String::new(),
            generation: 0,
        })
        .collect();
    let front = free_port();
    fs::write(dir.join("haproxy.cfg"), haproxy_config(&dir, front, &nodes))?;
    let mut fleet = Fleet {
        runtime,
        host_runner: args.host_runner.clone(),
        component: args.component.clone(),
        redis_url: redis.url(),
        nodes,
        haproxy_socket: dir.join("haproxy.sock"),
        started: Instant::now(),
        events: Vec::new(),
    };
    let mut haproxy = HaProxy::start(&dir)?;
    for i in 0..NODES {
        fleet.start_node(i)?;
    }
    let base = format!("http://127.0.0.1:{front}");
    let vectors: Vec<String> = (0..VECTORS)
        .map(|_| -> Result<String> {
            let r = ureq::post(&format!("{base}/vectors")).call()?;
            r.header("location")
                .map(str::to_string)
                .context("no Location")
        })
        .collect::<Result<_>>()?;
    let vectors = Arc::new(vectors);

    step(&format!(
        "fleet: {} s at {} requests/s through HAProxy 127.0.0.1:{front}, {NODES} nodes ({runtime_name})",
        args.seconds, args.rate
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load_start = Instant::now();
    // Times are from the start of the load; the nodes' first starts are
    // before it.
    let setup = load_start.duration_since(fleet.started).as_secs_f64();
    for (t, _) in &mut fleet.events {
        *t -= setup;
    }
    fleet.started = load_start;
    fleet.event("load begins".into());
    let interval = Duration::from_secs_f64(CLIENTS as f64 / args.rate as f64);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let (base, vectors, stop, acked) = (
                base.clone(),
                Arc::clone(&vectors),
                Arc::clone(&stop),
                Arc::clone(&acked),
            );
            std::thread::spawn(move || client(w, base, vectors, interval, stop, load_start, acked))
        })
        .collect();
    let total = Duration::from_secs(args.seconds);
    let sleep_until = |t: f64| {
        let at = load_start + Duration::from_secs_f64(t);
        if let Some(d) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    };
    let scale = args.seconds as f64 / 60.0;
    sleep_until(5.0 * scale);
    fleet.event("rolling restart begins".into());
    let rolling_start = load_start.elapsed().as_secs_f64();
    for i in 0..NODES {
        fleet.stop_node(i, false)?;
        fleet.start_node(i)?;
    }
    let rolling_end = load_start.elapsed().as_secs_f64();
    fleet.event("rolling restart done".into());
    sleep_until(rolling_end + 5.0 * scale);
    let kill_start = load_start.elapsed().as_secs_f64();
    fleet.stop_node(1, true)?;
    fleet.wait_status(1, "DOWN")?;
    fleet.event("n1 DOWN in HAProxy".into());
    fleet.start_node(1)?;
    let kill_end = load_start.elapsed().as_secs_f64();
    if load_start.elapsed() < total {
        std::thread::sleep(total - load_start.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<Outcome> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    fleet.event("load ends".into());

    // Every acknowledged append, exactly once.
    let acked = acked.lock().unwrap().clone();
    let mut stored: HashMap<u64, usize> = HashMap::new();
    for path in vectors.iter() {
        for v in stored_values(&base, path)? {
            *stored.entry(v.to_bits()).or_default() += 1;
        }
    }
    let lost = acked
        .iter()
        .filter(|(_, v)| !stored.contains_key(&v.to_bits()))
        .count();
    let duplicated = stored.values().filter(|&&n| n > 1).count();
    let appends_sent = outcomes.iter().filter(|o| o.kind == Kind::Append).count();
    let appends_applied_unacked = stored.len().saturating_sub(acked.len() - lost);

    haproxy.stop();
    for i in 0..NODES {
        if fleet.nodes[i].server.is_some() {
            fleet.stop_node(i, false)?;
        }
    }
    drop(redis);

    let phases = [
        ("whole run", 0.0, f64::MAX),
        ("steady (before the restart)", 0.0, rolling_start),
        ("rolling restart", rolling_start, rolling_end),
        ("kill -9 and restart of n1", kill_start, kill_end),
    ];
    let md = write_report(
        &args,
        runtime_name,
        &outcomes,
        &phases,
        &Appends {
            sent: appends_sent,
            acked: acked.len(),
            lost,
            duplicated,
            applied_unacked: appends_applied_unacked,
        },
        &fleet.events,
    )?;
    println!("{md}");
    eprintln!("    wrote {}", args.out.join("fleet.md").display());
    drop(fleet);
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

/// What became of the appends: sent, acknowledged, and after the run
/// acknowledged but missing, stored twice, applied without an answer.
struct Appends {
    sent: usize,
    acked: usize,
    lost: usize,
    duplicated: usize,
    applied_unacked: usize,
}

/// A status as the report shows it (0: no answer within the timeout).
fn status_label(status: u16) -> String {
    if status == 0 {
        "no answer".into()
    } else {
        status.to_string()
    }
}

/// One phase's table row and JSON: its requests, failures and latencies.
fn phase_summary(name: &str, inside: &[&Outcome]) -> (String, serde_json::Value) {
    let is_ok = |o: &&&Outcome| (200..300).contains(&o.status);
    let ok = inside.iter().filter(is_ok).count();
    let failed = inside.len() - ok;
    let failed_idem = inside
        .iter()
        .filter(|o| o.kind.idempotent() && !is_ok(o))
        .count();
    let mut ms: Vec<f64> = inside.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    let mut by_status: HashMap<String, usize> = HashMap::new();
    for o in inside {
        *by_status
            .entry(format!("{} {}", o.kind.name(), status_label(o.status)))
            .or_default() += 1;
    }
    let row = format!(
        "| {name} | {} | {ok} | {failed} | {failed_idem} | {p50:.1} | {p99:.1} |",
        inside.len()
    );
    let json = json!({"phase": name, "requests": inside.len(), "ok": ok, "failed": failed,
        "failed_idempotent": failed_idem, "p50_ms": p50, "p99_ms": p99, "by_status": by_status});
    (row, json)
}

/// Writes `fleet.md` and `fleet.json` to `args.out`; returns the Markdown.
fn write_report(
    args: &Args,
    runtime_name: &str,
    outcomes: &[Outcome],
    phases: &[(&str, f64, f64)],
    appends: &Appends,
    events: &[(f64, String)],
) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Fleet: rolling restart and kill -9 behind HAProxy\n\n\
         `cargo xtask fleet` ({} s at {} requests/s, {CLIENTS} clients on keep-alive connections to HAProxy 2.6; \
         nodes: {runtime_name}, the stateful service on one Redis 7.0). Requests cycle through \
         `GET /compute?n=20000`, `POST /stats`, `GET /vectors/{{id}}` and a one-value append to one of \
         {VECTORS} vectors. A failure is any answer other than 2xx, or no answer within 10 s.\n",
        args.seconds, args.rate
    );
    let _ = writeln!(md, "| phase | requests | 2xx | failed | failed idempotent | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|");
    let mut phase_json = Vec::new();
    for &(name, from, to) in phases {
        let inside: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.at >= from && o.at < to)
            .collect();
        let (row, json) = phase_summary(name, &inside);
        let _ = writeln!(md, "{row}");
        phase_json.push(json);
    }
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !(200..300).contains(&o.status))
        .map(|o| {
            format!(
                "{:.2} s {} → {}",
                o.at,
                o.kind.name(),
                status_label(o.status)
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "\nStateful: {} appends sent, {} acknowledged; afterwards **{} acknowledged appends missing**, \
         {} values stored twice, {} applied without an acknowledgement (their \
         clients saw a failure).\n",
        appends.sent, appends.acked, appends.lost, appends.duplicated, appends.applied_unacked
    );
    let _ = writeln!(md, "Failed requests ({}):\n", failures.len());
    if failures.is_empty() {
        let _ = writeln!(md, "- none");
    }
    for f in failures.iter().take(50) {
        let _ = writeln!(md, "- {f}");
    }
    let _ = writeln!(md, "\nTimeline:\n");
    for (t, what) in events {
        let _ = writeln!(md, "- {t:7.2} s: {what}");
    }
    fs::write(args.out.join("fleet.md"), &md)?;
    fs::write(
        args.out.join("fleet.json"),
        serde_json::to_vec_pretty(&json!({
            "seconds": args.seconds, "rate": args.rate, "runtime": runtime_name,
            "phases": phase_json, "appends_sent": appends.sent, "acknowledged": appends.acked,
            "lost": appends.lost, "duplicated": appends.duplicated, "failures": failures,
            "events": events.iter().map(|(t, w)| json!({"t": t, "event": w})).collect::<Vec<_>>(),
        }))?,
    )?;
    Ok(md)
}

/// Debian's HAProxy in the foreground (`-db`), on the config in `dir`.
struct HaProxy {
    child: Child,
}

impl HaProxy {
    fn start(dir: &Path) -> Result<HaProxy> {
        let bin = "/usr/sbin/haproxy";
        if !Path::new(bin).exists() {
            bail!("{bin} is missing: `apt-get install haproxy` (cargo xtask fleet does)");
        }
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("haproxy.log"))?)
            .spawn()
            .context("starting haproxy")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("haproxy.sock").exists() {
            if Instant::now() > deadline {
                bail!(
                    "haproxy did not open its stats socket: {}",
                    fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(HaProxy {
            child: Child::new(child),
        })
    }

    fn stop(&mut self) {
        self.child.kill();
    }
}
