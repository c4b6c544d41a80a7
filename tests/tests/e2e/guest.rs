//! `vector-processor.wasm` in Wasmtime: every function of the interface,
//! called through bindings generated from the same WIT, checked against the
//! native library.

use wasmtime::component::ResourceAny;
use wasmtime::Store;

use crate::wasi_host::Host;

wasmtime::component::bindgen!({
    path: "../wit/vector-processor.wit",
    world: "processor",
});

use exports::vecproc::vector::vector_processor::{SortOrder, VectorError};

/// An instance of the processor with its store.
struct Guest {
    store: Store<Host>,
    processor: Processor,
}

impl Guest {
    fn new() -> Guest {
        let (mut store, component, linker) = crate::wasi_host::load("vector-processor.wasm");
        let processor = Processor::instantiate(&mut store, &component, &linker).unwrap();
        Guest { store, processor }
    }

    fn vector(&mut self) -> ResourceAny {
        let api = self.processor.vecproc_vector_vector_processor();
        api.vector().call_constructor(&mut self.store).unwrap()
    }
}

#[test]
fn seed_workflow_through_the_component() {
    let mut g = Guest::new();
    let v = g.vector();
    let api = g.processor.vecproc_vector_vector_processor().vector();
    let s = &mut g.store;
    for x in [3.0, 1.0, 2.0] {
        api.call_add_value(&mut *s, v, x).unwrap().unwrap();
    }
    api.call_add_values(&mut *s, v, &[10.0, -4.0])
        .unwrap()
        .unwrap();
    assert_eq!(api.call_len(&mut *s, v).unwrap(), 5);
    assert_eq!(api.call_sum(&mut *s, v).unwrap(), 12.0);
    assert_eq!(api.call_mean(&mut *s, v).unwrap(), Some(2.4));
    api.call_sort(&mut *s, v, SortOrder::Ascending).unwrap();
    assert_eq!(
        api.call_read(&mut *s, v, 0, 10).unwrap(),
        [-4.0, 1.0, 2.0, 3.0, 10.0]
    );
    assert_eq!(api.call_read(&mut *s, v, 3, 10).unwrap(), [3.0, 10.0]);
    assert_eq!(
        api.call_read(&mut *s, v, 99, 10).unwrap(),
        Vec::<f64>::new()
    );
    assert_eq!(
        api.call_sorted(&mut *s, v, SortOrder::Descending).unwrap(),
        [10.0, 3.0, 2.0, 1.0, -4.0]
    );
    assert!(matches!(
        api.call_quantile(&mut *s, v, 0.5).unwrap(),
        Ok(Some(2.0))
    ));
    assert!(matches!(
        api.call_quantile(&mut *s, v, 2.0).unwrap(),
        Err(VectorError::InvalidQuantile(2.0))
    ));
    api.call_clear(&mut *s, v).unwrap();
    assert_eq!(api.call_len(&mut *s, v).unwrap(), 0);
    assert_eq!(api.call_mean(&mut *s, v).unwrap(), None);
    v.resource_drop(&mut *s).unwrap();
}

#[test]
fn non_finite_input_is_an_error_not_a_trap() {
    let mut g = Guest::new();
    let v = g.vector();
    let api = g.processor.vecproc_vector_vector_processor().vector();
    let s = &mut g.store;
    assert!(matches!(
        api.call_add_value(&mut *s, v, f64::NAN).unwrap(),
        Err(VectorError::NonFinite(0))
    ));
    assert!(matches!(
        api.call_add_values(&mut *s, v, &[1.0, f64::NEG_INFINITY])
            .unwrap(),
        Err(VectorError::NonFinite(1))
    ));
    assert_eq!(api.call_len(&mut *s, v).unwrap(), 0, "nothing stored");
    // The instance is still healthy.
    api.call_add_value(&mut *s, v, 1.0).unwrap().unwrap();
    assert_eq!(api.call_sum(&mut *s, v).unwrap(), 1.0);
}

#[test]
fn statistics_match_the_native_library() {
    let values = vecproc_tests::values(10_001, 7);
    let mut native = vecproc_core::Vector::new();
    native.add_values(&values).unwrap();
    let expected = native.statistics();

    let mut g = Guest::new();
    let v = g.vector();
    let api = g.processor.vecproc_vector_vector_processor().vector();
    let s = &mut g.store;
    api.call_add_values(&mut *s, v, &values).unwrap().unwrap();
    let got = api.call_statistics(&mut *s, v).unwrap();
    assert_eq!(got.count, expected.count);
    assert_eq!(got.sum, expected.sum);
    assert_eq!(got.mean, expected.mean);
    assert_eq!((got.min, got.max), (expected.min, expected.max));
    assert_eq!(got.variance, expected.variance);
    assert_eq!(got.stddev, expected.stddev);
    assert_eq!(got.sample_variance, expected.sample_variance);
    assert_eq!(got.sample_stddev, expected.sample_stddev);
    assert_eq!(
        [got.median, got.p25, got.p75, got.p90, got.p99],
        [
            expected.median,
            expected.p25,
            expected.p75,
            expected.p90,
            expected.p99
        ]
    );
    let sorted = api.call_sorted(&mut *s, v, SortOrder::Ascending).unwrap();
    assert_eq!(sorted, native.sorted(vecproc_core::SortOrder::Ascending));
}

#[test]
fn compensated_sum_and_empty_statistics() {
    let mut g = Guest::new();
    let v = g.vector();
    let api = g.processor.vecproc_vector_vector_processor().vector();
    let s = &mut g.store;
    let empty = api.call_statistics(&mut *s, v).unwrap();
    assert_eq!(empty.count, 0);
    assert_eq!(empty.mean, None);
    assert_eq!(empty.median, None);
    api.call_add_values(&mut *s, v, &[1e16, 1.0, -1e16])
        .unwrap()
        .unwrap();
    assert_eq!(api.call_sum(&mut *s, v).unwrap(), 1.0);
}

#[test]
fn compute_kernel() {
    let mut g = Guest::new();
    let api = g.processor.vecproc_vector_vector_processor();
    assert_eq!(api.call_compute(&mut g.store, 0).unwrap(), 0.0);
    let n = 100_000;
    let got = api.call_compute(&mut g.store, n).unwrap();
    // The guest's libm and the host's may differ in the last bits per term.
    let native = vecproc_core::compute(n);
    assert!((got - native).abs() < 1e-9, "{got} vs {native}");
}
