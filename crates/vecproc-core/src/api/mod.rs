//! The HTTP API's logic, independent of `wasi:http`: which route a request
//! names, how its body is parsed, how answers and errors are rendered.
//!
//! The HTTP guests (`http-api` on `wasi:http@0.2`, `http-api-p3` on
//! `wasi:http@0.3`) feed method, path, headers and body bytes in and write
//! what comes out ([`handler`]); everything that decides a status code lives
//! here.

mod body;
mod error;
pub mod handler;
mod render;
mod route;
pub mod vectors;

pub use body::{
    check_declared_length, parse_values, too_large, wants_binary, BodyFormat,
    DEFAULT_MAX_BODY_BYTES,
};
pub use error::{ApiError, ErrorCode};
pub use render::{compute_json, health_json, stats_json, values_binary, values_json};
pub use route::{route, Route, MAX_COMPUTE_N};

/// `content-type` of every JSON answer.
pub const JSON: &str = "application/json";
/// `content-type` of binary f64 bodies.
pub const OCTET_STREAM: &str = "application/octet-stream";
