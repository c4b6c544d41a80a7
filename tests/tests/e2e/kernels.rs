//! `vector-kernels.wasm`, the benchmark component, in Wasmtime: each kernel
//! called from the host and timed in the guest gives the native answer, and
//! the statistics and compute kernels agree with the shipped processor's.

use vecproc_kernels::{self as kernels, Input, Kernel};
use wasmtime::Store;

use crate::wasi_host::Host;

wasmtime::component::bindgen!({
    path: "../components/vector-kernels/wit/kernels.wit",
    world: "kernels-exports",
});

use exports::vecproc::bench::kernels::Kernel as WitKernel;

/// An instance of the benchmark component with its store.
struct Guest {
    store: Store<Host>,
    bench: KernelsExports,
}

impl Guest {
    fn new() -> Guest {
        let (mut store, component, linker) = crate::wasi_host::load("vector-kernels.wasm");
        let bench = KernelsExports::instantiate(&mut store, &component, &linker).unwrap();
        Guest { store, bench }
    }
}

#[test]
fn kernels_through_the_component_match_native() {
    let mut g = Guest::new();
    let api = g.bench.vecproc_bench_kernels();
    let s = &mut g.store;

    let digest = api.call_sha256(&mut *s, b"abc").unwrap();
    assert_eq!(digest, kernels::sha256(b"abc"));

    let Input::Image {
        width,
        height,
        rgba,
    } = kernels::input(Kernel::Blur, 64)
    else {
        unreachable!()
    };
    let mut native = vec![0u8; rgba.len()];
    kernels::blur(width, height, &rgba, &mut native);
    let out = api
        .call_blur(&mut *s, width as u32, height as u32, &rgba)
        .unwrap()
        .unwrap();
    assert_eq!(out, native);
    let err = api
        .call_blur(&mut *s, 3, 3, &[0u8; 5])
        .unwrap()
        .unwrap_err();
    assert!(err.contains("not a 3x3 RGBA image"), "{err}");

    let c = api
        .call_matmul(&mut *s, 2, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0])
        .unwrap()
        .unwrap();
    assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    assert!(api
        .call_matmul(&mut *s, 2, &[1.0], &[1.0])
        .unwrap()
        .is_err());

    assert_eq!(api.call_sort_i32(&mut *s, &[3, -1, 2]).unwrap(), [-1, 2, 3]);
    assert_eq!(
        api.call_sort_f64(&mut *s, &[0.5, -0.5]).unwrap(),
        [-0.5, 0.5]
    );
    let libm = api.call_compute_libm(&mut *s, 1000).unwrap();
    assert_eq!(
        libm,
        kernels::compute_libm(1000),
        "same libm crate, same bits"
    );

    // The two kernels that are also product functions.
    let compute = api.call_compute(&mut *s, 100_000).unwrap();
    let native = vecproc_core::compute(100_000);
    assert!((compute - native).abs() < 1e-9, "{compute} vs {native}");
    let Input::F64(values) = kernels::input(Kernel::Statistics, 1001) else {
        unreachable!()
    };
    let mean = api.call_statistics(&mut *s, &values).unwrap().unwrap();
    assert_eq!(mean, kernels::statistics(&values).unwrap());
    assert_eq!(api.call_statistics(&mut *s, &[]).unwrap().unwrap(), 0.0);
    let err = api
        .call_statistics(&mut *s, &[1.0, f64::NAN])
        .unwrap()
        .unwrap_err();
    assert!(err.contains("index 1"), "{err}");
}

#[test]
fn time_kernel_checksums_match_native() {
    let mut g = Guest::new();
    let api = g.bench.vecproc_bench_kernels();
    for (wit, kernel, size) in [
        (WitKernel::SortI32, Kernel::SortI32, 5000),
        (WitKernel::SortF64, Kernel::SortF64, 5000),
        (WitKernel::Blur, Kernel::Blur, 48),
        (WitKernel::Matmul, Kernel::Matmul, 12),
        (WitKernel::Sha256, Kernel::Sha256, 10_000),
        (WitKernel::ComputeLibm, Kernel::ComputeLibm, 1000),
        (WitKernel::Statistics, Kernel::Statistics, 5000),
    ] {
        let timing = api.call_time_kernel(&mut g.store, wit, size, 2).unwrap();
        assert_eq!(timing.nanos.len(), 2);
        let (_, native) = kernels::time_kernel(kernel, size, 1, kernels::instant_nanos);
        assert_eq!(timing.checksum, native, "{}", kernel.name());
    }
}
