//! [`State`]: the processor behind the JavaScript class, free of
//! wasm-bindgen so its rules are unit-tested natively.
//!
//! It adds one thing to [`vecproc_core::Vector`]: a generation that every
//! change of the held values moves, so that the zero-copy sorted view can be
//! handed out only for values that are sorted now, and so JavaScript can tell
//! a view it kept from a view of the current values.

use vecproc_core::{SortOrder, Statistics, Vector, VectorError};

/// Why the sorted view cannot be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// The values changed (or were never sorted) since the last `sort`.
    NotSorted,
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::NotSorted => f.write_str(
                "the values are not sorted: they changed since the last sort() (or were never \
                 sorted); call sort() before sorted_view()",
            ),
        }
    }
}

/// A vector of finite values with a change counter.
#[derive(Debug, Default)]
pub struct State {
    vector: Vector,
    /// Moves on every change of the held values or of their order.
    generation: u32,
    /// The generation at which the values were last sorted, and the order.
    sorted_at: Option<(u32, SortOrder)>,
}

impl State {
    /// An empty processor.
    pub fn new() -> Self {
        Self::default()
    }

    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Appends one value; NaN and infinities are refused and change nothing.
    pub fn add_value(&mut self, value: f64) -> Result<(), VectorError> {
        self.vector.add_value(value)?;
        self.changed();
        Ok(())
    }

    /// Appends all of `values`, or none if any is not finite (the error names
    /// the first offending index). Appending nothing changes nothing.
    pub fn add_values(&mut self, values: &[f64]) -> Result<(), VectorError> {
        self.vector.add_values(values)?;
        if !values.is_empty() {
            self.changed();
        }
        Ok(())
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.vector.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.vector.is_empty()
    }

    /// Compensated sum.
    pub fn sum(&self) -> f64 {
        self.vector.sum()
    }

    /// Mean; `None` when empty (the article's version answers 0).
    pub fn mean(&self) -> Option<f64> {
        self.vector.mean()
    }

    /// Sorts in place. Sorting values already sorted in that order changes
    /// nothing (a view stays current); any other sort moves the generation.
    pub fn sort(&mut self, order: SortOrder) {
        if self.sorted_at == Some((self.generation, order)) {
            return;
        }
        self.vector.sort(order);
        self.changed();
        self.sorted_at = Some((self.generation, order));
    }

    /// The values in sorted order, if they are sorted now: what the zero-copy
    /// view lays over. Never allocates, so memory cannot grow while a view is
    /// being made.
    pub fn sorted_values(&self) -> Result<&[f64], ViewError> {
        match self.sorted_at {
            Some((generation, _)) if generation == self.generation => Ok(self.vector.as_slice()),
            _ => Err(ViewError::NotSorted),
        }
    }

    /// A sorted copy in `order` (sorting the held values first).
    pub fn sorted_copy(&mut self, order: SortOrder) -> Vec<f64> {
        self.sort(order);
        self.vector.as_slice().to_vec()
    }

    /// Summary statistics.
    pub fn statistics(&self) -> Statistics {
        self.vector.statistics()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        if !self.vector.is_empty() || self.sorted_at.is_some() {
            self.vector.clear();
            self.changed();
            self.sorted_at = None;
        }
    }

    /// The change counter: equal readings mean the values and their order
    /// did not change in between.
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_exists_only_for_values_sorted_now() {
        let mut s = State::new();
        assert_eq!(s.sorted_values(), Err(ViewError::NotSorted));
        s.add_values(&[3.0, -1.0, 2.0]).unwrap();
        assert_eq!(s.sorted_values(), Err(ViewError::NotSorted));
        s.sort(SortOrder::Ascending);
        assert_eq!(s.sorted_values().unwrap(), [-1.0, 2.0, 3.0]);
        s.add_value(0.5).unwrap();
        assert_eq!(s.sorted_values(), Err(ViewError::NotSorted));
        s.sort(SortOrder::Descending);
        assert_eq!(s.sorted_values().unwrap(), [3.0, 2.0, 0.5, -1.0]);
        s.clear();
        assert_eq!(s.sorted_values(), Err(ViewError::NotSorted));
    }

    #[test]
    fn every_change_moves_the_generation_and_nothing_else_does() {
        let mut s = State::new();
        let g0 = s.generation();
        s.add_values(&[]).unwrap();
        assert!(s.add_value(f64::NAN).is_err());
        assert_eq!(
            s.add_values(&[1.0, f64::INFINITY]),
            Err(VectorError::NonFinite(1))
        );
        assert_eq!(s.len(), 0);
        assert_eq!(s.generation(), g0, "refused or empty input changes nothing");
        s.add_value(2.0).unwrap();
        let g1 = s.generation();
        assert_ne!(g1, g0);
        s.sort(SortOrder::Ascending);
        let g2 = s.generation();
        assert_ne!(g2, g1);
        s.sort(SortOrder::Ascending);
        let _ = s.sum();
        let _ = s.mean();
        let _ = s.statistics();
        assert_eq!(
            s.generation(),
            g2,
            "reads and a repeated sort change nothing"
        );
        s.sort(SortOrder::Descending);
        assert_ne!(s.generation(), g2, "reversing the order is a change");
    }

    #[test]
    fn semantics_match_the_wit_interface() {
        let mut s = State::new();
        assert_eq!(s.mean(), None);
        s.add_values(&[1e308, 1e308, -1e308]).unwrap();
        // Compensated: the exact sum, not an overflow.
        assert_eq!(s.sum(), 1e308);
        assert_eq!(s.sorted_copy(SortOrder::Ascending), [-1e308, 1e308, 1e308]);
        assert_eq!(s.statistics().count, 3);
    }
}
