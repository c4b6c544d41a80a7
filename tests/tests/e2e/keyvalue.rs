//! The stateful service (`vector-store-service.wasm`: the API plus
//! `/vectors` over `wasi:keyvalue@0.2.0-draft2`) under host-runner's
//! `-S keyvalue`, on both backends: the embedded store (a redb file under
//! `--state-dir`) and Debian's Redis (started here on a free loopback port,
//! append-only). The article's flow with a million values, 16 concurrent
//! appenders on one vector (and on two nodes sharing one Redis) losing
//! nothing, `kill -9` during appends losing nothing acknowledged, a Redis
//! outage answered 503 and recovered without a restart, expiry, and the
//! startup errors. Wasmtime's own `wasi:keyvalue@0.2.0-draft` (the
//! `kv-draft` fixture) answers as under `wasmtime serve -S keyvalue`, and
//! `wasmtime serve` 48 cannot link draft2: its message is pinned here
//! (docs/stateful.md quotes it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vecproc_harness::redis::Redis;
use vecproc_harness::temp_dir;
use vecproc_tests::registry::run_for;
use vecproc_tests::{
    artifact, get, host_runner_bin, request, serve_command, to_le_bytes, values, wasmtime_bin,
    Reply, Server,
};

fn service() -> PathBuf {
    artifact("vector-store-service.wasm")
}

/// Where a test keeps its vectors.
enum Backend {
    Embedded(PathBuf),
    Redis(Redis),
}

impl Backend {
    fn embedded() -> Backend {
        Backend::Embedded(temp_dir("kv-state"))
    }

    fn redis() -> Backend {
        let dir = temp_dir("kv-redis");
        Backend::Redis(Redis::start(&dir).unwrap_or_else(|e| panic!("{e}")))
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Embedded(_) => "embedded",
            Backend::Redis(_) => "redis",
        }
    }

    fn flags(&self) -> Vec<String> {
        let mut flags = vec!["-Skeyvalue".to_string(), "--admin-addr=127.0.0.1:0".into()];
        match self {
            Backend::Embedded(dir) => {
                flags.push("--state-dir".into());
                flags.push(dir.display().to_string());
            }
            Backend::Redis(r) => {
                flags.push("--keyvalue-redis".into());
                flags.push(r.url());
            }
        }
        flags
    }

    fn serve(&self, extra: &[&str]) -> Server {
        let mut flags = self.flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::host_runner(&service(), &flags)
    }
}

fn both() -> [Backend; 2] {
    [Backend::embedded(), Backend::redis()]
}

fn binary(values: &[f64]) -> Vec<u8> {
    to_le_bytes(values)
}

fn post_values(server: &Server, location: &str, values: &[f64], etag: Option<&str>) -> Reply {
    let mut headers = vec![("content-type", "application/octet-stream")];
    if let Some(e) = etag {
        headers.push(("if-match", e));
    }
    request(
        "POST",
        &server.url(&format!("{location}/values")),
        &headers,
        Some(&binary(values)),
    )
}

fn create(server: &Server) -> String {
    let r = request("POST", &server.url("/vectors"), &[], None);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.header("location").expect("a Location").to_string()
}

