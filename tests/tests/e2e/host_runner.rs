//! What host-runner does beyond `wasmtime serve`: startup errors before any
//! bind, admission control with a bounded queue, the admin endpoints,
//! graceful drain on SIGTERM or `--shutdown-addr`, header-read timeouts,
//! the body limit, and what a request holds (its queue place, slot, memory
//! reservation and `in_flight`) for exactly as long as its guest runs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vecproc_tests::{artifact, get, host_runner_bin, Server};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(host_runner_bin()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("Serving HTTP on"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn startup_errors_are_one_line_and_non_zero() {
    let (code, err) = run(&["serve", "--bogus", "x.wasm"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");

    let (code, err) = run(&["serve", "--addr=127.0.0.1:0", "/no/such/file.wasm"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error: failed to open wasm module \"/no/such/file.wasm\": No such file or directory (os error 2)"
    );

    let processor = artifact("vector-processor.wasm");
    let (code, err) = run(&["serve", "--addr=127.0.0.1:0", processor.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not target wasi:http/proxy"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, err) = run(&["serve", "-Wmax-memory-size=64MiB", "x.wasm"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(
            "Error: failed to parse -W option `max-memory-size=64MiB`: invalid digit found in string"
        ),
        "{err}"
    );
    let (code, err) = run(&["serve", "-Snn", "x.wasm"]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "Error: -S / --wasi option `nn` is not supported by host-runner"
        )
    );

    // `wasmtime serve`'s wording for a malformed -H, exit 1.
    let (code, err) = run(&["serve", "-H", "nocolon", "x.wasm"]);
    assert_eq!(
        (code, err.trim()),
        (1, "Error: header `nocolon` is missing `:`")
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("--addr={}", taken.local_addr().unwrap());
    let service = artifact("vector-service.wasm");
    let (code, err) = run(&["serve", &addr, service.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("failed to bind") && err.contains("Address already in use (os error 98)"),
        "{err}"
    );
}

/// The first line of stderr and the exit code of `bin serve ARG COMPONENT`,
/// for an argument that must stop startup (the child is killed after 20 s).
fn startup_error(bin: &std::path::Path, arg: &str) -> (i32, String) {
    let service = artifact("vector-service.wasm");
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--addr=127.0.0.1:0",
            arg,
            service.to_str().unwrap(),
        ])
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{} serve {arg} did not stop", bin.display());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let first = stderr.lines().next().unwrap_or_default().to_string();
    (out.status.code().unwrap_or(-1), first)
}

/// `-W/-S/-O` go through `wasmtime-cli-flags`, the parser `wasmtime serve`
/// uses, so a malformed option gets the same message from both servers
/// (`wasmtime serve` prints clap's `error:` and exits 2 for a parse error;
/// host-runner prints `Error:` and exits 1 for every startup error).
#[test]
fn option_errors_match_wasmtime_serve_word_for_word() {
    let wasmtime = vecproc_tests::wasmtime_bin();
    for arg in [
        "-Wbogus",
        "-Wmax-memory-size=64MiB",
        "-Wtimeout=1m",
        "-Wfuel=-1",
        "-Sinherit-env=maybe",
        "-Sbogus",
        "-Opooling-pagemap-scan=sometimes",
        "-Opooling-total-memories=0x1_0000_0000",
        "-Obogus",
        "-Shttp=n",
        "-Wcomponent-model=n",
        "-Scommon,cli",
    ] {
        let (code, theirs) = startup_error(&wasmtime, arg);
        assert_ne!(code, 0, "{arg}: {theirs}");
        let (code, ours) = startup_error(&host_runner_bin(), arg);
        assert_eq!(code, 1, "{arg}: {ours}");
        let strip = |s: &str| {
            s.strip_prefix("error: ")
                .or(s.strip_prefix("Error: "))
                .unwrap_or(s)
                .to_string()
        };
        assert_eq!(strip(&ours), strip(&theirs), "{arg}");
    }
}

#[test]
fn excess_requests_queue_briefly_then_get_503_with_retry_after() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &[
            "--max-concurrent-requests=1",
            "--max-queued-requests=1",
            "--queue-timeout=2s",
        ],
    );
    let slow = {
        let url = server.url("/sleep?ms=3500");
        thread::spawn(move || get(&url).status)
    };
    thread::sleep(Duration::from_millis(200));
    let queued = {
        let url = server.url("/ok");
        thread::spawn(move || {
            let start = Instant::now();
            let r = vecproc_tests::request("GET", &url, &[], None);
            (r.status, start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(100));
    // The queue's one place is taken: this one is refused at once, while
    // the queued one is still waiting out its queue timeout.
    let refused = get(&server.url("/ok"));
    assert_eq!(refused.status, 503);
    assert!(
        !queued.is_finished(),
        "the refusal came after the queued request's timeout"
    );
    let (status, waited) = queued.join().unwrap();
    assert_eq!(status, 503);
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert_eq!(slow.join().unwrap(), 200);
    // Capacity is back.
    assert_eq!(get(&server.url("/ok")).status, 200);
}

#[test]
fn retry_after_is_sent_with_503() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--max-concurrent-requests=1", "--max-queued-requests=0"],
    );
    let url = server.url("/sleep?ms=800");
    let slow = thread::spawn(move || get(&url).status);
    thread::sleep(Duration::from_millis(200));
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    write!(
        stream,
        "GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn admin_endpoints_report_metrics_and_health() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--admin-addr=127.0.0.1:0", "-Wtimeout=1s"],
    );
    let admin = server.admin_authority();
    assert_eq!(get(&server.url("/ok")).status, 200);
    assert_eq!(get(&server.url("/trap")).status, 500);
    assert_eq!(get(&server.url("/loop")).status, 500);
    assert_eq!(get(&format!("http://{admin}/healthz")).status, 200);
    let metrics = String::from_utf8(get(&format!("http://{admin}/metrics")).body).unwrap();
    for needle in [
        "host_runner_requests_total{status=\"200\"} 1",
        "host_runner_requests_total{status=\"500\"} 2",
        "host_runner_guest_timeouts_total 1",
        "host_runner_request_duration_seconds_count 3",
        "host_runner_instantiation_duration_seconds_count",
        "host_runner_requests_in_flight 0",
        "host_runner_requests_rejected_total 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in\n{metrics}");
    }
    assert!(
        metrics.contains("host_runner_guest_traps_total 2"),
        "{metrics}"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let mut server = Server::host_runner(&artifact("fixtures/misbehaving.wasm"), &[]);
    let url = server.url("/sleep?ms=1000");
    let in_flight = thread::spawn(move || get(&url));
    thread::sleep(Duration::from_millis(300));
    assert!(server.terminate().unwrap().success());
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(String::from_utf8_lossy(&reply.body), "slept\n");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    // The listening socket is closed: new connections are refused.
    assert!(TcpStream::connect(server.authority()).is_err());
}

