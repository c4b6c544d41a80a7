//! Guest component serving the vector processor's JSON HTTP API.
//!
//! Exports `wasi:http/incoming-handler` and imports `vector-processor`. This
//! file only moves bytes between `wasi:http` and
//! [`vecproc_core::api::handler`], which decides every status code; the work
//! itself is done by whatever component is plugged in for the import. The
//! WASI 0.3 guest (`http-api-p3`) shares the same flow and, through
//! `vecproc_guest::imported!`, the same glue to the processor.
//!
//! Built with the `stateful` feature it also serves `/vectors`
//! ([`vecproc_core::api::vectors`]) over `wasi:keyvalue` (`stateful.rs`).

/// The allocator: dlmalloc taking the heap the linker reserved in the
/// initial memory before growing it (see `components/Cargo.toml`).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Bindings for the `http-api` world (`wasi:http/proxy` plus the processor
/// import), or with the `stateful` feature the `http-api-stateful` world
/// (plus `wasi:keyvalue`), generated at compile time from `wit/` and the
/// WASI WIT that `cargo xtask` fetches into `wit/deps/`. Both worlds give
/// the shared imports the same module paths.
mod bindings {
    #[cfg(not(feature = "stateful"))]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "vecproc:vector/http-api",
        generate_all,
    });
    #[cfg(feature = "stateful")]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "vecproc:vector/http-api-stateful",
        generate_all,
    });
}
/// The imported processor's glue, shared with the WASI 0.3 guest.
mod imported {
    vecproc_guest::imported!(
        processor = crate::bindings::vecproc::vector::vector_processor,
        method = crate::http_types::Method,
    );
}
mod io;
#[cfg(feature = "stateful")]
mod stateful;

use bindings::exports::wasi::http::incoming_handler::Guest;
pub(crate) use bindings::wasi::http::types as http_types;
use http_types::{IncomingRequest, ResponseOutparam};
use imported::Imported;
use vecproc_core::api::handler::{self, Next, Reply, RequestHead};

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        io::send(out, respond(request));
    }
}

fn respond(request: IncomingRequest) -> Reply {
    let fields = request.headers();
    let head = RequestHead::new(
        imported::method_name(&request.method()),
        request.path_with_query(),
        |name| fields.get(name),
    );
    drop(fields);
    #[cfg(feature = "stateful")]
    if vecproc_core::api::vectors::is_vectors_path(&head.path_with_query) {
        return stateful::respond(request, &head);
    }
    match handler::begin(&head, vecproc_guest::max_body_bytes(), &Imported) {
        Next::Reply(reply) => reply,
        Next::ReadBody(mut task) => match io::read_body(request, |chunk| task.push(chunk)) {
            Ok(()) => task.finish(&Imported),
            Err(e) => Reply::error(&e),
        },
    }
}

bindings::export!(Component with_types_in bindings);
