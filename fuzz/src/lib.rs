//! The properties the fuzz targets check, one module per target, as plain
//! functions: libFuzzer drives them through `fuzz_targets/` (nightly, with
//! sanitizers, `cargo xtask fuzz`), and `tests/seeds.rs` replays the
//! committed seed inputs through them on stable in every `cargo xtask test`.

pub mod binary_body;
pub mod json_body;
pub mod router;
pub mod statistics;
