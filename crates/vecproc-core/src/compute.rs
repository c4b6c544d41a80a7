//! The seed's compute kernel.

/// Σ sin(i)·cos(i) for i in `0..n`, accumulated left to right in plain f64,
/// exactly as the seed computes it (this is a benchmark kernel, so it keeps
/// the seed's arithmetic rather than compensating).
pub fn compute(n: u32) -> f64 {
    let mut acc = 0.0;
    for i in 0..n {
        let x = f64::from(i);
        acc += x.sin() * x.cos();
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::compute;

    #[test]
    fn small_cases_match_the_definition() {
        assert_eq!(compute(0), 0.0);
        assert_eq!(compute(1), 0.0);
        let expected = 1f64.sin() * 1f64.cos() + 2f64.sin() * 2f64.cos();
        assert_eq!(compute(3), expected);
    }

    #[test]
    fn matches_the_closed_form() {
        // sin i cos i = sin(2i)/2, and Σ_{i<n} sin(2i) = sin(n-1)·sin(n)/sin(1).
        let n = 1_000_000u32;
        let closed = 0.5 * (f64::from(n - 1)).sin() * f64::from(n).sin() / 1f64.sin();
        assert!(
            (compute(n) - closed).abs() < 1e-9,
            "{} vs {closed}",
            compute(n)
        );
    }
}
