//! Benchmark component exporting `vecproc:bench/kernels`: a thin adapter
//! over [`vecproc_kernels`] that converts between WIT and Rust types.
//!
//! Built only for the benchmarks (`cargo xtask bench`, `js/bench/kernels.mjs`)
//! and the tests that check the kernels agree with native; the shipped
//! `vector-processor` component does not contain this code.

/// The allocator: dlmalloc taking the heap the linker reserved in the
/// initial memory before growing it (see `components/Cargo.toml`).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Bindings for the `kernels-bench` world, generated at compile time from
/// this crate's `wit/` (after `wit/` of the repository, for the WASI clock it
/// imports).
mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "vecproc:bench/kernels-bench",
        generate_all,
    });
}

use bindings::exports::vecproc::bench::kernels::{Guest, Kernel, Timing};
use bindings::wasi::clocks::monotonic_clock;

struct Component;

impl Guest for Component {
    fn time_kernel(kernel: Kernel, size: u32, runs: u32) -> Timing {
        let kernel = match kernel {
            Kernel::SortI32 => vecproc_kernels::Kernel::SortI32,
            Kernel::SortF64 => vecproc_kernels::Kernel::SortF64,
            Kernel::Blur => vecproc_kernels::Kernel::Blur,
            Kernel::Matmul => vecproc_kernels::Kernel::Matmul,
            Kernel::Sha256 => vecproc_kernels::Kernel::Sha256,
            Kernel::Compute => vecproc_kernels::Kernel::Compute,
            Kernel::ComputeLibm => vecproc_kernels::Kernel::ComputeLibm,
            Kernel::Statistics => vecproc_kernels::Kernel::Statistics,
        };
        let (nanos, checksum) =
            vecproc_kernels::time_kernel(kernel, size, runs, monotonic_clock::now);
        Timing { nanos, checksum }
    }

    fn sort_i32(mut values: Vec<i32>) -> Vec<i32> {
        vecproc_kernels::sort_i32(&mut values);
        values
    }

    fn sort_f64(mut values: Vec<f64>) -> Vec<f64> {
        vecproc_kernels::sort_f64(&mut values);
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
        vecproc_kernels::blur(w, h, &rgba, &mut out);
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
        vecproc_kernels::matmul(n, &a, &b, &mut c);
        Ok(c)
    }

    fn sha256(data: Vec<u8>) -> Vec<u8> {
        vecproc_kernels::sha256(&data).to_vec()
    }

    fn compute(n: u32) -> f64 {
        vecproc_kernels::run(
            vecproc_kernels::Kernel::Compute,
            &mut vecproc_kernels::Input::Terms(n),
        )
    }

    fn statistics(values: Vec<f64>) -> Result<f64, String> {
        vecproc_kernels::statistics(&values).map_err(|e| e.to_string())
    }

    fn compute_libm(n: u32) -> f64 {
        vecproc_kernels::compute_libm(n)
    }
}

bindings::export!(Component with_types_in bindings);
