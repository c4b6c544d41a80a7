//! Misbehaving guests under a server with `wasmtime serve`'s semantics: the
//! `misbehaving` fixture traps, loops, allocates without bound, never
//! answers, answers with an error code, or prints. Each case checks the
//! client's answer, the server's log, and that the next request succeeds.
//!
//! Every test runs against each server in [`servers`] (the real
//! `wasmtime serve` and `host-runner serve`), with the same expectations;
//! `api_answers_match` sends the HTTP API's request matrix to both on the
//! composed service and compares the answers.

use std::path::Path;
use std::time::{Duration, Instant};

use vecproc_tests::{artifact, get, Server, WASMTIME_500_PAGE};

/// The servers under test, by name.
pub(crate) fn servers(component: &Path, extra: &[&str]) -> Vec<(&'static str, Server)> {
    vec![
        ("wasmtime serve", Server::wasmtime(component, extra)),
        ("host-runner serve", Server::host_runner(component, extra)),
    ]
}

pub(crate) fn fixture() -> std::path::PathBuf {
    artifact("fixtures/misbehaving.wasm")
}

fn assert_500_page(name: &str, reply: &vecproc_tests::Reply) {
    assert_eq!(reply.status, 500, "{name}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("text/html; charset=UTF-8"),
        "{name}"
    );
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        WASMTIME_500_PAGE,
        "{name}"
    );
}

