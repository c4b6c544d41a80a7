//! End-to-end suites over the built components (run `cargo xtask test`).
//!
//! - `guest`: `vector-processor.wasm` instantiated in Wasmtime, every
//!   function of the interface called through generated bindings;
//! - `composition`: the composed file imports only `wasi:http/proxy`;
//! - `serve`: the real `wasmtime serve` answering every route and error;
//! - `compat`: misbehaving fixture guests (trap, loop, allocation, output).

mod compat;
mod composition;
mod guest;
mod serve;
