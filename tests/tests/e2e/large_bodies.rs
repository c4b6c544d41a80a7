//! Valid bodies up to the limit are answered, not trapped: 60 MiB of `0,`
//! (31 million values, under the 64 MiB body limit) to `/stats` and `/sort`
//! under host-runner's defaults gets 200 with the right answer. Before, the
//! guest's vector grew by doubling (peaking at 1.5× its size while moving),
//! the processor copied what it was handed, and the JSON writer reserved
//! 20 bytes a value: past the 512 MiB per-memory cap, a trap and a 500.

use vecproc_tests::{artifact, request, Server};

/// `[0,0,...,0]` of about `mib` MiB: two bytes a value.
fn zeros(mib: usize) -> (usize, Vec<u8>) {
    let n = mib << 19;
    let mut body = Vec::with_capacity(2 * n + 1);
    body.push(b'[');
    for i in 0..n {
        body.extend_from_slice(if i + 1 == n { b"0]" } else { b"0," });
    }
    (n, body)
}

#[test]
fn sixty_mib_of_small_numbers_is_answered() {
    let server = Server::host_runner(&artifact("vector-service.wasm"), &[]);
    let (n, body) = zeros(60);
    assert!(body.len() < 64 << 20);
    let json = [("content-type", "application/json")];

    let stats = request("POST", &server.url("/stats"), &json, Some(&body));
    assert_eq!(stats.status, 200, "{}", server.stderr());
    let stats = stats.json();
    assert_eq!(stats["count"], n);
    assert_eq!(stats["sum"], 0.0);
    assert_eq!(stats["p99"], 0.0);

    let sorted = request("POST", &server.url("/sort"), &json, Some(&body));
    assert_eq!(sorted.status, 200, "{}", server.stderr());
    let text = &sorted.body;
    // Every value is written back: "0.0" n times, comma separated.
    assert_eq!(
        text.len(),
        2 + 3 * n + (n - 1),
        "{}",
        String::from_utf8_lossy(&text[..40])
    );
    assert!(text.starts_with(b"[0.0,0.0,") && text.ends_with(b",0.0]"));
    assert!(
        !server.stderr().contains("worker failed"),
        "{}",
        server.stderr()
    );
}
