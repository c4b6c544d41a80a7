//! [`Vector`]: the seed's `VectorProcessor`, holding finite values only.

use crate::error::VectorError;
use crate::stats::{self, Ascending, Statistics};
use crate::sum::{sum_of, NeumaierSum};

/// Order for [`Vector::sort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// What is known about the order of the held values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Unsorted,
    Sorted(SortOrder),
}

/// A growable vector of finite f64 values with a running compensated sum.
///
/// Invariant: every stored value is finite; inputs with NaN or an infinity
/// are refused whole, so sorting and statistics never meet one.
#[derive(Debug, Clone)]
pub struct Vector {
    values: Vec<f64>,
    held: Held,
    sum: NeumaierSum,
}

impl Default for Vector {
    fn default() -> Self {
        Self::new()
    }
}

impl Vector {
    /// An empty vector.
    pub fn new() -> Self {
        Self {
            values: Vec::new(),
            held: Held::Sorted(SortOrder::Ascending),
            sum: NeumaierSum::new(),
        }
    }

    /// Appends one value; NaN and infinities give [`VectorError::NonFinite`]`(0)`.
    pub fn add_value(&mut self, value: f64) -> Result<(), VectorError> {
        self.add_values(&[value])
    }

    /// Appends all of `values`, or none of them if any is not finite (the
    /// error names the first offending index).
    pub fn add_values(&mut self, values: &[f64]) -> Result<(), VectorError> {
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(VectorError::NonFinite(i as u64));
        }
        if values.is_empty() {
            return Ok(());
        }
        self.values.reserve(values.len());
        for &x in values {
            self.sum.add(x);
        }
        self.values.extend_from_slice(values);
        self.held = Held::Unsorted;
        Ok(())
    }

    /// [`Vector::add_values`] taking the values by value: an empty vector
    /// keeps them where they are instead of copying, so a vector filled
    /// once (a component call hands over a list it owns) needs its values'
    /// memory once, not twice.
    pub fn add_values_owned(&mut self, values: Vec<f64>) -> Result<(), VectorError> {
        if !self.values.is_empty() {
            return self.add_values(&values);
        }
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(VectorError::NonFinite(i as u64));
        }
        if values.is_empty() {
            return Ok(());
        }
        for &x in &values {
            self.sum.add(x);
        }
        self.values = values;
        self.held = Held::Unsorted;
        Ok(())
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no values are held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Compensated sum; ±inf only if the exact sum is outside the f64 range.
    pub fn sum(&self) -> f64 {
        if self.sum.overflowed() {
            sum_of(&self.values)
        } else {
            self.sum.value()
        }
    }

    /// Arithmetic mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        stats::mean_of(&self.values, self.sum())
    }

    /// Sorts the held values in place (an unstable sort by IEEE total order,
    /// which for finite values is numeric order with −0.0 before +0.0).
    pub fn sort(&mut self, order: SortOrder) {
        match (self.held, order) {
            (Held::Sorted(current), wanted) if current == wanted => {}
            (Held::Sorted(_), _) => self.values.reverse(),
            (Held::Unsorted, SortOrder::Ascending) => {
                self.values.sort_unstable_by(f64::total_cmp);
            }
            (Held::Unsorted, SortOrder::Descending) => {
                self.values.sort_unstable_by(|a, b| b.total_cmp(a));
            }
        }
        self.held = Held::Sorted(order);
    }

    /// Sorts in place and returns all values in that order.
    pub fn sorted(&mut self, order: SortOrder) -> &[f64] {
        self.sort(order);
        &self.values
    }

    /// All values in their current order.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }

    /// Up to `limit` values from `offset` in the current order; empty past the end.
    pub fn read(&self, offset: u64, limit: u32) -> &[f64] {
        let len = self.values.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
        let end = start.saturating_add(limit as usize).min(len);
        &self.values[start..end]
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Summary statistics (see [`crate::stats`] for the methods). Does not
    /// change the held order; sorts a copy when the values are unsorted.
    pub fn statistics(&self) -> Statistics {
        let sum = self.sum();
        match self.held {
            Held::Sorted(SortOrder::Ascending) => {
                stats::statistics(&self.values, sum, Ascending::Forward(&self.values))
            }
            Held::Sorted(SortOrder::Descending) => {
                stats::statistics(&self.values, sum, Ascending::Reversed(&self.values))
            }
            Held::Unsorted => {
                let mut copy = self.values.clone();
                copy.sort_unstable_by(f64::total_cmp);
                stats::statistics(&self.values, sum, Ascending::Forward(&copy))
            }
        }
    }

    /// One type-7 quantile, `q` in `[0, 1]`; `Ok(None)` when empty.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>, VectorError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(VectorError::InvalidQuantile(q));
        }
        Ok(match self.held {
            Held::Sorted(SortOrder::Ascending) => {
                stats::quantile_sorted(Ascending::Forward(&self.values), q)
            }
            Held::Sorted(SortOrder::Descending) => {
                stats::quantile_sorted(Ascending::Reversed(&self.values), q)
            }
            Held::Unsorted => {
                let mut copy = self.values.clone();
                copy.sort_unstable_by(f64::total_cmp);
                stats::quantile_sorted(Ascending::Forward(&copy), q)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_workflow() {
        let mut v = Vector::new();
        for x in [3.0, 1.0, 2.0] {
            v.add_value(x).unwrap();
        }
        assert_eq!(v.len(), 3);
        assert_eq!(v.sum(), 6.0);
        assert_eq!(v.mean(), Some(2.0));
        v.sort(SortOrder::Ascending);
        assert_eq!(v.as_slice(), &[1.0, 2.0, 3.0]);
        assert_eq!(v.sorted(SortOrder::Descending), &[3.0, 2.0, 1.0]);
        assert_eq!(v.read(1, 5), &[2.0, 1.0]);
        assert_eq!(v.read(10, 5), &[] as &[f64]);
        assert_eq!(v.read(u64::MAX, u32::MAX), &[] as &[f64]);
        v.clear();
        assert!(v.is_empty());
        assert_eq!(v.mean(), None);
        assert_eq!(v.sum(), 0.0);
    }

    #[test]
    fn non_finite_is_refused_whole() {
        let mut v = Vector::new();
        assert_eq!(v.add_value(f64::NAN), Err(VectorError::NonFinite(0)));
        assert_eq!(
            v.add_values(&[1.0, 2.0, f64::INFINITY, f64::NAN]),
            Err(VectorError::NonFinite(2))
        );
        assert!(v.is_empty(), "nothing from a refused call is stored");
        assert_eq!(
            v.add_value(f64::NEG_INFINITY),
            Err(VectorError::NonFinite(0))
        );
    }

    #[test]
    fn compensated_sum_example() {
        let mut v = Vector::new();
        v.add_values(&[1e16, 1.0, -1e16]).unwrap();
        assert_eq!(v.sum(), 1.0);
    }

    #[test]
    fn statistics_do_not_reorder() {
        let mut v = Vector::new();
        v.add_values(&[3.0, 1.0, 2.0]).unwrap();
        let s = v.statistics();
        assert_eq!(s.median, Some(2.0));
        assert_eq!(v.as_slice(), &[3.0, 1.0, 2.0]);
        v.sort(SortOrder::Descending);
        assert_eq!(v.statistics(), s);
    }

    #[test]
    fn quantile_checks_range() {
        let mut v = Vector::new();
        assert_eq!(v.quantile(0.5), Ok(None));
        v.add_values(&[1.0, 2.0]).unwrap();
        assert_eq!(v.quantile(0.5), Ok(Some(1.5)));
        assert_eq!(v.quantile(1.5), Err(VectorError::InvalidQuantile(1.5)));
        assert!(v.quantile(f64::NAN).is_err());
    }

    #[test]
    fn overflow_then_more_values() {
        let mut v = Vector::new();
        v.add_values(&[f64::MAX, f64::MAX]).unwrap();
        assert_eq!(v.sum(), f64::INFINITY);
        v.add_values(&[-f64::MAX, -f64::MAX]).unwrap();
        assert_eq!(v.sum(), 0.0);
    }

    #[test]
    fn owned_values_are_kept_without_a_copy() {
        let values = vec![3.0, 1.0, 2.0];
        let at = values.as_ptr();
        let mut v = Vector::new();
        v.add_values_owned(values).unwrap();
        assert_eq!(v.as_slice().as_ptr(), at, "the values were copied");
        // A second batch appends, a refused one changes nothing.
        v.add_values_owned(vec![4.0]).unwrap();
        assert_eq!(
            v.add_values_owned(vec![5.0, f64::NAN]),
            Err(VectorError::NonFinite(1))
        );
        assert_eq!(v.as_slice(), &[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(v.sum(), 10.0);
    }

    proptest! {
        #[test]
        fn owned_and_borrowed_fills_agree(
            first in prop::collection::vec(-1e300f64..1e300, 0..100),
            second in prop::collection::vec(-1e6f64..1e6, 0..100),
        ) {
            let (mut a, mut b) = (Vector::new(), Vector::new());
            a.add_values(&first).unwrap();
            a.add_values(&second).unwrap();
            b.add_values_owned(first).unwrap();
            b.add_values_owned(second).unwrap();
            prop_assert_eq!(a.statistics(), b.statistics());
            prop_assert_eq!(a.sorted(SortOrder::Ascending), b.sorted(SortOrder::Ascending));
        }

        #[test]
        fn sorted_is_an_ordered_permutation(values in prop::collection::vec(-1e300f64..1e300, 0..200)) {
            let mut v = Vector::new();
            v.add_values(&values).unwrap();
            let asc = v.sorted(SortOrder::Ascending).to_vec();
            prop_assert!(asc.windows(2).all(|w| w[0] <= w[1]));
            let mut expected = values.clone();
            expected.sort_by(f64::total_cmp);
            prop_assert_eq!(&asc, &expected);
            let desc = v.sorted(SortOrder::Descending).to_vec();
            prop_assert!(desc.iter().rev().eq(asc.iter()));
        }

        #[test]
        fn statistics_are_sane(values in prop::collection::vec(-1e6f64..1e6, 1..300)) {
            let mut v = Vector::new();
            v.add_values(&values).unwrap();
            let s = v.statistics();
            let (min, max) = (s.min.unwrap(), s.max.unwrap());
            let mean = s.mean.unwrap();
            prop_assert!(min <= mean && mean <= max);
            let naive_mean = values.iter().sum::<f64>() / values.len() as f64;
            prop_assert!((mean - naive_mean).abs() <= 1e-9 * (1.0 + naive_mean.abs()));
            let naive_var = values.iter().map(|x| (x - naive_mean).powi(2)).sum::<f64>() / values.len() as f64;
            prop_assert!((s.variance.unwrap() - naive_var).abs() <= 1e-9 * (1.0 + naive_var));
            let qs = [s.p25, s.median, s.p75, s.p90, s.p99].map(Option::unwrap);
            prop_assert!(min <= qs[0]);
            prop_assert!(qs.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(qs[4] <= max);
        }

        #[test]
        fn extreme_values_never_nan(values in prop::collection::vec(prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO, 1..50)) {
            let mut v = Vector::new();
            v.add_values(&values).unwrap();
            let s = v.statistics();
            prop_assert!(!s.sum.is_nan());
            for x in [s.mean, s.min, s.max, s.variance, s.stddev, s.median, s.p25, s.p75, s.p90, s.p99] {
                prop_assert!(!x.unwrap().is_nan());
            }
            prop_assert!(s.stddev.unwrap().is_finite());
            prop_assert!(s.mean.unwrap().is_finite());
        }
    }
}
