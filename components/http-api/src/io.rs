//! Moving bytes through `wasi:http`: the request headers the API needs,
//! reading a body under a size limit, and writing a complete response.

use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::bindings::wasi::io::streams::{OutputStream, StreamError};
use crate::Reply;
use vecproc_core::api::{self, ApiError, ErrorCode};

/// Largest single read from the request body stream.
const READ_CHUNK: u64 = 1 << 20;

/// The request headers the API looks at.
pub(crate) struct RequestHeaders {
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub accept: Option<String>,
}

impl RequestHeaders {
    pub fn of(request: &IncomingRequest) -> Self {
        let fields = request.headers();
        let first = |name: &str| {
            fields
                .get(name)
                .into_iter()
                .next()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        RequestHeaders {
            content_type: first("content-type"),
            content_length: first("content-length").and_then(|v| v.trim().parse().ok()),
            accept: first("accept"),
        }
    }
}

/// Reads the whole body, or answers 413 as soon as it exceeds `limit` bytes
/// (the rest is left unread; the server then closes the connection).
pub(crate) fn read_body(
    request: IncomingRequest,
    declared: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    let unreadable = || ApiError::new(ErrorCode::BadJson, "the request body could not be read");
    let body: IncomingBody = request.consume().map_err(|()| unreadable())?;
    let stream = body.stream().map_err(|()| unreadable())?;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    let result = loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if bytes.len() as u64 + chunk.len() as u64 > limit {
                    break Err(api::too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                break Err(ApiError::new(
                    ErrorCode::BadJson,
                    format!("reading the request body failed: {}", e.to_debug_string()),
                ))
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
