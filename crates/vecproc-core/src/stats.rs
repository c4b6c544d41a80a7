//! Summary statistics that are exact to what a user expects.
//!
//! Methods, chosen so results match NumPy and R on ordinary data and stay
//! defined on extreme data:
//!
//! - **Mean**: the compensated sum divided by n (when the sum overflows, the
//!   sum of values scaled by 2⁻⁶⁴), clamped into `[min, max]`, so the mean of
//!   identical values is that value and the mean is always finite.
//! - **Variance**: *population* variance (divide by n, NumPy's default) in
//!   `variance`/`stddev`; *sample* variance (divide by n − 1) in
//!   `sample_variance`/`sample_stddev`, `None` below two values. Deviations
//!   are halved and scaled by a power of two before squaring, so no
//!   intermediate overflows; a variance whose exact value exceeds the f64
//!   range is +inf; the population standard deviation is always finite (at
//!   most half the range), the sample one is +inf only when its exact value
//!   exceeds f64::MAX (`[MAX, MAX, −MAX]`: 1.15 × MAX).
//! - **Quantiles** (median, p25, p75, p90, p99): linear interpolation between
//!   closest ranks, Hyndman & Fan type 7 (NumPy `linear`, R's default,
//!   `PERCENTILE.INC`): h = (n − 1)·q, result x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]).
//!
//! Every `Option` is `None` exactly when there are no values. Nothing here
//! returns NaN or panics for finite input.

use serde::Serialize;

use crate::sum::{scaled_mean, NeumaierSum};

/// Summary statistics of a set of finite values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Statistics {
    /// Number of values.
    pub count: u64,
    /// Compensated sum (0.0 when empty).
    pub sum: f64,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Population variance (divide by n).
    pub variance: Option<f64>,
    /// Population standard deviation.
    pub stddev: Option<f64>,
    /// Sample variance (divide by n − 1); `None` below two values.
    pub sample_variance: Option<f64>,
    /// Sample standard deviation; `None` below two values.
    pub sample_stddev: Option<f64>,
    /// 50th percentile.
    pub median: Option<f64>,
    /// 25th percentile.
    pub p25: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Statistics {
    /// Statistics of no values: count 0, sum 0.0, everything else `None`.
    pub const EMPTY: Statistics = Statistics {
        count: 0,
        sum: 0.0,
        mean: None,
        min: None,
        max: None,
        variance: None,
        stddev: None,
        sample_variance: None,
        sample_stddev: None,
        median: None,
        p25: None,
        p75: None,
        p90: None,
        p99: None,
    };
}

