//! Moving bytes through `wasi:http@0.2`: reading a body into the API's
//! [`BodyTask`] and writing a complete response.

use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::bindings::wasi::io::streams::{OutputStream, StreamError};
use vecproc_core::api::handler::{self, Reply};
use vecproc_core::api::ApiError;

/// Largest single read from the request body stream.
const READ_CHUNK: u64 = 1 << 20;

/// Feeds the whole body to `push` (a `BodyTask`'s or a stateful request's),
/// stopping at its first error (a 413 once the body is over the limit: the
/// rest is left unread and the server then closes the connection).
pub(crate) fn read_body(
    request: IncomingRequest,
    mut push: impl FnMut(&[u8]) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let body: IncomingBody = request.consume().map_err(|()| handler::unreadable_body())?;
    let stream = body.stream().map_err(|()| handler::unreadable_body())?;
    let result = loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if let Err(e) = push(&chunk) {
                    break Err(e);
                }
            }
            Err(StreamError::Closed) => break Ok(()),
            Err(StreamError::LastOperationFailed(e)) => {
                break Err(handler::body_read_failed(&e.to_debug_string()))
            }
        }
    };
    // Child resources go before their parents.
    drop(stream);
    drop(body);
    result
}

/// Sends `reply` with an exact `content-length`. A client that went away
/// mid-body only ends the write; it is not an error for the guest.
pub(crate) fn send(out: ResponseOutparam, reply: Reply) {
    let headers = Fields::new();
    let _ = headers.append("content-type", reply.content_type.as_bytes());
    let _ = headers.append("content-length", reply.body.len().to_string().as_bytes());
    if let Some(allow) = reply.allow {
        let _ = headers.append("allow", allow.as_bytes());
    }
    for (name, value) in &reply.headers {
        let _ = headers.append(name, value.as_bytes());
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    let Ok(body) = response.body() else {
        ResponseOutparam::set(out, Ok(response));
        return;
    };
    // Set the response before writing: body writes before `set` can deadlock.
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = write_all(&stream, &reply.body);
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Writes all of `bytes`, as much as the stream accepts each time, then flushes.
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    let ready = stream.subscribe();
    while !bytes.is_empty() {
        ready.block();
        let permitted = stream.check_write()?;
        let n = (permitted as usize).min(bytes.len());
        if n > 0 {
            stream.write(&bytes[..n])?;
            bytes = &bytes[n..];
        }
    }
    stream.flush()?;
    ready.block();
    stream.check_write().map(|_| ())
}