/// A guest whose client left before the head runs on as a task of its own;
/// a drain waits for it (its line is printed before the process exits 0).
#[test]
fn the_drain_waits_for_guests_whose_clients_left() {
    let mut server = Server::host_runner(&artifact("fixtures/misbehaving.wasm"), &[]);
    let client = send_only(&server, "/sleep-print?ms=1500");
    thread::sleep(Duration::from_millis(300));
    drop(client);
    thread::sleep(Duration::from_millis(200));
    assert!(server.terminate().unwrap().success());
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    // The reader threads may still hold the last lines for a moment.
    assert!(
        server.wait_for_output("woke after 1500 ms", Duration::from_secs(2)),
        "the drain did not wait for the guest: {}",
        server.stdout()
    );
}

/// `--shutdown-addr` as `wasmtime serve` has it: its line is the first on
/// stderr (before the serving line, and before host-runner's own `grants:`
/// lines, which `--env` causes here: a wrapper that reads the first line,
/// as Wasmtime's own test harness does, finds it), and any connection to it
/// starts the same drain as SIGTERM.
#[test]
fn a_connection_to_the_shutdown_address_drains_and_exits_zero() {
    let mut server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--shutdown-addr=127.0.0.1:0", "-Scli", "--env=GREETING=hi"],
    );
    assert!(
        server.wait_for_output("grants:", Duration::from_secs(5)),
        "no grants line to order: {}",
        server.stderr()
    );
    let stderr = server.stderr();
    let first = stderr.lines().next().unwrap_or_default().to_string();
    let shutdown = first
        .strip_prefix("Listening for shutdown on tcp://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no shutdown line first: {stderr}"))
        .to_string();
    let url = server.url("/sleep?ms=800");
    let in_flight = thread::spawn(move || get(&url));
    thread::sleep(Duration::from_millis(300));
    drop(TcpStream::connect(&shutdown).unwrap());
    let reply = in_flight.join().unwrap();
    assert_eq!(
        (reply.status, String::from_utf8_lossy(&reply.body).as_ref()),
        (200, "slept\n")
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn slow_headers_are_cut_off() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--header-read-timeout=1s"],
    );
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "connection held for {took:?}"
    );
    // An idle keep-alive connection is closed by the same timeout.
    let mut idle = TcpStream::connect(server.authority()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "idle connection held for {:?}",
        start.elapsed()
    );
}

