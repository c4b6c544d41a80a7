//! What the end-to-end suites share: the processes and paths of
//! `vecproc-harness` (re-exported), small HTTP helpers and deterministic
//! data.
//!
//! Suites need `cargo xtask build` to have run (`cargo xtask test` does it).

pub mod registry;
pub mod upstream;

use std::io::Read;
use std::time::Duration;

pub use vecproc_harness::{
    artifact, free_port, host_runner_bin, repo_root, serve_command, status_kib, target_dir, tool,
    wasmtime_bin, Launch, Server,
};

/// The page `wasmtime serve` answers every failure before a response with.
pub const WASMTIME_500_PAGE: &str = "<!doctype html>\n<html>\n<head>\n    <title>500 Internal Server Error</title>\n</head>\n<body>\n    <center>\n        <h1>500 Internal Server Error</h1>\n        <hr>\n        wasmtime\n    </center>\n</body>\n</html>";

/// A response reduced to what the suites check.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `content-type`, if any.
    pub content_type: Option<String>,
    /// `allow`, if any.
    pub allow: Option<String>,
    /// Every header, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, failing the test if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {v}"))
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

fn finish(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").map(str::to_string);
    let allow = response.header("allow").map(str::to_string);
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            let v = response.header(&n)?.to_string();
            Some((n.to_ascii_lowercase(), v))
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(1 << 30)
        .read_to_end(&mut body)
        .expect("reading the body");
    Reply {
        status,
        content_type,
        allow,
        headers,
        body,
    }
}

/// Sends a request with `headers` and an optional body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    })
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &str) -> Reply {
    request(
        "POST",
        url,
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    )
}

/// Deterministic pseudo-random values in [-1e6, 1e6) (xorshift64*), so every
/// run sends the same data without a random-number dependency.
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (r >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6
        })
        .collect()
}

/// Little-endian f64 bytes.
pub fn to_le_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Values from little-endian f64 bytes.
pub fn from_le_bytes(bytes: &[u8]) -> Vec<f64> {
    assert_eq!(bytes.len() % 8, 0, "binary body length");
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
