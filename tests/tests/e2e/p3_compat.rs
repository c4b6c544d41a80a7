//! WASI 0.3 (`wasi:http/service`) under both servers, with the p3 fixture
//! (`tests/fixtures/misbehaving-p3`): traps, timeouts, memory caps, concurrent
//! requests on one reused instance and the reuse limits must be answered
//! the same by `wasmtime serve` and host-runner; then what host-runner adds
//! (metrics, the memory budget, drain) working for p3 too.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vecproc_tests::{artifact, get, Reply, Server, WASMTIME_500_PAGE};

use crate::compat::servers;

fn fixture() -> std::path::PathBuf {
    artifact("fixtures/misbehaving-p3.wasm")
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn assert_500_page(name: &str, reply: &Reply) {
    assert_eq!(reply.status, 500, "{name}");
    assert_eq!(text(reply), WASMTIME_500_PAGE, "{name}");
}

/// The `/counter` answers of `n` requests in sequence.
fn counts(server: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| text(&get(&server.url("/counter"))).trim().to_string())
        .collect()
}

/// `n` concurrent `/hold?ms=MS` requests sent after one warm-up request
/// (so an idle instance is ready); each answer's `(count, max_concurrent)`.
fn holds(server: &Server, n: usize, ms: u64) -> Vec<(u64, u64)> {
    assert_eq!(get(&server.url("/ok")).status, 200);
    let url = server.url(&format!("/hold?ms={ms}"));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || get(&url))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| {
            let reply = t.join().unwrap();
            assert_eq!(reply.status, 200, "{}", text(&reply));
            let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            (
                v["count"].as_u64().unwrap(),
                v["max_concurrent"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_trap_is_the_500_page_logged_once_and_the_next_request_is_served() {
    for (name, server) in servers(&fixture(), &[]) {
        assert_500_page(name, &get(&server.url("/trap")));
        assert!(
            server.wait_for_output(
                "wasm `unreachable` instruction executed",
                Duration::from_secs(5)
            ),
            "{name}: {}",
            server.stderr()
        );
        assert_eq!(
            server.stderr().matches("worker failed:").count(),
            1,
            "{name}"
        );
        // The 500's own line comes after the worker's, from another task.
        assert!(
            server.wait_for_output("error: worker trapped or panicked", Duration::from_secs(5)),
            "{name}: {}",
            server.stderr()
        );
        // The trap retired the instance: the next one starts from 1.
        assert_eq!(counts(&server, 1), ["1"], "{name}");
    }
}

#[test]
fn a_loop_is_stopped_by_the_timeout() {
    for (name, server) in servers(&fixture(), &["-Wtimeout=1s"]) {
        let started = Instant::now();
        assert_500_page(name, &get(&server.url("/loop")));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{name}: {took:?}");
        assert!(
            server.wait_for_output("worker failed: guest timed out", Duration::from_secs(5)),
            "{name}: {}",
            server.stderr()
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn unbounded_growth_is_stopped_by_the_memory_cap() {
    for (name, server) in servers(&fixture(), &["-Wmax-memory-size=33554432"]) {
        assert_500_page(name, &get(&server.url("/alloc")));
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn concurrent_requests_share_one_reused_instance() {
    for (name, server) in servers(&fixture(), &[]) {
        let answers = holds(&server, 4, 500);
        // The warm instance takes requests while it has room (16 at once).
        // Which of the four it gets depends on timing (the pool starts a
        // new instance for a request that arrives while no worker is
        // free), but requests do run on one instance at the same time.
        let most = answers.iter().map(|&(_, max)| max).max().unwrap();
        assert!(most >= 2, "{name}: {answers:?}");
        let reused = answers.iter().filter(|&&(count, _)| count >= 2).count();
        assert!(reused >= 2, "{name}: {answers:?}");
    }
}

#[test]
fn the_concurrent_reuse_limit_spreads_requests_over_instances() {
    for (name, server) in servers(&fixture(), &["--max-instance-concurrent-reuse-count=1"]) {
        let answers = holds(&server, 4, 300);
        assert!(
            answers.iter().all(|&(_, max)| max == 1),
            "{name}: {answers:?}"
        );
    }
}

#[test]
fn reuse_counts_and_idle_timeout_match() {
    // p3's default: up to 128 requests on one instance.
    for (name, server) in servers(&fixture(), &[]) {
        assert_eq!(counts(&server, 5), ["1", "2", "3", "4", "5"], "{name}");
    }
    for (name, server) in servers(&fixture(), &["--max-instance-reuse-count=3"]) {
        assert_eq!(counts(&server, 5), ["1", "2", "3", "1", "2"], "{name}");
    }
    for (name, server) in servers(&fixture(), &["--max-instance-reuse-count=1"]) {
        assert_eq!(counts(&server, 3), ["1", "1", "1"], "{name}");
    }
    for (name, server) in servers(&fixture(), &["--idle-instance-timeout=200ms"]) {
        assert_eq!(counts(&server, 2), ["1", "2"], "{name}");
        thread::sleep(Duration::from_millis(700));
        assert_eq!(
            counts(&server, 1),
            ["1"],
            "{name}: the idle instance was kept"
        );
    }
}

/// WASI 0.3's `wasi:cli` (environment included) is linked for p3 guests
/// with or without `-S cli`, by `wasmtime serve` and host-runner alike, so
/// `--env` reaches a p3 guest without it; host-runner does not warn that it
/// has no effect (it does for p2, whose proxy world has no environment).
/// Registry secrets are never part of it (`registry.rs`).
#[test]
fn p3_guests_see_env_without_dash_s_cli_under_both_servers() {
    let flags = ["--env", "GREETING=hello from the host"];
    for (name, server) in servers(&fixture(), &flags) {
        let reply = get(&server.url("/env?name=GREETING"));
        assert_eq!(reply.status, 200, "{name}: {}", text(&reply));
        assert_eq!(text(&reply), "hello from the host", "{name}");
        let id = get(&server.url("/env?name=INSTANCE_ID"));
        assert_eq!(id.status, 200, "{name}: INSTANCE_ID");
        assert!(text(&id).parse::<u64>().is_ok(), "{name}: {}", text(&id));
        assert_eq!(get(&server.url("/env?name=NOT_SET")).status, 404, "{name}");
        assert!(
            !server.stderr().contains("has no effect without -S cli"),
            "{name}: {}",
            server.stderr()
        );
    }
}

#[test]
fn p3_can_be_turned_off_by_name() {
    let out = Command::new(vecproc_tests::host_runner_bin())
        .args(["serve", "--addr=127.0.0.1:0", "-Sp3=n"])
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exports wasi:http/handler@0.3.x (WASI 0.3), which -S p3=n turns off"),
        "{err}"
    );
}

#[test]
fn host_runner_counts_p3_traps_and_timeouts_in_metrics() {
    let server = Server::host_runner(
        &fixture(),
        &["--admin-addr=127.0.0.1:0", "-Wtimeout=1s", "--access-log"],
    );
    assert_eq!(get(&server.url("/ok")).status, 200);
    assert_eq!(get(&server.url("/trap")).status, 500);
    assert_eq!(get(&server.url("/loop")).status, 500);
    let metrics =
        String::from_utf8(get(&format!("http://{}/metrics", server.admin_authority())).body)
            .unwrap();
    for needle in [
        "host_runner_requests_total{status=\"200\"} 1",
        "host_runner_requests_total{status=\"500\"} 2",
        "host_runner_guest_traps_total 2",
        "host_runner_guest_timeouts_total 1",
        "host_runner_instantiation_duration_seconds_count",
        "host_runner_requests_in_flight 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in\n{metrics}");
    }
    // Each line is written before its response is sent, but stderr is read
    // by another thread, behind the traps' long backtraces: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches("host_runner::access").count() < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.stderr().matches("host_runner::access").count(),
        3,
        "{}",
        server.stderr()
    );
}

#[test]
fn host_runner_budget_bounds_a_p3_instance() {
    // 8 MiB for every instance together: the hoarding guest fails its
    // growth there, long before the 512 MiB per-memory cap.
    // The failure is the host's lack of room, so it is the 503 that p2
    // answers too, not the guest-fault 500 page.
    let server = Server::host_runner(&fixture(), &["--memory-budget=8388608"]);
    let reply = get(&server.url("/alloc"));
    assert_eq!(reply.status, 503, "{}", text(&reply));
    assert!(
        text(&reply).contains("memory budget is spent"),
        "{}",
        text(&reply)
    );
    assert!(server.wait_for_output("memory budget: refused", Duration::from_secs(5)));
    assert_eq!(get(&server.url("/ok")).status, 200);
}

#[test]
fn host_runner_drains_p3_requests_on_sigterm() {
    let mut server = Server::host_runner(&fixture(), &[]);
    let url = server.url("/hold?ms=800");
    let in_flight = thread::spawn(move || get(&url));
    thread::sleep(Duration::from_millis(300));
    assert!(server.terminate().unwrap().success());
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}
