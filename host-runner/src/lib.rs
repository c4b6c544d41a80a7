//! host-runner: a Wasmtime embedder for `wasi:http/proxy` components.
//!
//! This crate is a skeleton. Until it serves, `cargo xtask serve` uses the
//! real `wasmtime serve`; the plan (in-process composition with `--plug`,
//! limits on by default, graceful drain, metrics) is in ARCHITECTURE.md.