#[test]
fn declared_oversize_bodies_get_413_from_the_host() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--max-request-body-size=1000"],
    );
    let r = vecproc_tests::request("POST", &server.url("/ok"), &[], Some(&[b'x'; 2000]));
    assert_eq!(r.status, 413);
    assert_eq!(
        vecproc_tests::request("POST", &server.url("/ok"), &[], Some(&[b'x'; 500])).status,
        200
    );
}

/// One chunked upload of `mib` MiB of JSON to `/stats`; the status line's code.
fn upload(authority: &str, mib: usize) -> u16 {
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(
            b"POST /stats HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n",
        )?;
        let chunk = b"1.5,".repeat(1 << 18);
        for _ in 0..mib {
            write!(writer, "{:x}\r\n", chunk.len())?;
            writer.write_all(&chunk)?;
            writer.write_all(b"\r\n")?;
        }
        writer.write_all(b"0\r\n\r\n")
    });
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// Eight concurrent 72 MiB chunked uploads (each guest buffers up to its
/// 64 MiB limit): without a budget the process peaked near 1 GiB; with
/// `--memory-budget 256 MiB` the peak stays near the budget, the uploads
/// that do not fit fail their growth (logged) and get 503 with
/// `Retry-After`, memory comes back, and the next request is served.
///
/// Memory here is anonymous memory (`RssAnon`), sampled every 2 ms: guest
/// memory and host buffers, what the budget bounds. The server runs
/// without `RUST_BACKTRACE`, as in production: under `RUST_BACKTRACE=1`
/// (as CI's environment sets it) each trap's log line carries a host
/// backtrace, and symbolizing it maps some 80 MiB of this debug build's
/// debug info and keeps about 70 MiB of parsed DWARF on the heap, which
/// once took the whole RSS past the bound while the guests stayed inside it.
#[test]
fn the_memory_budget_bounds_concurrent_uploads() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let budget_mib = 256;
    let mut cmd = std::process::Command::new(vecproc_tests::host_runner_bin());
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .arg(format!("--memory-budget={}", budget_mib << 20))
        .arg(artifact("vector-service.wasm"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let server = Server::start(cmd);
    assert_eq!(get(&server.url("/health")).status, 200);
    let baseline = server.status_kib("RssAnon:");
    let (peak, done) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let pid = server.pid();
    let sampler = thread::spawn({
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        move || {
            while !done.load(Ordering::Acquire) {
                let anon = vecproc_tests::status_kib(pid, "RssAnon:");
                peak.fetch_max(anon, Ordering::AcqRel);
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let authority = server.authority().to_string();
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let authority = authority.clone();
            thread::spawn(move || upload(&authority, 72))
        })
        .collect();
    let statuses: Vec<u16> = uploads.into_iter().map(|u| u.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    sampler.join().unwrap();
    // A guest whose growth the budget refused is the host's lack of room,
    // not the guest's fault: 503 (retry later), never the 500 page.
    assert!(
        statuses.iter().all(|s| [413, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the budget was never reached: {statuses:?}"
    );
    assert!(server.wait_for_output("memory budget: refused", Duration::from_secs(5)));
    let peak = peak.load(Ordering::Acquire);
    // Without the budget this peaked near 1 GiB; the guests' share is
    // 256 MiB, the host's own heap and buffers take the rest.
    assert!(
        peak < (budget_mib + 64) << 10,
        "peak anonymous memory {peak} KiB for a {budget_mib} MiB budget"
    );
    assert!(
        peak > (budget_mib / 2) << 10,
        "the sampler saw only {peak} KiB: the uploads never filled the budget"
    );
    assert_eq!(get(&server.url("/health")).status, 200);
    // What stays: up to 2 MiB kept resident per warm pool slot (eight
    // were in use at once) and the allocator's arenas.
    let after = server.status_kib("RssAnon:");
    assert!(
        after < baseline + (8 * 2 + 24) * 1024,
        "anonymous memory {after} KiB after, {baseline} KiB before"
    )
}

/// `--log-format json`: every host-runner log line on stderr is one JSON
/// object: the access log (with its fields), a guest failure (the line
/// `wasmtime serve` would print, as the message), the drain; no line
/// carries a colour code. The serving line stays plain text for the
/// harnesses, and the guest's own output passes through as it is.
#[test]
fn json_logs_are_one_object_per_line() {
    let mut server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &["--log-format=json", "--access-log"],
    );
    assert_eq!(get(&server.url("/ok")).status, 200);
    assert_eq!(get(&server.url("/trap")).status, 500);
    assert!(server.wait_for_output("\"status\":500", Duration::from_secs(5)));
    assert!(server.terminate().unwrap().success());
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let stderr = server.stderr();
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let (mut access, mut failures, mut drain) = (0, 0, 0);
    for line in stderr.lines().filter(|l| {
        !l.starts_with("Serving HTTP on ")
            && !l.starts_with("stderr [")
            && !l.starts_with("stdout [")
    }) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}\n{stderr}"));
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{line}"
        );
        let message = event["fields"]["message"].as_str().unwrap_or_default();
        match event["target"].as_str() {
            Some("host_runner::access") => {
                access += 1;
                assert_eq!(event["fields"]["method"], "GET", "{line}");
            }
            Some("host_runner::failure") => {
                failures += 1;
                assert_eq!(event["level"], "ERROR", "{line}");
            }
            _ if message.starts_with("drain") => drain += 1,
            _ => {}
        }
    }
    assert_eq!(access, 2, "{stderr}");
    assert!(failures >= 1, "no failure event for the trap: {stderr}");
    assert!(
        stderr.contains("wasm trap") && stderr.contains("worker failed"),
        "the trap's JSON event lost wasmtime serve's words: {stderr}"
    );
    assert_eq!(drain, 2, "draining, then drained: {stderr}");
}

/// The value of an unlabelled metric on the admin address.
fn metric(admin: &str, name: &str) -> i64 {
    let text = String::from_utf8(get(&format!("http://{admin}/metrics")).body).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {name} in\n{text}")) as i64
}

/// Reads `name` until it equals `want` or 10 s pass; returns the last value.
fn settle(admin: &str, name: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = metric(admin, name);
        if value == want || Instant::now() > deadline {
            return value;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Opens a connection and sends `GET path`, reading nothing.
fn send_only(server: &Server, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    stream
}

/// Clients that give up while queued are taken off the queue: their places
/// are free for the next ones, which wait for the slot and are served
/// (before, the count never came down and every later request that found
/// the slot busy got 503 at once, until a restart).
#[test]
fn clients_that_give_up_while_queued_leave_the_queue_usable() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &[
            "--max-concurrent-requests=1",
            "--max-queued-requests=2",
            "--queue-timeout=30s",
            "--admin-addr=127.0.0.1:0",
        ],
    );
    let admin = server.admin_authority();
    let url = server.url("/sleep?ms=2500");
    let slow = thread::spawn(move || get(&url).status);
    assert_eq!(settle(&admin, "host_runner_requests_in_flight", 1), 1);
    let leavers = [send_only(&server, "/ok"), send_only(&server, "/ok")];
    assert_eq!(settle(&admin, "host_runner_requests_queued", 2), 2);
    drop(leavers);
    assert_eq!(
        settle(&admin, "host_runner_requests_queued", 0),
        0,
        "clients that left are still counted in the queue"
    );
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url("/ok");
            thread::spawn(move || get(&url).status)
        })
        .collect();
    assert_eq!(slow.join().unwrap(), 200);
    for w in waiting {
        assert_eq!(w.join().unwrap(), 200);
    }
    assert_eq!(settle(&admin, "host_runner_requests_in_flight", 0), 0);
    assert_eq!(metric(&admin, "host_runner_requests_rejected_total"), 0);
}

