//! The request flow that every HTTP guest shares, whatever its `wasi:http`
//! version: route, check the headers, collect the body under the limit,
//! call the vector processor, render the answer.
//!
//! A guest only moves bytes: it builds a [`RequestHead`], calls [`begin`],
//! feeds body chunks to a [`BodyTask`] when asked to, and writes the
//! [`Reply`]. The vector processor it imports is reached through the
//! [`Processor`] trait, so the `wasi:http@0.2` guest (blocking reads) and
//! the `wasi:http@0.3` guest (async streams) give the same answers.

use super::body::{check_declared_length, parse_values, too_large, wants_binary, BodyFormat};
use super::error::{ApiError, ErrorCode};
use super::render::{compute_json, health_json, stats_json, values_binary, values_json};
use super::route::{route, Route};
use super::{JSON, OCTET_STREAM};
use crate::{SortOrder, Statistics, VectorError};

/// What the API looks at in a request before its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, upper-case as on the wire.
    pub method: String,
    /// Path and query as sent (`/` when the request had none).
    pub path_with_query: String,
    /// The first `content-type` value.
    pub content_type: Option<String>,
    /// The first `content-length` value, if it is a number.
    pub content_length: Option<u64>,
    /// The first `accept` value.
    pub accept: Option<String>,
    /// The first `if-match` value (the stateful API's preconditions).
    pub if_match: Option<String>,
    /// The first `if-none-match` value.
    pub if_none_match: Option<String>,
}

impl RequestHead {
    /// A head from a method, the request's path-with-query and a header
    /// lookup that returns every value of a name (as `fields.get` does).
    pub fn new(
        method: String,
        path_with_query: Option<String>,
        header: impl Fn(&str) -> Vec<Vec<u8>>,
    ) -> Self {
        let first = |name: &str| {
            header(name)
                .into_iter()
                .next()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        RequestHead {
            method,
            path_with_query: path_with_query.unwrap_or_else(|| "/".into()),
            content_type: first("content-type"),
            content_length: first("content-length").and_then(|v| v.trim().parse().ok()),
            accept: first("accept"),
            if_match: first("if-match"),
            if_none_match: first("if-none-match"),
        }
    }
}

/// The vector processor a guest imports, behind its own bindings.
pub trait Processor {
    /// The seed's sin·cos kernel over `n` terms.
    fn compute(&self, n: u32) -> f64;
    /// Statistics of a new vector holding `values`.
    fn statistics(&self, values: Vec<f64>) -> Result<Statistics, VectorError>;
    /// `values` sorted in `order` by a new vector.
    fn sorted(&self, values: Vec<f64>, order: SortOrder) -> Result<Vec<f64>, VectorError>;
}

/// A complete answer, ready to send with an exact `content-length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'static str,
    /// `allow`, on a 405.
    pub allow: Option<&'static str>,
    /// Other headers (`etag`, `location`, `retry-after`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A 200 with a JSON body.
    pub fn json(body: Vec<u8>) -> Self {
        Reply {
            status: 200,
            content_type: JSON,
            allow: None,
            headers: Vec::new(),
            body,
        }
    }

    /// The error's status, `Allow` and JSON body.
    pub fn error(e: &ApiError) -> Self {
        Reply {
            status: e.status(),
            content_type: JSON,
            allow: e.allow,
            headers: e
                .retry_after
                .map(|s| vec![("retry-after", s.to_string())])
                .unwrap_or_default(),
            body: e.to_json(),
        }
    }
}

/// What [`begin`] leaves the guest to do.
#[derive(Debug)]
pub enum Next {
    /// Send this; the body (if any) is not needed.
    Reply(Reply),
    /// Feed the request body to the task, then [`BodyTask::finish`] it.
    ReadBody(BodyTask),
}

/// Routes a request and answers it unless its body is needed. `limit` is
/// the request-body limit in bytes.
pub fn begin(head: &RequestHead, limit: u64, processor: &impl Processor) -> Next {
    match begin_inner(head, limit, processor) {
        Ok(next) => next,
        Err(e) => Next::Reply(Reply::error(&e)),
    }
}

