//! libFuzzer entry point; the properties are in `src/statistics.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vecproc_fuzz::statistics::check_input(data));