/// A client that sends a request and never reads the answer: its guest
/// keeps its slot, memory and `in_flight` while it runs (not only until
/// the response head), and is stopped at `--request-timeout` although the
/// client stays connected; then everything it held comes back.
#[test]
fn a_client_that_never_reads_holds_its_request_until_the_guest_is_stopped() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &[
            "--request-timeout=3s",
            "--memory-budget=1073741824",
            "--admin-addr=127.0.0.1:0",
        ],
    );
    let admin = server.admin_authority();
    // 64 MiB of body: far more than the socket buffers take.
    let client = send_only(&server, "/stream?kib=65536");
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        metric(&admin, "host_runner_requests_in_flight"),
        1,
        "the guest is still writing, but its request is no longer counted"
    );
    assert!(
        metric(&admin, "host_runner_memory_budget_used_bytes") >= 64 << 20,
        "the guest's 64 MiB body is not on the budget"
    );
    assert!(
        server.wait_for_output("guest timed out", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    assert_eq!(settle(&admin, "host_runner_requests_in_flight", 0), 0);
    assert_eq!(
        settle(&admin, "host_runner_memory_budget_used_bytes", 0),
        0,
        "the stopped guest's memory did not come back to the budget"
    );
    assert_eq!(metric(&admin, "host_runner_guest_timeouts_total"), 1);
    assert!(!server.stdout().contains("stream ended"));
    drop(client);
    assert_eq!(get(&server.url("/ok")).status, 200);
}

/// With `--max-instance-reuse-count`, instances left idle give their
/// memory back to the budget after `--idle-instance-timeout` (they are
/// retired by `wasmtime-wasi-http`'s worker pool), so a burst cannot leave
/// the budget spent by instances nobody uses.
#[test]
fn idle_reused_instances_give_their_memory_back() {
    let server = Server::host_runner(
        &artifact("fixtures/misbehaving.wasm"),
        &[
            "--max-instance-reuse-count=100",
            "--idle-instance-timeout=2s",
            "--memory-budget=268435456",
            "--admin-addr=127.0.0.1:0",
        ],
    );
    let admin = server.admin_authority();
    let burst: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url("/sleep?ms=500");
            thread::spawn(move || get(&url).status)
        })
        .collect();
    for b in burst {
        assert_eq!(b.join().unwrap(), 200);
    }
    assert_eq!(metric(&admin, "host_runner_requests_in_flight"), 0);
    // Three idle instances, each holding its memory until it is retired.
    let idle = metric(&admin, "host_runner_memory_budget_used_bytes");
    assert!(idle > 0, "no idle instance holds memory: nothing is tested");
    assert_eq!(
        settle(&admin, "host_runner_memory_budget_used_bytes", 0),
        0,
        "idle instances kept {idle} bytes of the budget"
    );
    assert_eq!(get(&server.url("/counter")).body, b"1\n");
}

