//! Guest component exporting `vecproc:vector/vector-processor`.
//!
//! Also exports `vecproc:vector/kernels`, the benchmark kernels.
//!
//! A thin adapter: the `vector` resource wraps [`vecproc_core::Vector`], the
//! kernels call [`vecproc_core::kernels`], and this file only converts between
//! WIT and core types. All logic and its tests live in `vecproc-core`.

#[allow(warnings)]
#[rustfmt::skip]
mod bindings;

use std::cell::RefCell;

use bindings::exports::vecproc::vector::kernels::{self, Kernel, Timing};
use bindings::exports::vecproc::vector::vector_processor::{
    Guest, GuestVector, SortOrder, Statistics, VectorError,
};
use vecproc_core::kernels as core_kernels;

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

impl kernels::Guest for Component {
    fn time_kernel(kernel: Kernel, size: u32, runs: u32) -> Timing {
        let kernel = match kernel {
            Kernel::SortI32 => core_kernels::Kernel::SortI32,
            Kernel::SortF64 => core_kernels::Kernel::SortF64,
            Kernel::Blur => core_kernels::Kernel::Blur,
            Kernel::Matmul => core_kernels::Kernel::Matmul,
            Kernel::Sha256 => core_kernels::Kernel::Sha256,
            Kernel::Compute => core_kernels::Kernel::Compute,
            Kernel::ComputeLibm => core_kernels::Kernel::ComputeLibm,
            Kernel::Statistics => core_kernels::Kernel::Statistics,
        };
        let (nanos, checksum) = core_kernels::time_kernel(kernel, size, runs);
        Timing { nanos, checksum }
    }

    fn sort_i32(mut values: Vec<i32>) -> Vec<i32> {
        core_kernels::sort_i32(&mut values);
        values
    }

    fn sort_f64(mut values: Vec<f64>) -> Vec<f64> {
        core_kernels::sort_f64(&mut values);
        values
    }

    fn blur(width: u32, height: u32, rgba: Vec<u8>) -> Result<Vec<u8>, String> {
        let (w, h) = (width as usize, height as usize);
        if w.checked_mul(h).and_then(|p| p.checked_mul(4)) != Some(rgba.len()) {
            return Err(format!(
                "{} bytes is not a {width}x{height} RGBA image",
                rgba.len()
            ));
        }
        let mut out = vec![0u8; rgba.len()];
        core_kernels::blur(w, h, &rgba, &mut out);
        Ok(out)
    }

    fn matmul(n: u32, a: Vec<f64>, b: Vec<f64>) -> Result<Vec<f64>, String> {
        let n = n as usize;
        let cells = n.checked_mul(n).ok_or("matrix order too large")?;
        if a.len() != cells || b.len() != cells {
            return Err(format!(
                "{n}x{n} matrices need {cells} values each, got {} and {}",
                a.len(),
                b.len()
            ));
        }
        let mut c = vec![0.0; cells];
        core_kernels::matmul(n, &a, &b, &mut c);
        Ok(c)
    }

    fn sha256(data: Vec<u8>) -> Vec<u8> {
        core_kernels::sha256(&data).to_vec()
    }

    fn compute_libm(n: u32) -> f64 {
        core_kernels::compute_libm(n)
    }
}

bindings::export!(Component with_types_in bindings);