fn begin_inner(
    head: &RequestHead,
    limit: u64,
    processor: &impl Processor,
) -> Result<Next, ApiError> {
    let route = route(&head.method, &head.path_with_query)?;
    match route {
        Route::Health => Ok(Next::Reply(Reply::json(health_json()))),
        Route::Compute { n } => Ok(Next::Reply(Reply::json(compute_json(
            n,
            processor.compute(n),
        )))),
        Route::Stats | Route::Sort { .. } => {
            let format = BodyFormat::from_content_type(head.content_type.as_deref())?;
            check_declared_length(head.content_length, limit)?;
            Ok(Next::ReadBody(BodyTask {
                route,
                format,
                binary_out: wants_binary(head.accept.as_deref()),
                limit,
                bytes: Vec::with_capacity(head.content_length.unwrap_or(0).min(limit) as usize),
            }))
        }
    }
}

/// A request whose body is being collected.
#[derive(Debug)]
pub struct BodyTask {
    route: Route,
    format: BodyFormat,
    binary_out: bool,
    limit: u64,
    bytes: Vec<u8>,
}

impl BodyTask {
    /// Appends a chunk of the body; the 413 error once the body would exceed
    /// the limit (the guest then stops reading and sends it).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        if self.bytes.len() as u64 + chunk.len() as u64 > self.limit {
            return Err(too_large(self.limit));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Parses the collected body, calls the processor and renders the answer.
    pub fn finish(self, processor: &impl Processor) -> Reply {
        self.finish_inner(processor)
            .unwrap_or_else(|e| Reply::error(&e))
    }

    fn finish_inner(self, processor: &impl Processor) -> Result<Reply, ApiError> {
        let values = parse_values(self.format, &self.bytes)?;
        drop(self.bytes);
        match self.route {
            Route::Sort { order } => {
                let sorted = processor.sorted(values, order).map_err(vector_error)?;
                if self.binary_out {
                    Ok(Reply {
                        content_type: OCTET_STREAM,
                        ..Reply::json(values_binary(&sorted))
                    })
                } else {
                    Ok(Reply::json(values_json(&sorted)))
                }
            }
            _ => {
                let stats = processor.statistics(values).map_err(vector_error)?;
                Ok(Reply::json(stats_json(&stats)))
            }
        }
    }
}

/// The 400 for a request body the host could not hand over at all.
pub fn unreadable_body() -> ApiError {
    ApiError::new(ErrorCode::BadJson, "the request body could not be read")
}

/// The 400 for a request body whose transfer failed part way (`detail` is
/// the host's error).
pub fn body_read_failed(detail: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BadJson,
        format!("reading the request body failed: {detail}"),
    )
}