/// host-runner serving `component` with its admin endpoints, under
/// `RUST_BACKTRACE=1` as many CI environments and shells run it.
fn with_backtraces(component: &str) -> Server {
    let mut cmd = Command::new(host_runner_bin());
    cmd.args(["serve", "--addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0"])
        .arg(artifact(component))
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE");
    Server::start(cmd)
}

/// Opens `n` connections that each send `head` (and `body`) and wait.
fn hold(server: &Server, n: usize, head: &str, body: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(server.authority()).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
            s
        })
        .collect()
}

/// Resident memory after a burst comes back to within 30 MiB of the
/// baseline once idle. 40 clients that leave mid-body: under
/// `RUST_BACKTRACE=1` each error on their way used to capture a host
/// backtrace whose symbolization loaded the binary's debug information and
/// kept it (a release build went from 24 to 283 MiB, for good). Then 40
/// guests that dirty 8 MiB each: what their pool slots keep resident is
/// bounded per slot (`pooling-memory-keep-resident`, 256 KiB by default).
#[test]
fn resident_memory_comes_back_after_bursts() {
    let settle_rss = |server: &Server, baseline: u64, what: &str| {
        let admin = server.admin_authority();
        assert_eq!(settle(&admin, "host_runner_requests_in_flight", 0), 0);
        thread::sleep(Duration::from_millis(500));
        let after = server.status_kib("VmRSS:");
        assert!(
            after < baseline + 30 * 1024,
            "{what}: {after} KiB resident once idle, {baseline} KiB before"
        );
    };

    // A warmed server, its baseline, and 40 connections that each sent
    // `head` and `body` and now wait, all 40 in flight.
    let burst = |component: &str, warm: &str, head: &str, body: &[u8]| {
        let server = with_backtraces(component);
        assert_eq!(get(&server.url(warm)).status, 200);
        let baseline = server.status_kib("VmRSS:");
        let admin = server.admin_authority();
        let clients = hold(&server, 40, head, body);
        assert_eq!(settle(&admin, "host_runner_requests_in_flight", 40), 40);
        (server, admin, baseline, clients)
    };

    let (service, _, baseline, clients) = burst(
        "vector-service.wasm",
        "/health",
        "POST /stats HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n",
        b"[1,",
    );
    drop(clients);
    settle_rss(&service, baseline, "40 clients gone mid-body");

    let (fixture, admin, baseline, readers) = burst(
        "fixtures/misbehaving.wasm",
        "/ok",
        "GET /stream?kib=8192 HTTP/1.1\r\nhost: x\r\n\r\n",
        b"",
    );
    assert!(
        metric(&admin, "host_runner_memory_budget_used_bytes") >= 40 * (8 << 20),
        "the guests did not take their 8 MiB each"
    );
    drop(readers);
    settle_rss(&fixture, baseline, "40 guests that dirtied 8 MiB each");
}

