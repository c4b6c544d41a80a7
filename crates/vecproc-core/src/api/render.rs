//! Rendering successful answers as JSON or binary bytes.

use crate::Statistics;

/// `{"status":"ok"}`.
pub fn health_json() -> Vec<u8> {
    br#"{"status":"ok"}"#.to_vec()
}

/// `{"n":N,"result":R}`.
pub fn compute_json(n: u32, result: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "n": n, "result": result }))
        .expect("numbers always serialise")
}

/// The statistics object; absent values (empty input) are `null`. A sum or
/// variance beyond the f64 range (±inf) is also written as `null`, since JSON
/// has no infinity.
pub fn stats_json(stats: &Statistics) -> Vec<u8> {
    serde_json::to_vec(stats).expect("statistics always serialise")
}

/// A JSON array of the values.
pub fn values_json(values: &[f64]) -> Vec<u8> {
    // Room for short numbers up front, capped: 20 bytes a value for 31
    // million values would be 600 MiB, past a guest's memory, where the
    // text of small numbers is a fifth of that.
    let mut out = Vec::with_capacity(
        values
            .len()
            .saturating_mul(4)
            .saturating_add(2)
            .min(16 << 20),
    );
    serde_json::to_writer(&mut out, values).expect("writing to a Vec cannot fail");
    out
}

/// The values as little-endian f64 bytes.
pub fn values_binary(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for x in values {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(health_json(), br#"{"status":"ok"}"#);
        assert_eq!(compute_json(3, 0.5), br#"{"n":3,"result":0.5}"#);
        assert_eq!(values_json(&[1.0, -0.5]), b"[1.0,-0.5]");
        assert_eq!(values_binary(&[1.0]), 1f64.to_le_bytes());
        let empty: serde_json::Value =
            serde_json::from_slice(&stats_json(&Statistics::EMPTY)).unwrap();
        assert_eq!(empty["count"], 0);
        assert_eq!(empty["sum"], 0.0);
        assert!(empty["mean"].is_null() && empty["p99"].is_null());
    }

    #[test]
    fn values_round_trip_through_json() {
        let values = [0.1 + 0.2, 1e-300, -123456.789, f64::MAX];
        let back: Vec<f64> = serde_json::from_slice(&values_json(&values)).unwrap();
        assert_eq!(back, values);
    }
}