/// Read access to values in ascending order, without copying a vector that
/// is held in descending order.
#[derive(Clone, Copy)]
pub(crate) enum Ascending<'a> {
    /// The slice is ascending.
    Forward(&'a [f64]),
    /// The slice is descending.
    Reversed(&'a [f64]),
}

impl Ascending<'_> {
    fn len(&self) -> usize {
        match self {
            Ascending::Forward(v) | Ascending::Reversed(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> f64 {
        match self {
            Ascending::Forward(v) => v[i],
            Ascending::Reversed(v) => v[v.len() - 1 - i],
        }
    }
}

/// Type-7 quantile of ascending data; `None` when empty. `q` must be in [0, 1].
pub(crate) fn quantile_sorted(data: Ascending<'_>, q: f64) -> Option<f64> {
    let n = data.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q;
    let lo = (h.floor() as usize).min(n - 1);
    let frac = h - lo as f64;
    let a = data.get(lo);
    if frac == 0.0 || lo + 1 >= n {
        return Some(a);
    }
    let b = data.get(lo + 1);
    let diff = b - a;
    let value = if diff.is_finite() {
        a + frac * diff
    } else {
        // b - a overflowed (values near ±f64::MAX): interpolate without it.
        a * (1.0 - frac) + b * frac
    };
    Some(value.clamp(a, b))
}

/// 2^k for k in [-1022, 1023], built from its bits.
fn pow2(k: i32) -> f64 {
    let k = k.clamp(-1022, 1023);
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Smallest power of two at least `x` (for finite positive `x`), capped at 2¹⁰²³.
fn pow2_at_least(x: f64) -> f64 {
    if x < f64::MIN_POSITIVE {
        return pow2(-1022);
    }
    let exponent = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    pow2(exponent + 1)
}

/// Moments of the values around their mean.
struct Moments {
    mean: f64,
    /// Σ(x − mean)²/n, or +inf when beyond range.
    variance: f64,
    stddev: f64,
    sample_variance: Option<f64>,
    sample_stddev: Option<f64>,
}

/// Mean and variances of non-empty finite `values`, given their compensated
/// sum (possibly ±inf after overflow) and their extremes.
fn moments(values: &[f64], sum: f64, min: f64, max: f64) -> Moments {
    let n = values.len() as f64;
    let first = first_mean(values, sum, min, max);
    // Halved deviations never overflow; scaling by a power of two is exact.
    let half = first * 0.5;
    let widest = (min * 0.5 - half).abs().max((max * 0.5 - half).abs());
    if widest == 0.0 {
        let sample = (values.len() > 1).then_some(0.0);
        return Moments {
            mean: first,
            variance: 0.0,
            stddev: 0.0,
            sample_variance: sample,
            sample_stddev: sample,
        };
    }
    let scale = pow2_at_least(widest);
    let mut linear = NeumaierSum::new();
    let mut squares = NeumaierSum::new();
    for &x in values {
        let r = (x * 0.5 - half) / scale;
        linear.add(r);
        squares.add(r * r);
    }
    // |r| ≤ 2 and n is far below 2^1000, so neither sum can overflow.
    let (c, q) = (linear.value(), squares.value());
    // Corrected two-pass: Σ(x − m)² − (Σ(x − m))²/n, in units of (2·scale)².
    let spread = (q - c * c / n).max(0.0);
    // Multiply by the scale step by step: 2·scale alone may overflow.
    let variance_of = |unit: f64| unit * scale * scale * 4.0;
    let stddev_of = |unit: f64| scale * (2.0 * unit.sqrt());
    let unit = spread / n;
    let (variance, stddev) = (variance_of(unit), stddev_of(unit));
    let (sample_variance, sample_stddev) = if values.len() > 1 {
        let unit = spread / (n - 1.0);
        (Some(variance_of(unit)), Some(stddev_of(unit)))
    } else {
        (None, None)
    };
    Moments {
        mean: first,
        variance,
        stddev,
        sample_variance,
        sample_stddev,
    }
}

/// Mean of finite values given their compensated sum; `None` when empty.
/// One pass for the extremes, no second pass over deviations.
pub(crate) fn mean_of(values: &[f64], sum: f64) -> Option<f64> {
    let (&first, rest) = values.split_first()?;
    let (min, max) = rest
        .iter()
        .fold((first, first), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    Some(first_mean(values, sum, min, max))
}

/// The compensated sum over n (or, if the sum overflowed, the scaled
/// mean), clamped into `[min, max]`.
fn first_mean(values: &[f64], sum: f64, min: f64, max: f64) -> f64 {
    let n = values.len() as f64;
    if sum.is_finite() {
        sum / n
    } else {
        scaled_mean(values)
    }
    .clamp(min, max)
}

/// Full statistics of finite `values` (in any order) given their compensated
/// sum and the same values in ascending order.
pub(crate) fn statistics(values: &[f64], sum: f64, ascending: Ascending<'_>) -> Statistics {
    let n = values.len();
    if n == 0 {
        return Statistics::EMPTY;
    }
    let (min, max) = (ascending.get(0), ascending.get(n - 1));
    let m = moments(values, sum, min, max);
    let q = |p| quantile_sorted(ascending, p);
    Statistics {
        count: n as u64,
        sum,
        mean: Some(m.mean),
        min: Some(min),
        max: Some(max),
        variance: Some(m.variance),
        stddev: Some(m.stddev),
        sample_variance: m.sample_variance,
        sample_stddev: m.sample_stddev,
        median: q(0.5),
        p25: q(0.25),
        p75: q(0.75),
        p90: q(0.9),
        p99: q(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sum::sum_of;

    fn stats_of(values: &[f64]) -> Statistics {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        statistics(values, sum_of(values), Ascending::Forward(&sorted))
    }

    #[test]
    fn small_example_matches_numpy() {
        let s = stats_of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.sum, 10.0);
        assert_eq!(s.mean, Some(2.5));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.variance, Some(1.25));
        assert_eq!(s.sample_variance, Some(5.0 / 3.0));
        assert_eq!(s.stddev, Some(1.25f64.sqrt()));
        assert_eq!(s.median, Some(2.5));
        assert_eq!(s.p25, Some(1.75));
        assert_eq!(s.p75, Some(3.25));
        assert!((s.p90.unwrap() - 3.7).abs() < 1e-15);
        assert!((s.p99.unwrap() - 3.97).abs() < 1e-15);
    }

    #[test]
    fn empty_is_all_none() {
        assert_eq!(stats_of(&[]), Statistics::EMPTY);
    }

    #[test]
    fn single_value() {
        let s = stats_of(&[7.5]);
        assert_eq!(s.mean, Some(7.5));
        assert_eq!(s.variance, Some(0.0));
        assert_eq!(s.sample_variance, None);
        assert_eq!(s.median, Some(7.5));
        assert_eq!(s.p99, Some(7.5));
    }

    #[test]
    fn identical_values_have_that_mean_and_no_spread() {
        let s = stats_of(&[0.1, 0.1, 0.1]);
        assert_eq!(s.mean, Some(0.1));
        assert_eq!(s.variance, Some(0.0));
    }

    #[test]
    fn cancellation_example() {
        let s = stats_of(&[1e16, 1.0, -1e16]);
        assert_eq!(s.sum, 1.0);
        assert_eq!(s.mean, Some(1.0 / 3.0));
    }

    #[test]
    fn large_offset_variance_is_stable() {
        // The textbook failure of the one-pass E[x²] − E[x]² formula.
        let s = stats_of(&[1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0]);
        assert_eq!(s.variance, Some(22.5));
        assert_eq!(s.sample_variance, Some(30.0));
    }

    #[test]
    fn extremes_never_give_nan() {
        let s = stats_of(&[f64::MAX, -f64::MAX, f64::MAX, -f64::MAX]);
        assert_eq!(s.sum, 0.0);
        assert_eq!(s.mean, Some(0.0));
        assert_eq!(s.variance, Some(f64::INFINITY));
        let sd = s.stddev.unwrap();
        assert!(
            sd.is_finite() && (sd / f64::MAX - 1.0).abs() < 1e-12,
            "{sd}"
        );
        assert_eq!(s.median, Some(0.0));
        for v in [s.p25, s.p75, s.p90, s.p99] {
            assert!(!v.unwrap().is_nan());
        }
    }

    #[test]
    fn overflowing_sum_still_gives_finite_mean() {
        let s = stats_of(&[f64::MAX, f64::MAX]);
        assert_eq!(s.sum, f64::INFINITY);
        assert_eq!(s.mean, Some(f64::MAX));
        assert_eq!(s.variance, Some(0.0));
    }

    #[test]
    fn subnormals() {
        let tiny = f64::from_bits(1);
        let s = stats_of(&[tiny, tiny, 0.0]);
        assert!(s.mean.unwrap() >= 0.0 && s.mean.unwrap() <= tiny);
        assert!(s.variance.unwrap() >= 0.0);
    }

    #[test]
    fn quantiles_of_a_descending_view() {
        let desc = [4.0, 3.0, 2.0, 1.0];
        assert_eq!(
            quantile_sorted(Ascending::Reversed(&desc), 0.25),
            Some(1.75)
        );
        assert_eq!(quantile_sorted(Ascending::Reversed(&desc), 0.0), Some(1.0));
        assert_eq!(quantile_sorted(Ascending::Reversed(&desc), 1.0), Some(4.0));
    }

    #[test]
    fn pow2_bounds() {
        assert_eq!(pow2_at_least(1.0), 2.0);
        assert_eq!(pow2_at_least(0.75), 1.0);
        assert_eq!(pow2_at_least(f64::MAX), pow2(1023));
        assert_eq!(pow2_at_least(f64::from_bits(1)), pow2(-1022));
    }
}