/// `-S inherit-env` passes the host's environment to guests, but never
/// host-runner's registry credentials (`HOST_RUNNER_REGISTRY_*`), nor the
/// `RUST_LIB_BACKTRACE` it sets for itself.
#[test]
fn inherit_env_keeps_registry_secrets_from_guests() {
    let mut cmd = Command::new(host_runner_bin());
    cmd.args(["serve", "--addr=127.0.0.1:0", "-Scli", "-Sinherit-env"])
        .arg(artifact("fixtures/cli-guest.wasm"))
        .env("HOST_RUNNER_REGISTRY_USERNAME", "robot")
        .env("HOST_RUNNER_REGISTRY_PASSWORD", "s3cret-never-shown")
        .env("VECPROC_VISIBLE", "yes")
        .env_remove("RUST_LIB_BACKTRACE");
    let server = Server::start(cmd);
    let reply = get(&server.url("/env"));
    assert_eq!(reply.status, 200);
    let env = String::from_utf8_lossy(&reply.body);
    assert!(env.contains("VECPROC_VISIBLE=yes"), "{env}");
    assert!(!env.contains("HOST_RUNNER_REGISTRY_"), "{env}");
    assert!(!env.contains("s3cret-never-shown"), "{env}");
    assert!(!env.contains("RUST_LIB_BACKTRACE"), "{env}");
}
