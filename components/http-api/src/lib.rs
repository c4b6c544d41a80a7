//! Guest component serving the vector processor's JSON HTTP API.
//!
//! Exports `wasi:http/incoming-handler` and imports `vector-processor`. This
//! file only moves bytes between `wasi:http` and [`vecproc_core::api`], which
//! decides every status code; the work itself is done by whatever component
//! is plugged in for the import.

#[allow(warnings)]
#[rustfmt::skip]
mod bindings;
mod io;

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::vecproc::vector::vector_processor::{self as processor, SortOrder, VectorError};
use bindings::wasi::http::types::{IncomingRequest, Method, ResponseOutparam};
use vecproc_core::api::{self, ApiError, BodyFormat, ErrorCode, Route};
use vecproc_core::Statistics;

/// Request-body limit in bytes: [`api::DEFAULT_MAX_BODY_BYTES`] unless
/// `VECPROC_MAX_BODY_BYTES` was set when the component was built.
fn max_body_bytes() -> u64 {
    option_env!("VECPROC_MAX_BODY_BYTES")
        .and_then(|s| s.parse().ok())
        .unwrap_or(api::DEFAULT_MAX_BODY_BYTES)
}

/// A complete answer, ready to send.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub allow: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(body: Vec<u8>) -> Self {
        Reply {
            status: 200,
            content_type: api::JSON,
            allow: None,
            body,
        }
    }

    fn error(e: &ApiError) -> Self {
        Reply {
            status: e.status(),
            content_type: api::JSON,
            allow: e.allow,
            body: e.to_json(),
        }
    }
}

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let reply = respond(request).unwrap_or_else(|e| Reply::error(&e));
        io::send(out, reply);
    }
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}

fn respond(request: IncomingRequest) -> Result<Reply, ApiError> {
    let method = method_name(&request.method());
    let path = request.path_with_query().unwrap_or_else(|| "/".into());
    let route = api::route(&method, &path)?;
    match route {
        Route::Health => Ok(Reply::json(api::health_json())),
        Route::Compute { n } => Ok(Reply::json(api::compute_json(n, processor::compute(n)))),
        Route::Stats | Route::Sort { .. } => {
            let headers = io::RequestHeaders::of(&request);
            let format = BodyFormat::from_content_type(headers.content_type.as_deref())?;
            let limit = max_body_bytes();
            api::check_declared_length(headers.content_length, limit)?;
            let body = io::read_body(request, headers.content_length, limit)?;
            let values = api::parse_values(format, &body)?;
            drop(body);
            let vector = processor::Vector::new();
            vector.add_values(&values).map_err(vector_error)?;
            drop(values);
            match route {
                Route::Sort { order } => {
                    let order = match order {
                        vecproc_core::SortOrder::Ascending => SortOrder::Ascending,
                        vecproc_core::SortOrder::Descending => SortOrder::Descending,
                    };
                    let sorted = vector.sorted(order);
                    if api::wants_binary(headers.accept.as_deref()) {
                        Ok(Reply {
                            content_type: api::OCTET_STREAM,
                            ..Reply::json(api::values_binary(&sorted))
                        })
                    } else {
                        Ok(Reply::json(api::values_json(&sorted)))
                    }
                }
                _ => Ok(Reply::json(api::stats_json(&statistics(
                    vector.statistics(),
                )))),
            }
        }
    }
}

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

fn statistics(s: processor::Statistics) -> Statistics {
    Statistics {
        count: s.count,
        sum: s.sum,
        mean: s.mean,
        min: s.min,
        max: s.max,
        variance: s.variance,
        stddev: s.stddev,
        sample_variance: s.sample_variance,
        sample_stddev: s.sample_stddev,
        median: s.median,
        p25: s.p25,
        p75: s.p75,
        p90: s.p90,
        p99: s.p99,
    }
}

bindings::export!(Component with_types_in bindings);
