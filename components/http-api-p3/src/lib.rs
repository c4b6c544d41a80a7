//! Guest component serving the vector processor's JSON HTTP API over WASI
//! 0.3: exports `wasi:http/handler` (the `wasi:http/service` world, from the
//! `wasip3` crate) and imports `vector-processor`.
//!
//! The same [`vecproc_core::api::handler`] flow and the same `imported` glue
//! as the `wasi:http@0.2` guest (`components/http-api`) decide every answer;
//! this file only moves bytes through `wasi:http@0.3`'s streams.

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/vector-processor.wit", "wit"],
        world: "vecproc:http-api-p3/imports",
        generate_all,
    });
}
#[path = "../../shared/imported.rs"]
mod imported;

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
    match handler::begin(&head, imported::max_body_bytes(), &Imported) {
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
