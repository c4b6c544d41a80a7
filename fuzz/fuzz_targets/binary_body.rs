//! libFuzzer entry point; the properties are in `src/binary_body.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vecproc_fuzz::binary_body::check_input(data));
