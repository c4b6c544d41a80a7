//! Glue shared by the two HTTP guests, `http-api` (`wasi:http@0.2`) and
//! `http-api-p3` (`wasi:http@0.3`): each includes this file with
//! `#[path = "../../shared/imported.rs"] mod imported;` and compiles it
//! against its own bindings, so both call the imported vector processor and
//! read the method and the body limit in exactly the same way.
//!
//! The including crate provides `crate::bindings::vecproc::vector::vector_processor`
//! (its generated import of `vecproc:vector/vector-processor`) and
//! `crate::http_types::Method` (the `wasi:http` method variant it serves).

use crate::bindings::vecproc::vector::vector_processor as processor;
use crate::http_types::Method;
use vecproc_core::{api, SortOrder, Statistics, VectorError};

/// Request-body limit in bytes: [`api::DEFAULT_MAX_BODY_BYTES`] unless
/// `VECPROC_MAX_BODY_BYTES` was set when the component was built.
pub(crate) fn max_body_bytes() -> u64 {
    option_env!("VECPROC_MAX_BODY_BYTES")
        .and_then(|s| s.parse().ok())
        .unwrap_or(api::DEFAULT_MAX_BODY_BYTES)
}

/// The method as on the wire.
pub(crate) fn method_name(method: &Method) -> String {
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

/// The vector processor plugged in for the import.
pub(crate) struct Imported;

impl api::handler::Processor for Imported {
    fn compute(&self, n: u32) -> f64 {
        processor::compute(n)
    }

    fn statistics(&self, values: Vec<f64>) -> Result<Statistics, VectorError> {
        let vector = filled(values)?;
        Ok(statistics(vector.statistics()))
    }

    fn sorted(&self, values: Vec<f64>, order: SortOrder) -> Result<Vec<f64>, VectorError> {
        let vector = filled(values)?;
        Ok(vector.sorted(match order {
            SortOrder::Ascending => processor::SortOrder::Ascending,
            SortOrder::Descending => processor::SortOrder::Descending,
        }))
    }
}

/// A new vector holding `values` (dropped as soon as they are copied in).
fn filled(values: Vec<f64>) -> Result<processor::Vector, VectorError> {
    let vector = processor::Vector::new();
    vector.add_values(&values).map_err(|e| match e {
        processor::VectorError::NonFinite(i) => VectorError::NonFinite(i),
        processor::VectorError::InvalidQuantile(q) => VectorError::InvalidQuantile(q),
    })?;
    drop(values);
    Ok(vector)
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