/// Every value of a vector, read page by page (the `next` links carry the
/// version, so a change between pages would be a 412, not a torn read).
fn read_all(server: &Server, location: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut url = format!("{location}/values?limit=100000");
    loop {
        let r = get(&server.url(&url));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        out.extend(
            page["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => return out,
        }
    }
}

fn metric(server: &Server, needle: &str) -> f64 {
    let text = String::from_utf8(get(&format!("http://{}/metrics", server.admin_authority())).body)
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The article's workflow over HTTP: create, add a million values in
/// batches of 10,000, sort, mean, the first ten sorted values; equal to the
/// stateless `/stats` and `/sort` answers for the same values (the
/// statistics byte for byte).
#[test]
fn the_articles_flow_with_a_million_values_on_both_backends() {
    let all = values(1_000_000, 19);
    let stateless = Server::host_runner(&artifact("vector-service.wasm"), &[]);
    let octets = [("content-type", "application/octet-stream")];
    let expected_stats = request(
        "POST",
        &stateless.url("/stats"),
        &octets,
        Some(&binary(&all)),
    );
    assert_eq!(expected_stats.status, 200);
    let sorted = request(
        "POST",
        &stateless.url("/sort"),
        &octets,
        Some(&binary(&all)),
    )
    .json();
    let first_ten: Vec<f64> = sorted.as_array().unwrap()[..10]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for backend in both() {
        let server = backend.serve(&[]);
        let location = create(&server);
        let start = Instant::now();
        for (i, batch) in all.chunks(10_000).enumerate() {
            let r = post_values(&server, &location, batch, None);
            assert_eq!(
                r.status,
                200,
                "{}: batch {i}: {}",
                backend.name(),
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.json()["count"], (i + 1) * 10_000);
        }
        let appended = start.elapsed();
        let meta = get(&server.url(&location)).json();
        assert_eq!(meta["count"], 1_000_000);
        let stats = get(&server.url(&format!("{location}/stats")));
        assert_eq!(stats.status, 200);
        assert_eq!(
            stats.body,
            expected_stats.body,
            "{}: GET stats equals POST /stats byte for byte",
            backend.name()
        );
        let sort = request(
            "POST",
            &server.url(&format!("{location}/sort?order=asc")),
            &[],
            None,
        );
        assert_eq!(
            (sort.status, sort.json()["sorted"].as_str()),
            (200, Some("asc"))
        );
        let page = get(&server.url(&format!("{location}/values?limit=10"))).json();
        let got: Vec<f64> = page["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got, first_ten, "{}", backend.name());
        let mean = get(&server.url(&format!("{location}/stats"))).json()["mean"].clone();
        assert_eq!(mean, expected_stats.json()["mean"]);
        eprintln!(
            "{}: 100 appends of 10,000 values in {:.2} s",
            backend.name(),
            appended.as_secs_f64()
        );
    }
}

/// 16 clients append to one vector at once, half with `If-Match` (retrying
/// on 412 from a fresh read), half without (the service retries its CAS):
/// every batch lands exactly once and contiguously. On Redis, the clients
/// are split between two host-runner processes sharing it.
#[test]
fn sixteen_concurrent_appenders_lose_nothing_on_both_backends() {
    const CLIENTS: usize = 16;
    const BATCHES: usize = 20;
    const SIZE: usize = 50;
    for backend in both() {
        let servers: Vec<Server> = match backend {
            Backend::Embedded(_) => vec![backend.serve(&[])],
            Backend::Redis(_) => vec![backend.serve(&[]), backend.serve(&[])],
        };
        let servers = Arc::new(servers);
        let location = create(&servers[0]);
        let refused = Arc::new(Mutex::new(0usize));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let servers = Arc::clone(&servers);
                let location = location.clone();
                let refused = Arc::clone(&refused);
                thread::spawn(move || {
                    let server = &servers[c % servers.len()];
                    for b in 0..BATCHES {
                        let batch: Vec<f64> = (0..SIZE)
                            .map(|k| (c * 1_000_000 + b * 1_000 + k) as f64)
                            .collect();
                        if c % 2 == 0 {
                            for attempt in 0.. {
                                assert!(attempt < 2_000, "client {c}: 2,000 refusals in a row");
                                let etag = get(&server.url(&location))
                                    .header("etag")
                                    .unwrap()
                                    .to_string();
                                let r = post_values(server, &location, &batch, Some(&etag));
                                match r.status {
                                    200 => break,
                                    412 => *refused.lock().unwrap() += 1,
                                    s => panic!("{s}: {}", String::from_utf8_lossy(&r.body)),
                                }
                            }
                        } else {
                            let r = post_values(server, &location, &batch, None);
                            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let stored = read_all(&servers[0], &location);
        assert_eq!(stored.len(), CLIENTS * BATCHES * SIZE, "{}", backend.name());
        // Each batch exactly once, its values in order and together.
        let mut seen = BTreeMap::new();
        for run in stored.chunks(SIZE) {
            let first = run[0] as usize;
            let expected: Vec<f64> = (0..SIZE).map(|k| (first + k) as f64).collect();
            assert_eq!(run, expected.as_slice(), "{}: a torn batch", backend.name());
            assert!(
                seen.insert(first, ()).is_none(),
                "{}: batch {first} twice",
                backend.name()
            );
        }
        let conflicts: f64 = servers
            .iter()
            .map(|s| metric(s, "host_runner_keyvalue_cas_conflicts_total"))
            .sum();
        let refused = *refused.lock().unwrap();
        eprintln!(
            "{}: {} appends by {CLIENTS} clients on {} node(s): {conflicts} CAS conflicts, \
             {refused} If-Match refusals (412)",
            backend.name(),
            CLIENTS * BATCHES,
            servers.len()
        );
        assert!(
            conflicts > 0.0,
            "{}: 16 racing clients met no conflict",
            backend.name()
        );
    }
}

/// `kill -9` of host-runner while a client appends: after a restart on the
/// same store, every append that was answered 200 is there.
#[test]
fn appends_acknowledged_before_kill_9_survive_on_both_backends() {
    for backend in both() {
        let server = backend.serve(&[]);
        let location = create(&server);
        let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url(&format!("{location}/values"));
        let appender = {
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                for b in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let batch: Vec<f64> = (0..1000).map(|k| (b * 1000 + k) as f64).collect();
                    match agent
                        .post(&url)
                        .set("content-type", "application/octet-stream")
                        .send_bytes(&binary(&batch))
                    {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().push(b),
                        _ => break,
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < 30 {
            assert!(
                Instant::now() < deadline && !appender.is_finished(),
                "{}: 30 appends were not acknowledged ({} were): {}",
                backend.name(),
                acked.lock().unwrap().len(),
                server.stderr()
            );
            thread::sleep(Duration::from_millis(5));
        }
        let pid = server.pid();
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        stop.store(true, Ordering::Relaxed);
        appender.join().unwrap();
        drop(server);
        let restarted = backend.serve(&[]);
        let stored = read_all(&restarted, &location);
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() >= 30);
        // Batches are whole and in order; every acknowledged one is there,
        // and at most the one in flight at the kill besides.
        let batches: Vec<usize> = stored.chunks(1000).map(|c| c[0] as usize / 1000).collect();
        assert!(
            batches.len() == acked.len() || batches.len() == acked.len() + 1,
            "{}: {} acknowledged, {} stored",
            backend.name(),
            acked.len(),
            batches.len()
        );
        assert_eq!(
            &batches[..acked.len()],
            acked.as_slice(),
            "{}",
            backend.name()
        );
        eprintln!(
            "{}: {} appends acknowledged before kill -9, {} stored after restart",
            backend.name(),
            acked.len(),
            batches.len()
        );
    }
}

/// Redis stops mid-run: appends are answered 503 `store_unavailable` with
/// `Retry-After` within a few seconds, never hang; once Redis is back (same
/// port, its append-only file), appends succeed again on the same
/// host-runner and nothing acknowledged is lost.
#[test]
fn a_redis_outage_is_503_then_recovers_without_a_restart() {
    let dir = temp_dir("kv-outage");
    let mut redis = Redis::start(&dir).unwrap_or_else(|e| panic!("{e}"));
    let port = redis.port;
    let server = Server::host_runner(
        &service(),
        &[
            "-Skeyvalue",
            "--admin-addr=127.0.0.1:0",
            "--keyvalue-redis",
            &redis.url(),
        ],
    );
    let location = create(&server);
    assert_eq!(
        post_values(&server, &location, &[1.0, 2.0], None).status,
        200
    );
    redis.kill();
    for _ in 0..3 {
        let start = Instant::now();
        let r = post_values(&server, &location, &[3.0], None);
        let took = start.elapsed();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (503, "store_unavailable")
        );
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(took < Duration::from_secs(10), "503 after {took:?}");
    }
    assert_eq!(get(&server.url(&location)).status, 503);
    let _redis = Redis::start_in(&dir, port).unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last;
    loop {
        last = post_values(&server, &location, &[3.0], None);
        if last.status == 200 || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last.status, 200, "{}", String::from_utf8_lossy(&last.body));
    assert_eq!(read_all(&server, &location), [1.0, 2.0, 3.0]);
    assert!(metric(&server, "host_runner_keyvalue_operations_total{backend=\"redis\",operation=\"cas\",outcome=\"unavailable\"") > 0.0
        || metric(&server, "host_runner_keyvalue_operations_total{backend=\"redis\",operation=\"get\",outcome=\"unavailable\"") > 0.0);
}

/// Ids are random and unguessable, vectors expire after their `ttl`, and
/// the host's settings fail clearly: an unknown bucket is a 503, a second
/// process on one state directory and a password on the command line are
/// refused at startup, and a server without `-S keyvalue` names the flag.
#[test]
fn ids_expiry_and_startup_errors() {
    let backend = Backend::embedded();
    let server = backend.serve(&[]);
    let a = create(&server);
    let b = create(&server);
    assert_ne!(a, b);
    for l in [&a, &b] {
        let id = l.strip_prefix("/vectors/").unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    let r = request(
        "PUT",
        &server.url("/vectors/short-lived?ttl=1"),
        &[("if-none-match", "*")],
        None,
    );
    assert_eq!(r.status, 201);
    assert_eq!(get(&server.url("/vectors/short-lived")).status, 200);
    thread::sleep(Duration::from_millis(1200));
    let r = get(&server.url("/vectors/short-lived"));
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = request(
        "POST",
        &server.url(&format!("{a}/values")),
        &[("content-type", "application/json")],
        Some(b"[1, \"x\"]"),
    );
    assert_eq!(r.status, 400);
    let too_many = vec![0u8; 8 * 1_000_001];
    let r = request(
        "POST",
        &server.url(&format!("{a}/values")),
        &[("content-type", "application/octet-stream")],
        Some(&too_many),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "vector_too_large")
    );

    // The embedded store is one process's.
    let Backend::Embedded(dir) = &backend else {
        unreachable!()
    };
    let out = run_for(
        serve_command(
            &host_runner_bin(),
            &service(),
            &["-Skeyvalue", "--state-dir", &dir.display().to_string()],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&dir.join("keyvalue.redb").display().to_string())
            && out.stderr.contains("another host-runner process"),
        "{}",
        out.stderr
    );
    drop(server);

    // A bucket the guest does not open: its requests are 503s.
    let other = Server::host_runner(
        &service(),
        &[
            "-Skeyvalue",
            "--state-dir",
            &temp_dir("kv-bucket").display().to_string(),
            "--keyvalue-bucket",
            "other",
        ],
    );
    let r = request("POST", &other.url("/vectors"), &[], None);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "store_unavailable")
    );
    assert_eq!(
        get(&other.url("/health")).status,
        200,
        "the stateless routes still answer"
    );

    let out = run_for(
        serve_command(
            &host_runner_bin(),
            &service(),
            &[
                "-Skeyvalue",
                "--keyvalue-redis",
                "redis://:hunter2@127.0.0.1:1",
            ],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("--keyvalue-redis-url-file"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    let out = run_for(
        serve_command(&host_runner_bin(), &service(), &[]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("wasi:keyvalue/") && out.stderr.contains("-S keyvalue"),
        "{}",
        out.stderr
    );
}

/// Vectors that expire and are never asked for again are reclaimed by the
/// sweep that later creates run: on Redis, whose keys the test lists while
/// host-runner runs, their chunks are gone and their headers tombstones.
#[test]
fn expired_vectors_nobody_asks_for_are_swept() {
    let backend = Backend::redis();
    let server = backend.serve(&[]);
    let Backend::Redis(redis) = &backend else {
        unreachable!()
    };
    let octets = [("content-type", "application/octet-stream")];
    let mut ids = Vec::new();
    for seed in 0..3 {
        let r = request(
            "POST",
            &server.url("/vectors?ttl=1"),
            &octets,
            Some(&binary(&values(20_000, seed))),
        );
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let chunks_of = |id: &str| {
        redis
            .keys(&format!("host-runner:default:vec:{id}:*"))
            .unwrap()
            .len()
    };
    assert!(
        ids.iter().all(|id| chunks_of(id) == 3),
        "20,000 values are 3 chunks"
    );
    thread::sleep(Duration::from_millis(1200));
    let keep = create(&server);
    for _ in 0..4 {
        create(&server);
    }
    for id in &ids {
        assert_eq!(
            chunks_of(id),
            0,
            "{id}: chunks left after expiry and sweeps"
        );
        let header = redis
            .keys(&format!("host-runner:default:vec:{id}"))
            .unwrap();
        assert_eq!(header.len(), 1, "the tombstone stays");
    }
    assert_eq!(
        get(&server.url(&keep)).status,
        200,
        "live vectors are untouched"
    );
}

/// Wasmtime's own interface, `wasi:keyvalue@0.2.0-draft` (the `kv-draft`
/// fixture), under both servers with the same flags: the same answers,
/// byte for byte. Each request sees a fresh copy of the
/// `-S keyvalue-in-memory-data` seed (so a write never outlives its
/// request), `increment`, `get-many` and `list-keys` work, and a bucket
/// other than `""` is `no-such-store`.
#[test]
fn wasmtimes_draft_answers_as_under_wasmtime_serve() {
    let fixture = artifact("fixtures/kv-draft.wasm");
    let seed = [
        "-Skeyvalue",
        "-Skeyvalue-in-memory-data=hits=41",
        "-Skeyvalue-in-memory-data=other=x",
    ];
    let state = temp_dir("kv-draft").display().to_string();
    let mut ours: Vec<&str> = seed.to_vec();
    ours.extend(["--state-dir", &state]);
    let servers = [
        ("wasmtime serve", Server::wasmtime(&fixture, &seed)),
        ("host-runner", Server::host_runner(&fixture, &ours)),
    ];
    let mut answers = Vec::new();
    for (name, server) in &servers {
        let got: Vec<(u16, String)> = [
            "/bump?key=hits",
            "/bump?key=hits",
            "/bump?key=new",
            "/open?bucket=",
            "/open?bucket=default",
        ]
        .iter()
        .map(|p| {
            let r = get(&server.url(p));
            (r.status, String::from_utf8_lossy(&r.body).into_owned())
        })
        .collect();
        eprintln!("{name}: {got:?}");
        answers.push(got);
    }
    let hits = "before=41\nafter=42\nincremented=52\nmany=1\nkeys=hits,other\n".to_string();
    assert_eq!(
        answers[0],
        [
            (200, hits.clone()),
            (200, hits),
            (
                200,
                "before=none\nafter=1\nincremented=11\nmany=1\nkeys=hits,new,other\n".into()
            ),
            (200, "ok\n".into()),
            (200, "no-such-store\n".into()),
        ],
        "wasmtime serve"
    );
    assert_eq!(
        answers[1], answers[0],
        "host-runner answers as wasmtime serve"
    );
}

/// `wasmtime serve` 48 has no draft2 (its `-S keyvalue` is the draft): the
/// stateful service fails to link, with this message, which
/// docs/stateful.md quotes.
#[test]
fn wasmtime_serve_cannot_link_draft2() {
    let out = run_for(
        serve_command(&wasmtime_bin(), &service(), &["-Skeyvalue"]),
        Duration::from_secs(60),
    );
    assert_ne!(out.code, 0);
    let first = out.stderr.lines().next().unwrap_or_default();
    eprintln!("wasmtime serve: {first}");
    assert!(
        out.stderr.contains("wasi:keyvalue/store@0.2.0-draft2"),
        "{}",
        out.stderr
    );
}
