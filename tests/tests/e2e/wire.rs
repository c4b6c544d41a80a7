//! The compatibility checklist's wire-level cases, sent over raw TCP to the
//! real `wasmtime serve` and to host-runner on the misbehaving fixture:
//! pipelining, malformed and oversized requests, HTTP/1.0 without a Host,
//! response framing headers (`content-length: 0` for a body never opened,
//! trailers only on `te: trailers`), h2c (no answer to the prior-knowledge
//! preface, an upgrade request served over HTTP/1.1), a timeout after the
//! response has started, a client leaving before the head or mid-body, the connection limit and
//! a full instance pool.
//! Each case compares both servers' answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use vecproc_tests::{get, Server};

fn servers(extra: &[&str]) -> Vec<(&'static str, Server)> {
    crate::compat::servers(&crate::compat::fixture(), extra)
}

/// Opens a connection, sends `raw` and checks that the answer starts with a
/// 200 status line; the connection stays open for the caller.
fn open_with_200(name: &str, server: &Server, raw: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    stream.write_all(raw).unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{name}");
    stream
}

/// Sends `raw` on a fresh connection and reads until the server closes it
/// (or 10 s pass).
pub(crate) fn exchange(server: &Server, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status lines of every response in `reply`, in order (a body that
/// ends without a newline runs straight into the next status line).
pub(crate) fn status_lines(reply: &str) -> Vec<&str> {
    reply
        .match_indices("HTTP/1.")
        .map(|(i, _)| &reply[i..i + reply[i..].find("\r\n").unwrap_or(0)])
        .collect()
}

/// A reply without its `date` header (the only part that differs by time).
fn without_date(reply: &str) -> String {
    reply
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let raw = b"GET /echo?n=1 HTTP/1.1\r\nhost: a\r\n\r\n\
                GET /counter HTTP/1.1\r\nhost: a\r\n\r\n\
                GET /echo?n=3 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let mut replies = Vec::new();
    for (name, server) in servers(&[]) {
        let reply = exchange(&server, raw);
        assert_eq!(
            status_lines(&reply),
            ["HTTP/1.1 200 OK"; 3],
            "{name}: {reply}"
        );
        let first = reply.find("path=Some(\"/echo?n=1\")").expect("first");
        let second = reply.find("\r\n\r\n1\n").expect("second");
        let third = reply.find("path=Some(\"/echo?n=3\")").expect("third");
        assert!(first < second && second < third, "{name}: {reply}");
        replies.push(without_date(&reply));
    }
    assert_eq!(replies[0], replies[1]);
}

#[test]
fn malformed_and_oversized_requests_get_the_same_status() {
    let many_headers = format!(
        "GET /ok HTTP/1.1\r\nhost: a\r\n{}\r\n",
        (0..120)
            .map(|i| format!("x-h{i}: 1\r\n"))
            .collect::<String>()
    );
    // (A header of about 400 KiB is refused too, but whether 500 KiB is
    // depends on how the bytes arrive: `wasmtime serve` answered 200 in one
    // run of three, so the size limit is not part of this check.)
    let cases: [(&str, &[u8], &str); 2] = [
        (
            "garbage request line",
            b"NOT HTTP AT ALL\r\n\r\n",
            "HTTP/1.1 400",
        ),
        ("120 headers", many_headers.as_bytes(), "HTTP/1.1 431"),
    ];
    for (name, server) in servers(&[]) {
        for (case, raw, status) in cases {
            let reply = exchange(&server, raw);
            assert!(reply.starts_with(status), "{name}, {case}: {reply:.200}");
        }
        // The server is still there.
        let ok = exchange(
            &server,
            b"GET /ok HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{name}");
    }
}

#[test]
fn http_1_0_without_host_is_a_500_with_the_reason_logged() {
    for (name, server) in servers(&[]) {
        let reply = exchange(&server, b"GET /ok HTTP/1.0\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.0 500"), "{name}: {reply:.200}");
        assert!(
            server.wait_for_output(
                "missing authority in URI and host header",
                Duration::from_secs(5)
            ),
            "{name}: {}",
            server.stderr()
        );
    }
}

#[test]
fn responses_carry_date_and_no_server_header() {
    for (name, server) in servers(&[]) {
        let reply = exchange(
            &server,
            b"GET /ok HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        );
        let head = reply.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        assert!(head.contains("\r\ndate: "), "{name}: {head}");
        assert!(!head.contains("\r\nserver:"), "{name}: {head}");
        assert!(head.contains("\r\ncontent-length: 3"), "{name}: {head}");
    }
}

/// A guest that has answered and then spins is stopped by the timeout; the
/// client keeps the status and the bytes already written, in a chunked body
/// that both servers end the same way.
#[test]
fn a_timeout_after_the_response_started_truncates_the_body() {
    let mut replies = Vec::new();
    for (name, server) in servers(&["-Wtimeout=1s"]) {
        let reply = exchange(
            &server,
            b"GET /loop-after-set HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{name}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{name}: {reply}"
        );
        assert!(reply.contains("partial "), "{name}: {reply}");
        assert!(
            server.wait_for_output("guest timed out", Duration::from_secs(5)),
            "{name}"
        );
        replies.push(without_date(&reply));
    }
    assert_eq!(replies[0], replies[1]);
}

/// A client that leaves in the middle of a large body: the guest still runs
/// to its end (its writes fail), and the server keeps serving.
#[test]
fn a_client_leaving_mid_body_lets_the_guest_finish() {
    for (name, server) in servers(&[]) {
        let client = open_with_200(
            name,
            &server,
            b"GET /stream?kib=65536 HTTP/1.1\r\nhost: x\r\n\r\n",
        );
        drop(client);
        assert!(
            server.wait_for_output("stream ended", Duration::from_secs(20)),
            "{name}: the guest did not run to its end"
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

/// A client that leaves before the response head: the guest is not dropped
/// mid-run but finishes (its line on stdout), as under `wasmtime serve`.
#[test]
fn a_client_leaving_before_the_head_lets_the_guest_finish() {
    for (name, server) in servers(&[]) {
        let mut client = TcpStream::connect(server.authority()).unwrap();
        client
            .write_all(b"GET /sleep-print?ms=700 HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(client);
        assert!(
            server.wait_for_output("woke after 700 ms", Duration::from_secs(10)),
            "{name}: the guest was dropped before its end: {}",
            server.stdout()
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

/// `--max-concurrent-connections`: while the limit is reached, a new
/// connection waits in the kernel's queue, unserved, until one closes.
#[test]
fn connections_beyond_the_limit_wait_for_a_free_one() {
    for (name, server) in servers(&["--max-concurrent-connections=1"]) {
        let first = open_with_200(name, &server, b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut buf = [0u8; 16];

        let mut second = TcpStream::connect(server.authority()).unwrap();
        second
            .write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        second
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        assert!(
            second.read(&mut buf).is_err(),
            "{name}: a second connection was served while the first was open"
        );
        drop(first);
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reply = Vec::new();
        second.read_to_end(&mut reply).unwrap();
        assert!(reply.starts_with(b"HTTP/1.1 200"), "{name}");
    }
}

/// Sends `raw` on a fresh connection and reads for at most `wait`: the
/// bytes that came back and whether the server closed the connection.
fn exchange_within(server: &Server, raw: &[u8], wait: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(server.authority()).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(raw).unwrap();
    let mut reply = Vec::new();
    let closed = stream.read_to_end(&mut reply).is_ok();
    (String::from_utf8_lossy(&reply).into_owned(), closed)
}

#[test]
fn a_response_whose_body_is_never_opened_has_content_length_zero() {
    let raw = b"GET /no-body HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let mut replies = Vec::new();
    for (name, server) in servers(&[]) {
        let reply = exchange(&server, raw);
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("\r\ncontent-length: 0\r\n"),
            "{name}: {reply}"
        );
        replies.push(without_date(&reply));
    }
    assert_eq!(replies[0], replies[1]);
}

#[test]
fn trailers_reach_the_client_only_when_it_asks_for_them() {
    for asks in [true, false] {
        let raw = format!(
            "GET /trailers HTTP/1.1\r\nhost: a\r\n{}connection: close\r\n\r\n",
            if asks { "te: trailers\r\n" } else { "" }
        );
        let mut replies = Vec::new();
        for (name, server) in servers(&[]) {
            let reply = exchange(&server, raw.as_bytes());
            let lower = reply.to_ascii_lowercase();
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {reply}");
            assert!(
                lower.contains("\r\ntransfer-encoding: chunked\r\n"),
                "{name}: {reply}"
            );
            assert!(
                reply.contains("\r\n\r\n5\r\nbody\n\r\n0\r\n"),
                "{name}: {reply}"
            );
            assert_eq!(
                lower.contains("\r\nx-checksum: abc\r\n"),
                asks,
                "{name}, te: trailers {asks}: {reply}"
            );
            replies.push(without_date(&reply));
        }
        assert_eq!(replies[0], replies[1], "te: trailers {asks}");
    }
}

#[test]
fn h2c_prior_knowledge_gets_no_answer_and_an_upgrade_request_is_served_over_http_1_1() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let upgrade = b"GET /ok HTTP/1.1\r\nhost: a\r\nconnection: upgrade, http2-settings, close\r\n\
                    upgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let mut answers = Vec::new();
    for (name, server) in servers(&[]) {
        let (reply, closed) = exchange_within(&server, preface, Duration::from_secs(3));
        assert!(
            !reply.contains("HTTP/2") && !reply.contains(" 200 "),
            "{name}: {reply}"
        );
        let served = exchange(&server, upgrade);
        assert!(
            served.starts_with("HTTP/1.1 200 OK\r\n"),
            "{name}: {served}"
        );
        assert!(served.ends_with("\r\n\r\nok\n"), "{name}: {served}");
        answers.push((reply, closed, without_date(&served)));
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn a_full_instance_pool_answers_a_concurrent_request_500_at_once() {
    for (name, server) in servers(&["-Opooling-total-component-instances=1"]) {
        // A sleeping request holds the only instance; a second one is then
        // refused at once. Under load the second may arrive first (then the
        // sleeper is the one refused): try again, a bounded number of times.
        let mut refused_after = None;
        for _attempt in 0..5 {
            let url = server.url("/sleep?ms=1500");
            let sleeper = std::thread::spawn(move || get(&url));
            std::thread::sleep(Duration::from_millis(300));
            let started = std::time::Instant::now();
            let reply = get(&server.url("/ok"));
            let took = started.elapsed();
            let slept = sleeper.join().unwrap();
            if reply.status == 500 {
                assert_eq!(
                    (
                        slept.status,
                        String::from_utf8_lossy(&slept.body).into_owned()
                    ),
                    (200, "slept\n".to_string()),
                    "{name}"
                );
                refused_after = Some(took);
                break;
            }
            assert_eq!(reply.status, 200, "{name}");
            wait_for_a_free_slot(name, &server);
        }
        let took = refused_after.unwrap_or_else(|| panic!("{name}: never refused"));
        assert!(took < Duration::from_secs(1), "{name} waited {took:?}");
        assert!(
            server.wait_for_output(
                "maximum concurrent limit of 1 for component instances reached",
                Duration::from_secs(5)
            ),
            "{name}: {}",
            server.stderr()
        );
        wait_for_a_free_slot(name, &server);
    }
}

/// `GET /ok` until it is served: a slot is free once the last store is
/// dropped, which may be just after its answer was sent.
fn wait_for_a_free_slot(name: &str, server: &Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while get(&server.url("/ok")).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: the slot never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
