//! The article's browser path, as it is written: the vector processor as a
//! `wasm-bindgen` module for `wasm32-unknown-unknown`, bound by
//! `wasm-bindgen --target web` (browsers) and `--target nodejs` (Node) into
//! `target/web/` by `cargo xtask build`.
//!
//! The JavaScript class keeps the article's names (`new VectorProcessor()`,
//! `add_value`, `sum`, `mean`, `sort`) with the semantics of the WIT
//! interface the component exports: NaN and infinities are refused with a JS
//! `Error` (the article's `partial_cmp().unwrap()` panics), `mean()` of an
//! empty vector is `undefined` (the article answers 0), sums are compensated.
//! It adds bulk `add_values(Float64Array)`, `statistics()`, a sorted copy
//! (`sorted()`), `clear()`, and in place of the article's raw
//! `get_sorted_ptr`, [`VectorProcessor::sorted_view`]: a `Float64Array` laid
//! over the module's memory, with no copy.
//!
//! # When a view is valid
//!
//! A view reads the processor's own storage, so it is only as good as that
//! storage: it goes stale when the values change (they move or are
//! overwritten) and it is detached, with `length` 0, when the module's memory
//! grows (WebAssembly replaces the `ArrayBuffer`). The API makes misuse hard:
//! - the view is handed out only for values that are sorted now (after
//!   `sort()`, before any change); otherwise `sorted_view()` throws;
//! - `sorted_view()` allocates nothing, so memory cannot grow while the view
//!   is being made;
//! - `generation()` moves on every change: a view taken at generation `g` is
//!   current while `generation() === g` (and then its length is `len()`).
//!
//! All logic is in [`state`] (and `vecproc-core`), tested natively; this file
//! only converts between JavaScript and Rust.

pub mod state;

use js_sys::{Float64Array, Object, Reflect};
use state::State;
use vecproc_core::SortOrder;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const STATISTICS_TS: &str = r#"
/** Summary statistics; the optional fields are undefined for no values. */
export interface Statistics {
  count: number;
  sum: number;
  mean?: number;
  min?: number;
  max?: number;
  variance?: number;
  stddev?: number;
  sample_variance?: number;
  sample_stddev?: number;
  median?: number;
  p25?: number;
  p75?: number;
  p90?: number;
  p99?: number;
}
"#;

/// The vector processor: finite `f64` values, with statistics, sorting and a
/// zero-copy view of the sorted values.
#[wasm_bindgen]
#[derive(Default)]
pub struct VectorProcessor {
    state: State,
}

fn order(order: Option<String>) -> Result<SortOrder, JsError> {
    match order.as_deref() {
        None | Some("asc") => Ok(SortOrder::Ascending),
        Some("desc") => Ok(SortOrder::Descending),
        Some(other) => Err(JsError::new(&format!(
            "sort order {other:?} is not \"asc\" or \"desc\""
        ))),
    }
}

#[wasm_bindgen]
impl VectorProcessor {
    /// An empty processor.
    #[wasm_bindgen(constructor)]
    pub fn new() -> VectorProcessor {
        VectorProcessor::default()
    }

    /// Appends one value; throws for NaN or an infinity (nothing is added).
    pub fn add_value(&mut self, value: f64) -> Result<(), JsError> {
        self.state
            .add_value(value)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Appends every value of `values` (copied in once), or none if any is
    /// not finite: the error names the first offending index.
    pub fn add_values(&mut self, values: &[f64]) -> Result<(), JsError> {
        self.state
            .add_values(values)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Compensated sum (0 when empty).
    pub fn sum(&self) -> f64 {
        self.state.sum()
    }

    /// Arithmetic mean; `undefined` when empty.
    pub fn mean(&self) -> Option<f64> {
        self.state.mean()
    }

    /// Sorts the values in place: `"asc"` (the default) or `"desc"`.
    pub fn sort(&mut self, order: Option<String>) -> Result<(), JsError> {
        self.state.sort(self::order(order)?);
        Ok(())
    }

    /// The sorted values as a `Float64Array` over the module's memory, with
    /// no copy. Throws unless the values are sorted now (call `sort()`
    /// first). See the crate documentation for how long a view stays valid.
    #[allow(unsafe_code)]
    pub fn sorted_view(&self) -> Result<Float64Array, JsError> {
        let values = self
            .state
            .sorted_values()
            .map_err(|e| JsError::new(&e.to_string()))?;
        // SAFETY: `Float64Array::view` is unsafe because the view aliases
        // Rust memory that Rust may later move, free or overwrite, and
        // because a memory growth detaches it. Neither can happen during
        // this call: `sorted_values` borrows the state without allocating,
        // and nothing runs between taking the slice and returning the view.
        // Afterwards wasm-bindgen's borrow flag keeps `&mut self` methods
        // from running while this `&self` call is active, and the rules in
        // the crate documentation (generation, detached length) tell
        // JavaScript when a kept view no longer describes the values; a
        // stale view reads old or reused numbers, never outside the memory.
        Ok(unsafe { Float64Array::view(values) })
    }

    /// A sorted copy of the values (`"asc"` by default or `"desc"`), which
    /// stays valid whatever happens to the processor.
    pub fn sorted(&mut self, order: Option<String>) -> Result<Vec<f64>, JsError> {
        Ok(self.state.sorted_copy(self::order(order)?))
    }

    /// Summary statistics as a plain object (see the `Statistics` type).
    #[wasm_bindgen(unchecked_return_type = "Statistics")]
    pub fn statistics(&self) -> Result<JsValue, JsError> {
        let s = self.state.statistics();
        let object = Object::new();
        let set = |key: &str, value: Option<f64>| {
            let value = value.map_or(JsValue::UNDEFINED, JsValue::from_f64);
            Reflect::set(&object, &JsValue::from_str(key), &value).map(|_| ())
        };
        let fields = [
            ("count", Some(s.count as f64)),
            ("sum", Some(s.sum)),
            ("mean", s.mean),
            ("min", s.min),
            ("max", s.max),
            ("variance", s.variance),
            ("stddev", s.stddev),
            ("sample_variance", s.sample_variance),
            ("sample_stddev", s.sample_stddev),
            ("median", s.median),
            ("p25", s.p25),
            ("p75", s.p75),
            ("p90", s.p90),
            ("p99", s.p99),
        ];
        for (key, value) in fields {
            set(key, value).map_err(|_| JsError::new("building the statistics object"))?;
        }
        Ok(object.into())
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.state.clear();
    }

    /// A counter that moves on every change of the values or their order: a
    /// view taken at generation `g` describes the values while
    /// `generation() === g`.
    pub fn generation(&self) -> u32 {
        self.state.generation()
    }
}

/// Bytes of linear memory the module has now: a view made before this grew
/// is detached (its `length` is 0).
#[wasm_bindgen]
pub fn memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// The seed's kernel, Σ sin(i)·cos(i) for i in 0..n (as the component's
/// `compute`).
#[wasm_bindgen]
pub fn compute(n: u32) -> f64 {
    vecproc_core::compute(n)
}