#[test]
fn trap_before_set_is_a_500_page_and_the_next_request_succeeds() {
    for (name, server) in servers(&fixture(), &[]) {
        assert_500_page(name, &get(&server.url("/trap")));
        assert!(
            server.wait_for_output(
                "guest never invoked `response-outparam::set` method",
                Duration::from_secs(5)
            ),
            "{name}: {}",
            server.stderr()
        );
        assert!(
            server.wait_for_output("wasm trap", Duration::from_secs(5)),
            "{name}"
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn returning_without_set_and_error_codes_are_500_pages() {
    for (name, server) in servers(&fixture(), &[]) {
        assert_500_page(name, &get(&server.url("/no-set")));
        assert_500_page(name, &get(&server.url("/error-code")));
        assert!(
            server.wait_for_output(
                "ErrorCode::InternalError(Some(\"boom\"))",
                Duration::from_secs(5)
            ),
            "{name}: {}",
            server.stderr()
        );
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_timeout() {
    for (name, server) in servers(&fixture(), &["-Wtimeout=1s"]) {
        let start = Instant::now();
        assert_500_page(name, &get(&server.url("/loop")));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(10),
            "{name}: {took:?}"
        );
        assert!(
            server.wait_for_output("guest timed out", Duration::from_secs(5)),
            "{name}"
        );
        // A request well inside the limit still succeeds.
        assert_eq!(get(&server.url("/sleep?ms=200")).status, 200, "{name}");
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    for (name, server) in servers(&fixture(), &["-Wmax-memory-size=67108864"]) {
        assert_500_page(name, &get(&server.url("/alloc")));
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn guest_output_is_forwarded_with_the_instance_prefix() {
    for (name, server) in servers(&fixture(), &[]) {
        assert_eq!(get(&server.url("/print")).status, 200, "{name}");
        assert!(
            server.wait_for_output(":: partial line from stdout", Duration::from_secs(5)),
            "{name}: stdout was {:?}",
            server.stdout()
        );
        let stdout = server.stdout();
        let line = stdout
            .lines()
            .find(|l| l.contains("line from stdout"))
            .unwrap();
        assert!(line.starts_with("stdout ["), "{name}: {line:?}");
        assert!(server.wait_for_output("line from stderr", Duration::from_secs(5)));
        let stderr = server.stderr();
        let line = stderr
            .lines()
            .find(|l| l.contains("line from stderr"))
            .unwrap();
        assert!(line.starts_with("stderr ["), "{name}: {line:?}");
    }
}

#[test]
fn each_request_gets_a_fresh_instance_by_default() {
    for (name, server) in servers(&fixture(), &[]) {
        for _ in 0..3 {
            let r = get(&server.url("/counter"));
            assert_eq!(String::from_utf8_lossy(&r.body).trim(), "1", "{name}");
        }
    }
}

#[test]
fn the_guest_sees_authority_path_and_no_hop_by_hop_headers() {
    for (name, server) in servers(&fixture(), &[]) {
        let r = vecproc_tests::request(
            "GET",
            &server.url("/echo?x=1"),
            &[("x-custom", "1"), ("connection", "keep-alive")],
            None,
        );
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            text.contains(&format!("authority=Some({:?})", server.authority())),
            "{name}: {text}"
        );
        assert!(text.contains("path=Some(\"/echo?x=1\")"), "{name}: {text}");
        assert!(text.contains("scheme=Some(Scheme::Http)"), "{name}: {text}");
        let headers = text.lines().find(|l| l.starts_with("headers=")).unwrap();
        assert!(headers.contains("x-custom"), "{name}: {headers}");
        assert!(
            !headers.contains("host") && !headers.contains("connection"),
            "{name}: {headers}"
        );
    }
}

/// `-H` replaces every client value of a name with the command line's
/// values, in order, before the guest sees the request; a file works too.
#[test]
fn header_overrides_replace_client_values() {
    let dir = std::env::temp_dir().join(format!("vecproc-h-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("headers.txt");
    std::fs::write(&file, "x-from-file: yes\n\n").unwrap();
    let from_file = format!("@{}", file.display());
    let args = [
        "-H",
        "x-tenant: one",
        "-H",
        "x-tenant: two",
        "-H",
        &from_file,
    ];
    let mut seen = Vec::new();
    for (name, server) in servers(&fixture(), &args) {
        let r = vecproc_tests::request(
            "GET",
            &server.url("/echo"),
            &[("x-tenant", "client"), ("x-kept", "1")],
            None,
        );
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("x-headers="))
            .unwrap_or_default()
            .to_string();
        for wanted in [
            "x-tenant: one",
            "x-tenant: two",
            "x-kept: 1",
            "x-from-file: yes",
        ] {
            assert!(line.contains(wanted), "{name}: {line}");
        }
        assert!(!line.contains("client"), "{name}: {line}");
        assert!(
            line.find("x-tenant: one") < line.find("x-tenant: two"),
            "{name}: {line}"
        );
        seen.push(line);
    }
    assert_eq!(seen[0], seen[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The request matrix of the HTTP API: every route and every error.
/// Method, path, headers, body.
pub(crate) type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Option<Vec<u8>>,
);

pub(crate) fn api_matrix() -> Vec<Case> {
    let json = vec![("content-type", "application/json")];
    let bin = vec![("content-type", "application/octet-stream")];
    let values = vecproc_tests::to_le_bytes(&vecproc_tests::values(10_000, 3));
    let big = serde_json::to_vec(&vecproc_tests::values(200_000, 9)).unwrap();
    vec![
        ("GET", "/health", vec![], None),
        ("GET", "/compute?n=1000", vec![], None),
        ("GET", "/compute", vec![], None),
        (
            "POST",
            "/stats",
            json.clone(),
            Some(b"[4, 1, 3, 2]".to_vec()),
        ),
        (
            "POST",
            "/stats",
            json.clone(),
            Some(b"{\"values\": []}".to_vec()),
        ),
        ("POST", "/stats", bin.clone(), Some(values.clone())),
        ("POST", "/stats", json.clone(), Some(big.clone())),
        (
            "POST",
            "/sort?order=desc",
            json.clone(),
            Some(b"[3, 1, 2]".to_vec()),
        ),
        (
            "POST",
            "/sort",
            vec![
                ("content-type", "application/octet-stream"),
                ("accept", "application/octet-stream"),
            ],
            Some(values),
        ),
        ("POST", "/sort", json.clone(), Some(big)),
        ("POST", "/stats", json.clone(), Some(b"[1, 2".to_vec())),
        ("POST", "/stats", json.clone(), Some(b"[\"x\"]".to_vec())),
        ("POST", "/stats", json.clone(), Some(b"[1e400]".to_vec())),
        ("POST", "/stats", bin, Some(vec![0u8; 9])),
        ("GET", "/compute?n=x", vec![], None),
        ("GET", "/nope", vec![], None),
        ("GET", "/stats", vec![], None),
        (
            "POST",
            "/stats",
            vec![("content-type", "text/plain")],
            Some(b"[1]".to_vec()),
        ),
    ]
}

#[test]
fn api_answers_match() {
    let service = artifact("vector-service.wasm");
    let servers = servers(&service, &[]);
    for (method, path, headers, body) in api_matrix() {
        let replies: Vec<_> = servers
            .iter()
            .map(|(name, s)| {
                (
                    name,
                    vecproc_tests::request(method, &s.url(path), &headers, body.as_deref()),
                )
            })
            .collect();
        let (first_name, first) = &replies[0];
        for (name, reply) in &replies[1..] {
            let what = format!("{method} {path}: {first_name} vs {name}");
            assert_eq!(reply.status, first.status, "{what}");
            assert_eq!(reply.content_type, first.content_type, "{what}");
            assert_eq!(reply.allow, first.allow, "{what}");
            assert!(reply.body == first.body, "{what}: bodies differ");
        }
    }
}

#[test]
fn plugged_composition_serves_the_same_api() {
    let composed = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
    let plug = artifact("vector-processor.wasm");
    let plugged = Server::host_runner(
        &artifact("http-api.wasm"),
        &["--plug", plug.to_str().unwrap()],
    );
    for (method, path, headers, body) in api_matrix() {
        let a = vecproc_tests::request(method, &composed.url(path), &headers, body.as_deref());
        let b = vecproc_tests::request(method, &plugged.url(path), &headers, body.as_deref());
        assert_eq!(
            (a.status, &a.content_type),
            (b.status, &b.content_type),
            "{method} {path}"
        );
        assert!(a.body == b.body, "{method} {path}: bodies differ");
    }
}

/// A fresh instance never sees an earlier request's writes, however its
/// slot is reset (host-runner restores dirtied pages in place; `wasmtime
/// serve` returns them to the kernel). With reuse on, the same probe does
/// see them, which shows it can tell.
#[test]
fn fresh_instances_start_from_clean_memory() {
    for (name, server) in servers(&fixture(), &[]) {
        for i in 0..20 {
            let r = get(&server.url("/residue"));
            assert_eq!(
                (r.status, String::from_utf8_lossy(&r.body).trim()),
                (200, "clean"),
                "{name}, request {i}"
            );
        }
    }
    // With reuse, an instance's second request sees the first one's writes.
    // The server returns an instance for reuse only after its guest call
    // ends, which can be after the client already has the answer, so a
    // quick next request may get a new instance: ask a few times, pausing.
    for (name, server) in servers(&fixture(), &["--max-instance-reuse-count=2"]) {
        let mut replies = Vec::new();
        for _ in 0..10 {
            let r = get(&server.url("/residue"));
            let text = String::from_utf8_lossy(&r.body).trim().to_string();
            let found = text == "residue: data segment, zeroed static";
            assert!(found || text == "clean", "{name}: {text}");
            replies.push(text);
            if found {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(replies[0], "clean", "{name}");
        assert!(
            replies.last().is_some_and(|t| t.starts_with("residue")),
            "{name}: {replies:?}"
        );
    }
}

#[test]
fn instance_reuse_counts_up_and_restarts() {
    for (name, server) in servers(&fixture(), &["--max-instance-reuse-count=3"]) {
        let counts: Vec<String> = (0..4)
            .map(|_| {
                let r = get(&server.url("/counter"));
                // Let the instance go back to the pool: that happens when the
                // guest call ends, possibly after the client has its answer.
                std::thread::sleep(Duration::from_millis(50));
                String::from_utf8_lossy(&r.body).trim().to_string()
            })
            .collect();
        assert_eq!(counts, ["1", "2", "3", "1"], "{name}");
        // An idle instance expires after the idle timeout (1 s by default).
        assert_eq!(
            String::from_utf8_lossy(&get(&server.url("/counter")).body).trim(),
            "2",
            "{name}"
        );
        std::thread::sleep(Duration::from_millis(1300));
        assert_eq!(
            String::from_utf8_lossy(&get(&server.url("/counter")).body).trim(),
            "1",
            "{name}"
        );
        // A trap retires the instance it happened in.
        assert_eq!(get(&server.url("/trap")).status, 500, "{name}");
        assert_eq!(get(&server.url("/ok")).status, 200, "{name}");
    }
}

#[test]
fn a_streamed_body_over_the_limit_gets_the_guests_413_from_both() {
    // host-runner's own limit (64 MiB by default) hands the guest the byte
    // that crosses it before failing the read, so the guest's limit speaks.
    let mut answers = Vec::new();
    for (name, server) in servers(&artifact("vector-service.wasm"), &[]) {
        let (status, body) = crate::serve::chunked_oversize(server.authority());
        assert_eq!(status, 413, "{name}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{name}");
        answers.push(body);
        assert_eq!(get(&server.url("/health")).status, 200, "{name}");
    }
    assert_eq!(answers[0], answers[1]);
}