/// The answer to a processor's refusal.
fn vector_error(e: VectorError) -> ApiError {
    match e {
        VectorError::NonFinite(i) => ApiError::new(
            ErrorCode::NonFinite,
            format!("value at index {i} is not a finite number"),
        ),
        VectorError::InvalidQuantile(q) => {
            ApiError::new(ErrorCode::Internal, format!("invalid quantile {q}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vector;

    /// The processor as the guest component implements it, run natively.
    struct Native;

    impl Processor for Native {
        fn compute(&self, n: u32) -> f64 {
            crate::compute(n)
        }
        fn statistics(&self, values: Vec<f64>) -> Result<Statistics, VectorError> {
            let mut v = Vector::new();
            v.add_values(&values)?;
            Ok(v.statistics())
        }
        fn sorted(&self, values: Vec<f64>, order: SortOrder) -> Result<Vec<f64>, VectorError> {
            let mut v = Vector::new();
            v.add_values(&values)?;
            Ok(v.sorted(order).to_vec())
        }
    }

    /// A processor that refuses everything, as a misbehaving plug might.
    struct Refusing;

    impl Processor for Refusing {
        fn compute(&self, _: u32) -> f64 {
            0.0
        }
        fn statistics(&self, _: Vec<f64>) -> Result<Statistics, VectorError> {
            Err(VectorError::NonFinite(7))
        }
        fn sorted(&self, _: Vec<f64>, _: SortOrder) -> Result<Vec<f64>, VectorError> {
            Err(VectorError::InvalidQuantile(2.0))
        }
    }

    fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        RequestHead::new(method.into(), Some(path.into()), |name| {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        })
    }

    fn answer(head: &RequestHead, body: &[u8], limit: u64, p: &impl Processor) -> Reply {
        match begin(head, limit, p) {
            Next::Reply(r) => r,
            Next::ReadBody(mut task) => {
                for chunk in body.chunks(3) {
                    if let Err(e) = task.push(chunk) {
                        return Reply::error(&e);
                    }
                }
                task.finish(p)
            }
        }
    }

    fn code(reply: &Reply) -> String {
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        v["error"]["code"].as_str().unwrap().to_string()
    }

    #[test]
    fn head_takes_first_values_and_defaults_the_path() {
        let h = head(
            "POST",
            "/stats",
            &[
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
                ("content-length", " 12 "),
            ],
        );
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.content_length, Some(12));
        assert_eq!(h.accept, None);
        let h = RequestHead::new("GET".into(), None, |_| vec![vec![b'x']]);
        assert_eq!(h.path_with_query, "/");
        assert_eq!(h.content_length, None);
    }

    #[test]
    fn routes_without_a_body_answer_at_once() {
        let r = answer(&head("GET", "/health", &[]), b"", 100, &Native);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &br#"{"status":"ok"}"#[..])
        );
        let r = answer(&head("GET", "/compute?n=3", &[]), b"", 100, &Native);
        assert_eq!(r.body, compute_json(3, crate::compute(3)));
        let r = answer(&head("GET", "/stats", &[]), b"", 100, &Native);
        assert_eq!((r.status, r.allow), (405, Some("POST")));
        assert_eq!(
            answer(&head("GET", "/x", &[]), b"", 100, &Native).status,
            404
        );
    }

    #[test]
    fn bodies_are_parsed_processed_and_rendered() {
        let r = answer(&head("POST", "/stats", &[]), b"[4, 1, 3, 2]", 100, &Native);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (r.status, v["count"].as_u64(), v["median"].as_f64()),
            (200, Some(4), Some(2.5))
        );
        let r = answer(
            &head("POST", "/sort?order=desc", &[]),
            b"[3, 1, 2]",
            100,
            &Native,
        );
        assert_eq!(
            (r.content_type, r.body.as_slice()),
            (JSON, &b"[3.0,2.0,1.0]"[..])
        );
        let binary = [
            ("content-type", "application/octet-stream"),
            ("accept", "application/octet-stream"),
        ];
        let r = answer(
            &head("POST", "/sort", &binary),
            &values_binary(&[2.0, 1.0]),
            100,
            &Native,
        );
        assert_eq!(
            (r.content_type, r.body),
            (OCTET_STREAM, values_binary(&[1.0, 2.0]))
        );
    }

    #[test]
    fn every_error_has_its_status() {
        let text = [("content-type", "text/plain")];
        assert_eq!(
            answer(&head("POST", "/stats", &text), b"[1]", 100, &Native).status,
            415
        );
        let declared = [("content-length", "101")];
        let r = answer(&head("POST", "/stats", &declared), b"", 100, &Native);
        assert_eq!((r.status, code(&r).as_str()), (413, "payload_too_large"));
        let r = answer(&head("POST", "/stats", &[]), &[b' '; 101], 100, &Native);
        assert_eq!(r.status, 413);
        assert_eq!(
            answer(&head("POST", "/stats", &[]), &[b' '; 100], 100, &Native).status,
            400
        );
        assert_eq!(
            code(&answer(
                &head("POST", "/stats", &[]),
                b"[1e400]",
                100,
                &Native
            )),
            "non_finite"
        );
        let r = answer(&head("POST", "/stats", &[]), b"[1]", 100, &Refusing);
        assert_eq!((r.status, code(&r).as_str()), (400, "non_finite"));
        let r = answer(&head("POST", "/sort", &[]), b"[1]", 100, &Refusing);
        assert_eq!((r.status, code(&r).as_str()), (500, "internal"));
        assert_eq!(Reply::error(&unreadable_body()).status, 400);
        assert!(body_read_failed("reset").message.ends_with(": reset"));
    }
}
