//! Guest component serving the vector processor's JSON HTTP API over WASI
//! 0.3: exports `wasi:http/handler` (the `wasi:http/service` world, from the
//! `wasip3` crate) and imports `vector-processor`.
//!
//! The same [`vecproc_core::api::handler`] flow and the same glue to the
//! processor (`vecproc_guest::imported!`)
//! as the `wasi:http@0.2` guest (`components/http-api`) decide every answer;
//! this file only moves bytes through `wasi:http@0.3`'s streams.
//!
//! # How it is built, and why
//!
//! - Like every guest in `components/`, a plain cargo crate built for
//!   `wasm32-unknown-unknown` (`components/.cargo/config.toml`). It was the first of them:
//!   cargo-component 0.21.1, which built the p2 guests until then, generates with wit-bindgen
//!   0.41, whose async support predates the component-model-async ABI that wasmtime 48
//!   implements.
//! - Bindings: the `wasip3` crate (0.10.0+wasi-0.3.2) for all of WASI, wit-bindgen 0.63's
//!   `generate!` for our import. The crate ships its WIT and pregenerated code, so nothing is
//!   fetched into `wit/deps/` for p3 and no WASI WIT is committed. wasmtime 48's p3 host is
//!   `wasi:http@0.3.0`; the guest's `@0.3.2` imports and its `wasi:http/handler@0.3.2` export
//!   link against it by semver, checked by serving the composition with the real `wasmtime
//!   serve` 48.0.8 (the `p3` e2e suite).
//! - Target `wasm32-unknown-unknown`, not `wasm32-wasip2`: on wasip2, Rust std goes through
//!   wasi-libc and imports `wasi:cli/environment@0.2.x` and friends (the default panic hook
//!   reads `RUST_BACKTRACE`), which `wasmtime serve` links only with `-S cli`; it refused
//!   such a build (`component imports instance wasi:cli/environment@0.2.6, but a matching
//!   implementation was not found in the linker`). On unknown-unknown std imports nothing.
//! - The composed `vector-service-p3.wasm` imports `wasi:http/types@0.3` from the guest and
//!   nothing from the processor, which imports nothing; `wasmtime serve` links p2 and p3
//!   interfaces for every component without flags. It serves p3 components with instance
//!   reuse (up to 128 requests, 16 at once, per instance); the guest holds no state between
//!   requests, and the `p3` suite sends concurrent requests to check their answers do not mix.

/// The allocator: dlmalloc taking the heap the linker reserved in the
/// initial memory before growing it (see `components/Cargo.toml`).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/vector-processor.wit", "wit"],
        world: "vecproc:http-api-p3/imports",
        generate_all,
    });
}
/// The imported processor's glue, shared with the WASI 0.2 guest.
mod imported {
    vecproc_guest::imported!(
        processor = crate::bindings::vecproc::vector::vector_processor,
        method = crate::http_types::Method,
    );
}

use http_types::{ErrorCode, Fields, Request, Response};
use imported::Imported;
use vecproc_core::api::handler::{self, BodyTask, Next, Reply, RequestHead};
use vecproc_core::api::ApiError;
pub(crate) use wasip3::http::types as http_types;
use wasip3::wit_bindgen::StreamResult;
use wasip3::{wit_future, wit_stream};

/// Largest single read from the request body stream.
const READ_CHUNK: usize = 1 << 20;

struct Component;

wasip3::http::service::export!(Component);

impl wasip3::exports::http::handler::Guest for Component {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        Ok(send(respond(request).await))
    }
}

async fn respond(request: Request) -> Reply {
    let fields = request.get_headers();
    let head = RequestHead::new(
        imported::method_name(&request.get_method()),
        request.get_path_with_query(),
        |name| fields.get(name),
    );
    drop(fields);
    match handler::begin(&head, vecproc_guest::max_body_bytes(), &Imported) {
        Next::Reply(reply) => reply,
        Next::ReadBody(mut task) => match read_body(request, &mut task).await {
            Ok(()) => task.finish(&Imported),
            Err(e) => Reply::error(&e),
        },
    }
}

/// Feeds the whole body to `task`, stopping at its first error (a 413 once
/// the body is over the limit: the rest is left unread).
async fn read_body(request: Request, task: &mut BodyTask) -> Result<(), ApiError> {
    // Dropping the writer unwritten reports `Ok` for our side of the body.
    let (_handled, handled_rx) = wit_future::new(|| Ok(()));
    let (mut stream, trailers) = Request::consume_body(request, handled_rx);
    let mut chunk = Vec::with_capacity(READ_CHUNK);
    loop {
        let (result, read) = stream.read(chunk).await;
        chunk = read;
        match result {
            StreamResult::Complete(_) => {
                task.push(&chunk)?;
                chunk.clear();
            }
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    drop(stream);
    match trailers.await {
        Ok(_) => Ok(()),
        Err(e) => Err(handler::body_read_failed(&format!("{e:?}"))),
    }
}

/// The response for `reply`, with an exact `content-length`; its body is
/// written by a task that outlives `handle`. A client that went away
/// mid-body only ends the write.
fn send(reply: Reply) -> Response {
    let headers = Fields::new();
    let _ = headers.append("content-type", reply.content_type.as_bytes());
    let _ = headers.append("content-length", reply.body.len().to_string().as_bytes());
    if let Some(allow) = reply.allow {
        let _ = headers.append("allow", allow.as_bytes());
    }
    for (name, value) in &reply.headers {
        let _ = headers.append(name, value.as_bytes());
    }
    let (mut body, body_rx) = wit_stream::new();
    // No trailers: the writer's default, sent when it is dropped.
    let (trailers, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
    let _ = response.set_status_code(reply.status);
    wasip3::spawn_local(async move {
        let _ = body.write_all(reply.body).await;
        drop(body);
        drop(trailers);
    });
    response
}
