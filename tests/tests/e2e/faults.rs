//! Guest faults, one fixture route each, under both servers with the same
//! limits (`-Wtimeout=1s -Wmax-memory-size=64MiB`): a trap, a stack overflow
//! (unbounded recursion), an endless loop, unbounded memory growth,
//! unbounded table growth, a body
//! that never finishes, a body far larger than the client reads, and many
//! concurrent faulting requests. Each is stopped at its limit and answered
//! alike (the 500 page, or a started response cut off at the timeout), each
//! failure is logged once, host-runner counts it in `/metrics`, and the next
//! request succeeds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use vecproc_tests::{get, Server, WASMTIME_500_PAGE};

use crate::compat::{fixture, servers};

const LIMITS: [&str; 2] = ["-Wtimeout=1s", "-Wmax-memory-size=67108864"];

/// `worker failed: ...` lines: one per failed guest call, as `wasmtime serve` logs them.
fn failures_logged(server: &Server) -> usize {
    server
        .stderr()
        .lines()
        .filter(|l| l.starts_with("worker failed:"))
        .count()
}

/// host-runner's `/metrics` value of `name` (0 if absent).
fn metric(admin: &str, name: &str) -> u64 {
    let text = String::from_utf8_lossy(&get(&format!("http://{admin}/metrics")).body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// One fault on `server` (`label` names it in failures): `route` is
/// answered with `wasmtime serve`'s 500 page within 10 s, `message` is
/// logged, and the next request (`/ok`) succeeds. The containerd suite runs
/// the same check inside a container.
pub(crate) fn assert_fault_contained(server: &Server, label: &str, route: &str, message: &str) {
    let started = Instant::now();
    let reply = get(&server.url(route));
    assert_eq!(
        (reply.status, String::from_utf8_lossy(&reply.body).as_ref()),
        (500, WASMTIME_500_PAGE),
        "{label} {route}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{label} {route}"
    );
    assert!(
        server.wait_for_output(message, Duration::from_secs(5)),
        "{label} {route}: {}",
        server.stderr()
    );
    assert_eq!(get(&server.url("/ok")).status, 200, "{label} after {route}");
}

#[test]
fn each_guest_fault_is_stopped_logged_counted_and_the_next_request_succeeds() {
    for (route, message) in [
        ("/trap", "wasm trap"),
        // A Rust guest's frames live on its shadow stack in linear memory,
        // which runs out first: the overflow is a memory-access trap.
        ("/recurse", "wasm trap: out of bounds memory access"),
        ("/loop", "guest timed out"),
        ("/alloc", "worker failed"),
    ] {
        for (name, server) in servers(&fixture(), &LIMITS) {
            assert_fault_contained(&server, name, route, message);
        }
    }
}

/// A guest that grows a table in a loop (the fixture's `/table-grow`,
/// through the hand-written `table-grower.wat` it is composed with). The
/// pooling allocator caps tables at 20,000 elements; without it,
/// `-W max-table-elements` is the only cap `wasmtime serve` has (unbounded,
/// the loop reached 2^31 elements, 16 GiB, in 15 s), and host-runner has a
/// default of a million.
#[test]
fn unbounded_table_growth_is_stopped_at_the_table_limit() {
    let cases: [(&[&str], &str); 3] = [
        (&[], "table growth refused at 1 elements"),
        (
            &["-Opooling-allocator=n", "-Wmax-table-elements=200000"],
            "table growth refused at 196609 elements",
        ),
        (&["-Opooling-allocator=n"], ""),
    ];
    for (extra, message) in cases {
        let runners: Vec<(&str, Server)> = if message.is_empty() {
            // host-runner's default cap; wasmtime serve would run away.
            vec![("host-runner serve", Server::host_runner(&fixture(), extra))]
        } else {
            servers(&fixture(), extra)
        };
        for (name, server) in runners {
            let reply = get(&server.url("/table-grow"));
            assert_eq!(
                (reply.status, String::from_utf8_lossy(&reply.body).as_ref()),
                (500, WASMTIME_500_PAGE),
                "{name} {extra:?}"
            );
            let message = if message.is_empty() {
                "table growth refused at 983041 elements"
            } else {
                message
            };
            assert!(
                server.wait_for_output(message, Duration::from_secs(5)),
                "{name} {extra:?}: {}",
                server.stderr()
            );
            assert!(server.wait_for_output("worker failed:", Duration::from_secs(5)));
            assert_eq!(failures_logged(&server), 1, "{name} {extra:?}");
            assert_eq!(get(&server.url("/ok")).status, 200, "{name} {extra:?}");
        }
    }
}

#[test]
fn host_runner_counts_each_fault_once() {
    let mut flags = LIMITS.to_vec();
    flags.push("--admin-addr=127.0.0.1:0");
    let server = Server::host_runner(&fixture(), &flags);
    let admin = server.admin_authority();
    let traps = || metric(&admin, "host_runner_guest_traps_total");
    let timeouts = || metric(&admin, "host_runner_guest_timeouts_total");
    assert_eq!((traps(), timeouts()), (0, 0));
    for route in ["/trap", "/recurse", "/alloc"] {
        assert_eq!(get(&server.url(route)).status, 500, "{route}");
    }
    assert_eq!(get(&server.url("/loop")).status, 500);
    assert!(server.wait_for_output("guest timed out", Duration::from_secs(5)));
    assert_eq!(timeouts(), 1);
    assert_eq!(traps(), 4, "a timeout counts as a failed guest call too");
    // Logged once each: four failures, four lines.
    assert_eq!(failures_logged(&server), 4, "{}", server.stderr());
    assert_eq!(get(&server.url("/ok")).status, 200);
}

#[test]
fn a_body_that_never_finishes_is_cut_off_at_the_timeout_by_both() {
    for (name, server) in servers(&fixture(), &LIMITS) {
        let mut stream = TcpStream::connect(server.authority()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET /endless-body HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            server.authority()
        )
        .unwrap();
        let started = Instant::now();
        let mut total = 0usize;
        let mut head = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if head.len() < 64 {
                        head.extend_from_slice(&buf[..n.min(64)]);
                    }
                    total += n;
                }
            }
        }
        let took = started.elapsed();
        assert!(head.starts_with(b"HTTP/1.1 200"), "{name}");
        assert!(total > 4096, "{name}: only {total} bytes");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(10),
            "{name}: {took:?}"
        );
        assert!(
            server.wait_for_output("guest timed out", Duration::from_secs(5)),
            "{name}: {}",
            server.stderr()
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn a_client_that_reads_only_the_head_of_a_huge_body_does_not_hurt_the_server() {
    for (name, server) in servers(&fixture(), &LIMITS) {
        for _ in 0..5 {
            let mut stream = TcpStream::connect(server.authority()).unwrap();
            write!(
                stream,
                "GET /stream?kib=32768 HTTP/1.1\r\nhost: {}\r\n\r\n",
                server.authority()
            )
            .unwrap();
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "{name}");
            drop(stream);
        }
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn many_concurrent_faults_leave_the_server_serving() {
    for (name, server) in servers(&fixture(), &LIMITS) {
        let url = server.url("/recurse");
        let workers: Vec<_> = (0..20)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || get(&url).status)
            })
            .collect();
        for w in workers {
            assert_eq!(w.join().unwrap(), 500, "{name}");
        }
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}
