//! libFuzzer entry point; the properties are in `src/router.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vecproc_fuzz::router::check_input(data));
