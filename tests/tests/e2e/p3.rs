//! The WASI 0.3 build of the service, `vector-service-p3.wasm` (the
//! `http-api-p3` guest, exporting `wasi:http/handler@0.3` from the
//! `wasi:http/service` world, composed with the same processor), against the
//! WASI 0.2 build, `vector-service.wasm`: every route and every error status
//! must get the same status, content type, `Allow` and body bytes.
//!
//! [`assert_same_api`] takes the two servers, so the same matrix can hold any
//! server of the p3 build (host-runner too) to the p2 build's answers.

use std::thread;

use vecproc_tests::{artifact, request, to_le_bytes, values, Reply, Server};

use crate::compat::Case;
use crate::composition::interface;

/// The `compat` API matrix plus every remaining route form and error of
/// the `serve` suite: query errors, 404s, 405s with their `Allow`, bodies
/// without a content type, binary non-finite values, a million values.
fn matrix() -> Vec<Case> {
    let json = || vec![("content-type", "application/json")];
    let bin = || vec![("content-type", "application/octet-stream")];
    let million = values(1_000_000, 5);
    let mut cases = crate::compat::api_matrix();
    cases.extend([
        ("GET", "/compute?n=0", vec![], None),
        ("GET", "/compute?n=100000001", vec![], None),
        ("GET", "/compute?n=-1", vec![], None),
        ("GET", "/compute?x=1", vec![], None),
        ("GET", "/", vec![], None),
        ("GET", "/health/", vec![], None),
        ("DELETE", "/health", vec![], None),
        ("PUT", "/sort", vec![], None),
        ("POST", "/health", json(), Some(b"[1]".to_vec())),
        ("POST", "/stats", vec![], Some(b"[4,1,3,2]".to_vec())),
        (
            "POST",
            "/stats",
            json(),
            Some(br#"{"values": [1e16, 1.0, -1e16]}"#.to_vec()),
        ),
        ("POST", "/sort?order=up", json(), Some(b"[1]".to_vec())),
        ("POST", "/sort?order=asc", json(), Some(b"[]".to_vec())),
        ("POST", "/sort", json(), Some(b"[1, true]".to_vec())),
        ("POST", "/sort", json(), Some(b"".to_vec())),
        ("POST", "/stats", bin(), Some(to_le_bytes(&[1.0, f64::NAN]))),
        ("POST", "/sort", bin(), Some(to_le_bytes(&[f64::INFINITY]))),
        ("POST", "/stats", bin(), Some(to_le_bytes(&million))),
        (
            "POST",
            "/sort?order=desc",
            vec![
                ("content-type", "application/octet-stream"),
                ("accept", "application/octet-stream"),
            ],
            Some(to_le_bytes(&million)),
        ),
        (
            "POST",
            "/stats",
            vec![("content-type", "application/x-www-form-urlencoded")],
            Some(b"a=1".to_vec()),
        ),
    ]);
    cases
}

fn send(server: &Server, (method, path, headers, body): &Case) -> Reply {
    request(method, &server.url(path), headers, body.as_deref())
}

fn assert_same(what: &str, expected: &Reply, got: &Reply) {
    assert_eq!(got.status, expected.status, "{what}");
    assert_eq!(got.content_type, expected.content_type, "{what}");
    assert_eq!(got.allow, expected.allow, "{what}");
    assert!(
        got.body == expected.body,
        "{what}: bodies differ: expected {}, got {}",
        String::from_utf8_lossy(&expected.body[..expected.body.len().min(300)]),
        String::from_utf8_lossy(&got.body[..got.body.len().min(300)])
    );
}

/// Sends the whole matrix, then an oversize body declared by
/// `content-length` and one streamed in chunks, to `reference` and to
/// `candidate`, asserting the same answer each time. `label` names the pair
/// in failures.
pub(crate) fn assert_same_api(reference: &Server, candidate: &Server, label: &str) {
    for case in matrix() {
        let what = format!("{label}: {} {}", case.0, case.1);
        assert_same(&what, &send(reference, &case), &send(candidate, &case));
    }
    let declared = |s: &Server| crate::serve::declared_oversize(s.authority());
    assert_eq!(
        declared(candidate),
        declared(reference),
        "{label}: declared oversize body"
    );
    let chunked = |s: &Server| crate::serve::chunked_oversize(s.authority());
    assert_eq!(
        chunked(candidate),
        chunked(reference),
        "{label}: chunked oversize body"
    );
    // Still serving after the 413s.
    let health = ("GET", "/health", vec![], None);
    assert_same(
        &format!("{label}: after 413"),
        &send(reference, &health),
        &send(candidate, &health),
    );
}

#[test]
fn p3_service_answers_like_the_p2_service_under_wasmtime_serve() {
    let p2 = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
    let p3 = Server::wasmtime(&artifact("vector-service-p3.wasm"), &[]);
    assert_same_api(&p2, &p3, "wasmtime serve, p2 vs p3");
}

/// host-runner serves the p3 build with the same answers as `wasmtime
/// serve` serves the p2 build, and composes it in-process from the guest
/// and the processor as `wac` does. Its own body limit is off here
/// (`--max-request-body-size=0`) so every answer is the guest's; with the
/// default limit (64 MiB, the guest's own), a chunked body over it still
/// gets the guest's 413, and a declared one gets the host's 413 before the
/// guest runs.
#[test]
fn host_runner_serves_the_p3_service_with_the_same_answers() {
    use std::io::{Read, Write};

    let p2 = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
    let p3 = Server::host_runner(
        &artifact("vector-service-p3.wasm"),
        &["--max-request-body-size=0"],
    );
    assert_same_api(&p2, &p3, "wasmtime serve p2 vs host-runner p3");
    let plug = format!("--plug={}", artifact("vector-processor.wasm").display());
    let plugged = Server::host_runner(
        &artifact("http-api-p3.wasm"),
        &["--max-request-body-size=0", &plug],
    );
    assert_same_api(&p2, &plugged, "wasmtime serve p2 vs host-runner p3 --plug");

    let limited = Server::host_runner(&artifact("vector-service-p3.wasm"), &[]);
    assert_eq!(
        crate::serve::chunked_oversize(limited.authority()),
        crate::serve::chunked_oversize(p2.authority()),
        "chunked oversize body under host-runner's limit"
    );
    let mut stream = std::net::TcpStream::connect(limited.authority()).unwrap();
    write!(
        stream,
        "POST /stats HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n[1,",
        (64 << 20) + 1
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413", "declared oversize body");
}

/// Both servers run up to 16 requests at once in one p3 instance (p2
/// gets an instance each): concurrent bodies must not mix.
#[test]
fn p3_concurrent_requests_get_their_own_answers() {
    let p2 = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
    for p3 in [
        Server::wasmtime(&artifact("vector-service-p3.wasm"), &[]),
        Server::host_runner(&artifact("vector-service-p3.wasm"), &[]),
    ] {
        concurrent_answers_match(&p2, &p3);
    }
}

fn concurrent_answers_match(p2: &Server, p3: &Server) {
    let cases: Vec<Case> = (0..12u64)
        .map(|i| {
            let (path, headers) = if i % 2 == 0 {
                ("/stats", vec![("content-type", "application/octet-stream")])
            } else {
                (
                    "/sort?order=desc",
                    vec![("content-type", "application/json")],
                )
            };
            let data = values(20_000 + i as usize * 1_000, i + 1);
            let body = if i % 2 == 0 {
                to_le_bytes(&data)
            } else {
                serde_json::to_vec(&data).unwrap()
            };
            ("POST", path, headers, Some(body))
        })
        .collect();
    let expected: Vec<Reply> = cases.iter().map(|c| send(p2, c)).collect();
    thread::scope(|scope| {
        let running: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(|| send(p3, case)))
            .collect();
        for (i, (handle, expected)) in running.into_iter().zip(&expected).enumerate() {
            assert_same(
                &format!("concurrent request {i}"),
                expected,
                &handle.join().unwrap(),
            );
        }
    });
}

#[test]
fn p3_service_exports_the_wasi_0_3_handler() {
    let (imports, exports) = interface("vector-service-p3.wasm");
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(
        exports[0].starts_with("wasi:http/handler@0.3."),
        "{exports:?}"
    );
    // The processor is plugged in; the guest's own WASI imports are 0.3's
    // HTTP types, and the processor's are from the 0.2 proxy world, which
    // `wasmtime serve` links for every component without flags.
    assert!(
        imports.iter().all(|i| !i.starts_with("vecproc:")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/types@0.3.")),
        "{imports:?}"
    );
    let (guest_imports, _) = interface("http-api-p3.wasm");
    assert!(
        guest_imports
            .iter()
            .any(|i| i == "vecproc:vector/vector-processor@0.1.0"),
        "{guest_imports:?}"
    );
    assert!(
        guest_imports
            .iter()
            .all(|i| i.starts_with("vecproc:") || i.contains("@0.3.")),
        "the p3 guest imports a non-0.3 WASI interface: {guest_imports:?}"
    );
}
