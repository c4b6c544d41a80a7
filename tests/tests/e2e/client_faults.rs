//! Client faults against host-runner and, for comparison, the real
//! `wasmtime serve`: conflicting framing headers, a `Content-Length` that
//! lies either way, a body sent byte by byte, clients that disconnect
//! mid-request and mid-response, and 1,000 idle keep-alive connections.
//! Each case gets a documented answer (the same from both servers where
//! one is sent), nobody crashes, the next request is served, and afterwards
//! the servers' open file descriptors and RSS are back near their baseline.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use vecproc_tests::{artifact, get, post_json, Server};

use crate::compat::servers;
use crate::wire::{exchange, status_lines};

fn fds(server: &Server) -> usize {
    server.open_fds()
}

fn rss_kib(server: &Server) -> u64 {
    server.status_kib("VmRSS:")
}

/// Waits up to 5 s for the server's descriptors to fall to `at_most`.
fn settles(server: &Server, at_most: usize) -> bool {
    for _ in 0..100 {
        if fds(server) <= at_most {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn framing_faults_get_the_same_answer_from_both() {
    let service = artifact("vector-service.wasm");
    let mut replies = Vec::new();
    for (name, server) in servers(&service, &[]) {
        let host = server.authority().to_string();
        // Both Content-Length and chunked: Transfer-Encoding wins (RFC 9112
        // 6.3) and the body is read as chunks.
        let conflicting = exchange(
            &server,
            format!("POST /stats HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\n[1]\r\n0\r\n\r\n").as_bytes(),
        );
        // A Content-Length shorter than the body: the rest is read as the
        // next request, which is not one.
        let short = exchange(
            &server,
            format!("POST /stats HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: 3\r\n\r\n[1]garbage\r\n\r\n").as_bytes(),
        );
        let lines: Vec<String> = [conflicting.as_str(), short.as_str()]
            .iter()
            .map(|r| status_lines(r).join(" | "))
            .collect();
        assert_eq!(lines[0], "HTTP/1.1 200 OK", "{name}");
        assert!(conflicting.contains("\"count\":1"), "{name}: {conflicting}");
        assert!(
            lines[1].starts_with("HTTP/1.1 200") && lines[1].contains("HTTP/1.1 400"),
            "{name}: {}",
            lines[1]
        );
        assert_eq!(get(&server.url("/health")).status, 200, "{name}");
        replies.push(lines);
    }
    assert_eq!(replies[0], replies[1], "wasmtime serve vs host-runner");
}

#[test]
fn slow_lying_and_vanishing_clients_leave_both_serving() {
    let service = artifact("vector-service.wasm");
    for (name, server) in servers(&service, &[]) {
        let baseline_fds = fds(&server);
        let host = server.authority().to_string();

        // A body sent one byte at a time is answered normally.
        let mut stream = TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let body = b"[3, 1, 2]";
        write!(
            stream,
            "POST /stats HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        for byte in body {
            stream.write_all(&[*byte]).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "{name}: {reply}");
        assert!(reply.contains("\"count\":3"), "{name}: {reply}");

        // A Content-Length longer than what arrives, then the client stops
        // sending: the guest's read fails, the server lives on.
        let mut stream = TcpStream::connect(&host).unwrap();
        write!(
            stream,
            "POST /stats HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[1, 2"
        )
        .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        thread::sleep(Duration::from_millis(200));
        drop(stream);

        // Half a request line, then gone.
        let mut stream = TcpStream::connect(&host).unwrap();
        stream.write_all(b"GET /hea").unwrap();
        drop(stream);

        // Gone after the first bytes of a large response.
        for _ in 0..3 {
            let mut stream = TcpStream::connect(&host).unwrap();
            let values = vecproc_tests::to_le_bytes(&vecproc_tests::values(500_000, 9));
            write!(
                stream,
                "POST /sort HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/octet-stream\r\naccept: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                values.len()
            )
            .unwrap();
            stream.write_all(&values).unwrap();
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "{name}");
            drop(stream);
        }

        let reply = post_json(&server.url("/stats"), "[1, 2, 3, 4]");
        assert_eq!(reply.status, 200, "{name}");
        assert!(
            settles(&server, baseline_fds + 2),
            "{name}: {} fds, {baseline_fds} before",
            fds(&server)
        );
    }
}

#[test]
fn a_thousand_idle_keep_alive_connections_do_not_block_a_new_request() {
    let fixture = crate::compat::fixture();
    for (name, server) in servers(&fixture, &["--max-concurrent-connections=2000"]) {
        let baseline_fds = fds(&server);
        let baseline_rss = rss_kib(&server);
        let host = server.authority().to_string();
        let mut idle = Vec::new();
        for _ in 0..1000 {
            let mut stream = TcpStream::connect(&host).unwrap();
            write!(stream, "GET /ok HTTP/1.1\r\nhost: {host}\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{name}");
            idle.push(stream);
        }
        assert!(fds(&server) >= baseline_fds + 1000, "{name}");
        // A new client is served while the thousand sit idle.
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
        drop(idle);
        assert!(
            settles(&server, baseline_fds + 2),
            "{name}: {} fds after, {baseline_fds} before",
            fds(&server)
        );
        let rss = rss_kib(&server);
        assert!(
            rss < baseline_rss + 40 * 1024,
            "{name}: RSS {rss} KiB after, {baseline_rss} KiB before"
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}
