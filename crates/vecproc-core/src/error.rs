//! The error a vector operation can refuse input with.

/// Why a [`Vector`](crate::Vector) operation refused its input.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum VectorError {
    /// The value at this index of the input was NaN or an infinity.
    #[error("value at index {0} is not a finite number")]
    NonFinite(u64),
    /// A quantile outside `[0, 1]`, or NaN, was asked for.
    #[error("quantile {0} is outside [0, 1]")]
    InvalidQuantile(f64),
}
