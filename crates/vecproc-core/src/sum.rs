//! Neumaier compensated summation that never produces NaN.
//!
//! Plain left-to-right summation loses small terms next to large ones, and
//! Kahan's variant still sums `[1e16, 1.0, -1e16]` to 0.0. Neumaier's
//! improvement (Kahan–Babuška) carries the lost low-order part whichever
//! operand is larger, so that example sums to exactly 1.0.
//!
//! Overflow is handled rather than propagated: if a partial sum leaves the
//! f64 range, [`NeumaierSum`] notes it and [`sum_of`] recomputes on values
//! scaled by 2⁻⁶⁴ (exact for all but subnormal inputs), so the result is ±inf
//! only when the exact sum really is outside the range, and never NaN.

/// 2⁻⁶⁴: the scale used to re-sum values whose partial sums overflowed.
const DOWN: f64 = 1.0 / 18_446_744_073_709_551_616.0;
/// 2⁶⁴.
const UP: f64 = 18_446_744_073_709_551_616.0;

/// A running compensated sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NeumaierSum {
    sum: f64,
    compensation: f64,
    overflowed: bool,
}

impl NeumaierSum {
    /// An empty sum (0.0).
    pub const fn new() -> Self {
        Self {
            sum: 0.0,
            compensation: 0.0,
            overflowed: false,
        }
    }

    /// Adds one finite value.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if self.overflowed {
            return;
        }
        let t = self.sum + x;
        if !t.is_finite() {
            self.overflowed = true;
            return;
        }
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// Whether a partial sum left the f64 range; [`NeumaierSum::value`] is then
    /// meaningless and the caller must re-sum with [`sum_of`].
    pub fn overflowed(&self) -> bool {
        self.overflowed || !self.compensation.is_finite()
    }

    /// The compensated total. Only meaningful when not [`overflowed`](Self::overflowed).
    pub fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// The compensated sum of finite values: ±inf only when the exact sum is
/// outside the f64 range, never NaN.
pub fn sum_of(values: &[f64]) -> f64 {
    let mut acc = NeumaierSum::new();
    for &x in values {
        acc.add(x);
    }
    if !acc.overflowed() {
        return acc.value();
    }
    scaled_sum(values)
}

/// Sum of `values` computed on values scaled by 2⁻⁶⁴ and scaled back up.
pub(crate) fn scaled_sum(values: &[f64]) -> f64 {
    let mut acc = NeumaierSum::new();
    for &x in values {
        acc.add(x * DOWN);
    }
    debug_assert!(!acc.overflowed());
    acc.value() * UP
}

/// Mean of finite values computed from the scaled sum: always finite.
pub(crate) fn scaled_mean(values: &[f64]) -> f64 {
    let mut acc = NeumaierSum::new();
    for &x in values {
        acc.add(x * DOWN);
    }
    acc.value() / values.len() as f64 * UP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensates_where_kahan_fails() {
        assert_eq!(sum_of(&[1e16, 1.0, -1e16]), 1.0);
    }

    #[test]
    fn tenths_sum_exactly_as_rounded_decimal() {
        let tenths = vec![0.1; 10];
        assert_eq!(sum_of(&tenths), 1.0);
        let naive: f64 = tenths.iter().sum();
        assert_ne!(naive, 1.0, "the naive sum is the motivating bug");
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(sum_of(&[]), 0.0);
    }

    #[test]
    fn overflowing_partial_sum_recovers() {
        // The first two overflow; the exact total is 1e308.
        assert_eq!(sum_of(&[1e308, 1e308, -1e308]), 1e308);
    }

    #[test]
    fn overflowing_total_is_infinite_not_nan() {
        assert_eq!(sum_of(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum_of(&[-f64::MAX, -f64::MAX]), f64::NEG_INFINITY);
    }
}
