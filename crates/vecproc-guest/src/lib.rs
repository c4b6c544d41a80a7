//! What the two HTTP guests, `http-api` (`wasi:http@0.2`) and `http-api-p3`
//! (`wasi:http@0.3`), share besides `vecproc-core`: how they call the
//! imported vector processor, name the request method and read the body
//! limit, so both answer in exactly the same way.
//!
//! The processor calls and the method names depend on types that each guest
//! generates from WIT itself, so [`imported!`] writes them inside the guest,
//! given the paths of its bindings: an explicit interface in place of one
//! source file included into both crates.

#[doc(hidden)]
pub use vecproc_core;

/// Request-body limit in bytes: `vecproc_core::api::DEFAULT_MAX_BODY_BYTES`
/// unless `VECPROC_MAX_BODY_BYTES` was set when the guest was built.
pub fn max_body_bytes() -> u64 {
    option_env!("VECPROC_MAX_BODY_BYTES")
        .and_then(|s| s.parse().ok())
        .unwrap_or(vecproc_core::api::DEFAULT_MAX_BODY_BYTES)
}

/// Writes, in the calling module, `Imported` (the imported processor as a
/// `vecproc_core::api::handler::Processor`) and `method_name` (a `wasi:http`
/// method as on the wire), given the path of the guest's generated
/// `vecproc:vector/vector-processor` import module and of its `wasi:http`
/// `Method` type:
///
/// ```ignore
/// vecproc_guest::imported!(
///     processor = crate::bindings::vecproc::vector::vector_processor,
///     method = crate::http_types::Method
/// );
/// ```
#[macro_export]
macro_rules! imported {
    (processor = $($p:ident)::+, method = $($m:ident)::+ $(,)?) => {
        use $crate::vecproc_core::{api, SortOrder, Statistics, VectorError};

        /// The method as on the wire.
        pub(crate) fn method_name(method: &$($m)::+) -> String {
            use $($m)::+ as Method;
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
                $($p)::+::compute(n)
            }

            fn statistics(&self, values: Vec<f64>) -> Result<Statistics, VectorError> {
                let s = filled(values)?.statistics();
                Ok(Statistics {
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
                })
            }

            fn sorted(&self, values: Vec<f64>, order: SortOrder) -> Result<Vec<f64>, VectorError> {
                let vector = filled(values)?;
                Ok(vector.sorted(match order {
                    SortOrder::Ascending => $($p)::+::SortOrder::Ascending,
                    SortOrder::Descending => $($p)::+::SortOrder::Descending,
                }))
            }
        }

        /// A new vector holding `values` (dropped as soon as they are copied in).
        fn filled(values: Vec<f64>) -> Result<$($p)::+::Vector, VectorError> {
            let vector = $($p)::+::Vector::new();
            vector.add_values(&values).map_err(|e| match e {
                $($p)::+::VectorError::NonFinite(i) => VectorError::NonFinite(i),
                $($p)::+::VectorError::InvalidQuantile(q) => VectorError::InvalidQuantile(q),
            })?;
            drop(values);
            Ok(vector)
        }
    };
}
