//! The composed service under the real `wasmtime serve`: every route and
//! every error status of the API, large bodies, and a server that keeps
//! serving after bad input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use vecproc_tests::{artifact, get, post_json, request, Server};

thread_local! {
    /// One server per test: libtest runs each test on its own thread, so the
    /// server is stopped (dropped) when its test ends, pass or fail. A
    /// process-wide static would never be dropped and would outlive the run.
    static SERVER: Server = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
}

fn url(path: &str) -> String {
    SERVER.with(|s| s.url(path))
}

fn authority() -> String {
    SERVER.with(|s| s.authority().to_string())
}

fn server_stderr() -> String {
    SERVER.with(|s| s.stderr())
}

fn assert_error(reply: &vecproc_tests::Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.error_code(), code);
    let message = reply.json()["error"]["message"].clone();
    assert!(
        message.as_str().is_some_and(|m| !m.is_empty()),
        "error without a message: {message}"
    );
}

#[test]
fn health() {
    let r = get(&url("/health"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[test]
fn compute_default_and_explicit() {
    let r = get(&url("/compute"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["n"], 1_000_000);
    let native = vecproc_core::compute(1_000_000);
    assert!((v["result"].as_f64().unwrap() - native).abs() < 1e-9, "{v}");

    let v = get(&url("/compute?n=10")).json();
    assert_eq!(v["n"], 10);
    assert!((v["result"].as_f64().unwrap() - vecproc_core::compute(10)).abs() < 1e-12);
    assert_eq!(get(&url("/compute?n=0")).json()["result"], 0.0);
}

#[test]
fn stats_body_forms_agree() {
    let values = [4.0, 1.0, 3.0, 2.0];
    let expected = json!({
        "count": 4, "sum": 10.0, "mean": 2.5, "min": 1.0, "max": 4.0,
        "variance": 1.25, "stddev": 1.25f64.sqrt(),
        "sample_variance": 5.0 / 3.0, "sample_stddev": (5.0f64 / 3.0).sqrt(),
        "median": 2.5, "p25": 1.75, "p75": 3.25,
        "p90": 3.7, "p99": 3.9699999999999998,
    });
    let array = post_json(&url("/stats"), "[4, 1, 3, 2]");
    assert_eq!(array.status, 200);
    assert_eq!(array.json(), expected);
    let object = post_json(&url("/stats"), r#"{"values": [4, 1, 3, 2]}"#);
    assert_eq!(object.json(), expected);
    let binary = request(
        "POST",
        &url("/stats"),
        &[("content-type", "application/octet-stream")],
        Some(&vecproc_tests::to_le_bytes(&values)),
    );
    assert_eq!(binary.json(), expected);
    // No content-type at all is taken as JSON.
    let bare = request("POST", &url("/stats"), &[], Some(b"[4,1,3,2]"));
    assert_eq!(bare.json(), expected);
}

#[test]
fn stats_of_nothing_is_nulls() {
    let v = post_json(&url("/stats"), "[]").json();
    assert_eq!(v["count"], 0);
    assert_eq!(v["sum"], 0.0);
    for key in [
        "mean", "min", "max", "variance", "stddev", "median", "p25", "p75", "p90", "p99",
    ] {
        assert!(v[key].is_null(), "{key} should be null: {v}");
    }
}

#[test]
fn stats_compensated_sum() {
    let v = post_json(&url("/stats"), "[1e16, 1.0, -1e16]").json();
    assert_eq!(v["sum"], 1.0);
}

#[test]
fn sort_orders_and_binary_output() {
    let r = post_json(&url("/sort"), "[3, -1.5, 2, 0]");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([-1.5, 0.0, 2.0, 3.0]));
    let r = post_json(&url("/sort?order=desc"), r#"{"values": [3, -1.5, 2, 0]}"#);
    assert_eq!(r.json(), json!([3.0, 2.0, 0.0, -1.5]));
    let r = request(
        "POST",
        &url("/sort?order=asc"),
        &[
            ("content-type", "application/json"),
            ("accept", "application/octet-stream"),
        ],
        Some(b"[3, -1.5, 2, 0]"),
    );
    assert_eq!(r.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(vecproc_tests::from_le_bytes(&r.body), [-1.5, 0.0, 2.0, 3.0]);
}

#[test]
fn bad_json_is_400() {
    for body in ["[1, 2", "", "{\"vals\": [1]}", "42", "[1] trailing"] {
        assert_error(&post_json(&url("/stats"), body), 400, "bad_json");
    }
}

#[test]
fn not_a_number_is_400() {
    for body in ["[1, \"2\"]", "[null]", "{\"values\": [true]}"] {
        assert_error(&post_json(&url("/sort"), body), 400, "not_a_number");
    }
}

#[test]
fn non_finite_is_400() {
    assert_error(&post_json(&url("/stats"), "[1e400]"), 400, "non_finite");
    let nan = vecproc_tests::to_le_bytes(&[1.0, f64::NAN]);
    let r = request(
        "POST",
        &url("/stats"),
        &[("content-type", "application/octet-stream")],
        Some(&nan),
    );
    assert_error(&r, 400, "non_finite");
    let inf = vecproc_tests::to_le_bytes(&[f64::INFINITY]);
    let r = request(
        "POST",
        &url("/sort"),
        &[("content-type", "application/octet-stream")],
        Some(&inf),
    );
    assert_error(&r, 400, "non_finite");
}

#[test]
fn binary_length_must_be_a_multiple_of_8() {
    let r = request(
        "POST",
        &url("/stats"),
        &[("content-type", "application/octet-stream")],
        Some(&[0u8; 12]),
    );
    assert_error(&r, 400, "bad_binary_length");
}

#[test]
fn bad_query_is_400() {
    for path in [
        "/compute?n=abc",
        "/compute?n=100000001",
        "/compute?n=-1",
        "/compute?x=1",
    ] {
        assert_error(&get(&url(path)), 400, "bad_query");
    }
    assert_error(&post_json(&url("/sort?order=up"), "[1]"), 400, "bad_query");
}

#[test]
fn unknown_path_is_404() {
    for path in ["/", "/nope", "/health/"] {
        assert_error(&get(&url(path)), 404, "not_found");
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let r = get(&url("/stats"));
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.allow.as_deref(), Some("POST"));
    let r = request("DELETE", &url("/health"), &[], None);
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.allow.as_deref(), Some("GET"));
}

#[test]
fn unsupported_content_type_is_415() {
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = request(
            "POST",
            &url("/stats"),
            &[("content-type", ct)],
            Some(b"[1]"),
        );
        assert_error(&r, 415, "unsupported_media_type");
    }
}

/// Reads one HTTP/1.1 response head and body (content-length framed).
fn read_response(stream: &mut TcpStream) -> (u16, serde_json::Value) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Declares a body one byte over 64 MiB to `/stats` at `authority`, sends
/// only a few bytes of it and reads the answer.
pub(crate) fn declared_oversize(authority: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let declared = 64 * 1024 * 1024 + 1;
    write!(
        stream,
        "POST /stats HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n[1,2,3",
    )
    .unwrap();
    read_response(&mut stream)
}

#[test]
fn declared_oversize_body_is_413_without_reading_it() {
    // Only a few bytes of the 64 MiB are sent: the answer cannot have waited for them.
    let (status, body) = declared_oversize(&authority());
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

/// Sends an 80 MiB chunked JSON body to `/sort` at `authority` and reads the
/// answer, which arrives before the body is finished.
pub(crate) fn chunked_oversize(authority: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let authority = authority.to_string();
    let sender = std::thread::spawn(move || {
        write!(
            writer,
            "POST /sort HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )?;
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..80 {
            write!(writer, "{:x}\r\n", chunk.len())?;
            writer.write_all(&chunk)?;
            writer.write_all(b"\r\n")?;
        }
        writer.write_all(b"0\r\n\r\n")
    });
    let answer = read_response(&mut stream);
    drop(stream);
    // The sender stops when the server closes the connection, or finishes.
    let _ = sender.join();
    answer
}

#[test]
fn chunked_oversize_body_is_413() {
    let (status, body) = chunked_oversize(&authority());
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[test]
fn a_million_values_json_and_binary() {
    let values = vecproc_tests::values(1_000_000, 42);
    let mut native = vecproc_core::Vector::new();
    native.add_values(&values).unwrap();
    let expected_stats = serde_json::to_value(native.statistics()).unwrap();
    let expected_sorted = native.sorted(vecproc_core::SortOrder::Ascending).to_vec();

    let json_body = serde_json::to_vec(&values).unwrap();
    assert!(json_body.len() < 64 * 1024 * 1024);
    let binary_body = vecproc_tests::to_le_bytes(&values);

    let r = request(
        "POST",
        &url("/stats"),
        &[("content-type", "application/json")],
        Some(&json_body),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), expected_stats);
    let r = request(
        "POST",
        &url("/stats"),
        &[("content-type", "application/octet-stream")],
        Some(&binary_body),
    );
    assert_eq!(r.json(), expected_stats);

    let r = request(
        "POST",
        &url("/sort"),
        &[("content-type", "application/json")],
        Some(&json_body),
    );
    assert_eq!(r.status, 200);
    let sorted: Vec<f64> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(sorted, expected_sorted);
    let r = request(
        "POST",
        &url("/sort?order=desc"),
        &[
            ("content-type", "application/octet-stream"),
            ("accept", "application/octet-stream"),
        ],
        Some(&binary_body),
    );
    let sorted = vecproc_tests::from_le_bytes(&r.body);
    assert_eq!(sorted.len(), 1_000_000);
    assert!(sorted.iter().rev().eq(expected_sorted.iter()));
}

#[test]
fn keeps_serving_after_bad_input_and_logs_no_traps() {
    for _ in 0..3 {
        assert_error(&post_json(&url("/stats"), "[oops"), 400, "bad_json");
        assert_error(&get(&url("/missing")), 404, "not_found");
        assert_eq!(get(&url("/health")).status, 200);
    }
    let stderr = server_stderr();
    assert!(
        !stderr.contains("wasm trap") && !stderr.contains("worker failed"),
        "the guest trapped:\n{stderr}"
    );
}
