//! A `wasi:http/service` (WASI 0.3) guest that misbehaves on demand, for
//! the p3 cases of the compatibility suite (`tests/tests/e2e/p3.rs`).
//!
//! Routes:
//! - `/ok`: 200 `ok`.
//! - `/trap`: panics (an abort: a trap).
//! - `/loop`: spins forever without yielding.
//! - `/alloc`: grows the heap until `memory.grow` fails.
//! - `/counter`: how many requests this instance has served, this one
//!   included (1, 2, 3, ... while the instance is reused).
//! - `/hold?ms=N`: waits N ms (a host timer, so other requests run on the
//!   instance meanwhile), then answers `{"count":C,"max_concurrent":M}`,
//!   where M is the most requests this instance has held at once so far.

use std::cell::Cell;

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct Fixture;

wasip3::http::service::export!(Fixture);

thread_local! {
    static SERVED: Cell<u64> = const { Cell::new(0) };
    static HOLDING: Cell<u64> = const { Cell::new(0) };
    static MAX_HOLDING: Cell<u64> = const { Cell::new(0) };
}

impl wasip3::exports::http::handler::Guest for Fixture {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let count = SERVED.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        let target = request.get_path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        match path {
            "/ok" => Ok(text(200, "ok\n".into())),
            "/trap" => panic!("the guest trapped on purpose"),
            "/loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/counter" => Ok(text(200, format!("{count}\n"))),
            "/hold" => {
                let ms: u64 = query
                    .strip_prefix("ms=")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                let holding = HOLDING.with(|h| {
                    h.set(h.get() + 1);
                    h.get()
                });
                MAX_HOLDING.with(|m| m.set(m.get().max(holding)));
                wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                HOLDING.with(|h| h.set(h.get() - 1));
                let max = MAX_HOLDING.with(Cell::get);
                Ok(text(
                    200,
                    format!("{{\"count\":{count},\"max_concurrent\":{max}}}\n"),
                ))
            }
            _ => Ok(text(404, "not found\n".into())),
        }
    }
}

/// A plain-text response; the body is written by a task that outlives
/// `handle`.
fn text(status: u16, body: String) -> Response {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain; charset=utf-8");
    let (mut writer, body_rx) = wit_stream::new();
    let (trailers, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
    let _ = response.set_status_code(status);
    wasip3::spawn_local(async move {
        let _ = writer.write_all(body.into_bytes()).await;
        drop(writer);
        drop(trailers);
    });
    response
}
