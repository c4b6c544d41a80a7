//! Guest component exporting `vecproc:vector/vector-processor`, and nothing
//! else: what is shipped and published is the interface users get (the
//! benchmark kernels live in `components/vector-kernels`).
//!
//! A thin adapter: the `vector` resource wraps [`vecproc_core::Vector`], and
//! this file only converts between WIT and core types. All logic and its
//! tests live in `vecproc-core`.

/// The allocator: dlmalloc taking the heap the linker reserved in the
/// initial memory before growing it (see `components/Cargo.toml`).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Bindings for the `processor` world, generated from `wit/` at compile time.
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/vector-processor.wit",
        world: "vecproc:vector/processor",
    });
}

use std::cell::RefCell;

use bindings::exports::vecproc::vector::vector_processor::{
    Guest, GuestVector, SortOrder, Statistics, VectorError,
};

struct Component;

impl Guest for Component {
    type Vector = Vector;

    fn compute(n: u32) -> f64 {
        vecproc_core::compute(n)
    }
}

/// The `vector` resource: methods take `&self`, so the state sits in a cell.
struct Vector(RefCell<vecproc_core::Vector>);

fn order(order: SortOrder) -> vecproc_core::SortOrder {
    match order {
        SortOrder::Ascending => vecproc_core::SortOrder::Ascending,
        SortOrder::Descending => vecproc_core::SortOrder::Descending,
    }
}

fn error(e: vecproc_core::VectorError) -> VectorError {
    match e {
        vecproc_core::VectorError::NonFinite(i) => VectorError::NonFinite(i),
        vecproc_core::VectorError::InvalidQuantile(q) => VectorError::InvalidQuantile(q),
    }
}

impl GuestVector for Vector {
    fn new() -> Self {
        Vector(RefCell::new(vecproc_core::Vector::new()))
    }

    fn add_value(&self, value: f64) -> Result<(), VectorError> {
        self.0.borrow_mut().add_value(value).map_err(error)
    }

    fn add_values(&self, values: Vec<f64>) -> Result<(), VectorError> {
        self.0.borrow_mut().add_values_owned(values).map_err(error)
    }

    fn len(&self) -> u64 {
        self.0.borrow().len() as u64
    }

    fn sum(&self) -> f64 {
        self.0.borrow().sum()
    }

    fn mean(&self) -> Option<f64> {
        self.0.borrow().mean()
    }

    fn sort(&self, o: SortOrder) {
        self.0.borrow_mut().sort(order(o));
    }

    fn sorted(&self, o: SortOrder) -> Vec<f64> {
        self.0.borrow_mut().sorted(order(o)).to_vec()
    }

    fn read(&self, offset: u64, limit: u32) -> Vec<f64> {
        self.0.borrow().read(offset, limit).to_vec()
    }

    fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    fn statistics(&self) -> Statistics {
        let s = self.0.borrow().statistics();
        Statistics {
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
        }
    }

    fn quantile(&self, q: f64) -> Result<Option<f64>, VectorError> {
        self.0.borrow().quantile(q).map_err(error)
    }
}

bindings::export!(Component with_types_in bindings);
