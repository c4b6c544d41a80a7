//! The vector processor's logic, free of Wasmtime and of component bindings.
//!
//! Guests in `components/` are thin adapters over this crate, so everything
//! here is unit-tested natively and fast:
//!
//! - [`Vector`]: the seed's `VectorProcessor`, holding finite f64 values only;
//! - [`sum`]: Neumaier compensated summation;
//! - [`stats`]: mean, variance, quantiles (type 7) without NaN or overflow traps;
//! - [`compute`]: the seed's sin·cos kernel;
//! - [`api`]: the HTTP API's routing, body parsing, JSON rendering and errors;
//! - [`stored`]: a vector kept in a key-value store (chunks, a header swapped
//!   by compare-and-swap, append/replace/page plans), for the stateful API.

pub mod api;
mod compute;
mod error;
pub mod stats;
pub mod stored;
pub mod sum;
mod vector;

pub use compute::compute;
pub use error::VectorError;
pub use stats::Statistics;
pub use vector::{SortOrder, Vector};
