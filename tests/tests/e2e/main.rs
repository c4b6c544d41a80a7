//! End-to-end suites over the built components (run `cargo xtask test`).
//!
//! - `client_faults`: conflicting and lying framing, byte-by-byte bodies,
//!   vanishing clients and 1,000 idle connections, under both servers, with
//!   descriptors and RSS back near their baseline afterwards;
//! - `cli_world`: a std-Rust `wasm32-wasip2` guest under `-S cli` (environment,
//!   preopens, sockets, stdio, timeouts, echoes, body options, exit, store
//!   limits), the same answers from `wasmtime serve` and host-runner;
//! - `faults`: each guest fault (trap, stack overflow, loop, memory, an
//!   endless body, a huge unread body, many at once) stopped, logged once,
//!   counted, and followed by a served request, under both servers;
//! - `front_door`: host-runner's TLS and HTTP/2: the same answers over
//!   HTTP/1.1, HTTP/2 by ALPN and h2c, startup errors naming the file, the
//!   certificate replaced on SIGHUP, the handshake timeout and its counter;
//! - `guest`: `vector-processor.wasm` instantiated in Wasmtime, every
//!   function of the interface called through generated bindings;
//! - `kernels`: `vector-kernels.wasm`, the benchmark component, agreeing
//!   with the native kernels call by call and in `time-kernel`;
//! - `contract`: the OpenAPI contract checked by schemathesis against
//!   `wasmtime serve` (stateless routes) and host-runner `-S keyvalue`
//!   (`/vectors`);
//! - `composition`: the composed file imports only `wasi:http/proxy`, and the
//!   shipped processor exports only `vector-processor`;
//! - `serve`: the real `wasmtime serve` answering every route and error;
//! - `compat`: misbehaving fixture guests (trap, loop, allocation, output)
//!   and the API matrix, against `wasmtime serve` and host-runner alike;
//! - `wire`: the compatibility checklist's wire-level cases (pipelining,
//!   400/431, HTTP/1.0 without Host, framing headers, a timeout after the
//!   response started) over raw TCP, against both servers;
//! - `p3_compat`: a WASI 0.3 (`wasi:http/service`) fixture under both
//!   servers (trap, timeout, memory cap, concurrent requests on one reused
//!   instance, the reuse limits), then host-runner's metrics, memory budget
//!   and drain for p3;
//! - `p3`: the WASI 0.3 build of the service (`vector-service-p3.wasm`)
//!   under `wasmtime serve` answering every route and error exactly as the
//!   WASI 0.2 build does, also under concurrent requests;
//! - `platform`: `wasi:config` under both servers and host-runner's config
//!   sources; guests' outbound HTTP under host-runner's policy (denied by
//!   default, allowed by rule, pooled, timed out, capped, a test CA);
//! - `telemetry`: host-runner's OTLP traces and metrics, decoded by a
//!   receiver on loopback: `traceparent` continued through the server,
//!   instantiation, guest-call and outbound client spans to the upstream;
//!   Debian's Prometheus scraping the admin endpoint;
//! - `host_runner`: what host-runner adds (startup errors, admission queue,
//!   admin endpoints, drain, timeouts, body limit);
//! - `keyvalue`: the stateful service (`/vectors`) under `-S keyvalue` on
//!   the embedded store and Debian's Redis: the article's flow with a
//!   million values, 16 concurrent appenders (two nodes on one Redis),
//!   `kill -9` during appends, a Redis outage, expiry, startup errors;
//! - `manifests`: `deploy/`'s Kubernetes manifests against Kubernetes'
//!   schemas (kubernetes-validate `--strict`);
//! - `large_bodies`: 60 MiB of small numbers answered under the defaults;
//! - `registry`: publishing with `cargo xtask publish` (the real wkg) to a
//!   real OCI registry, the artifact layout, and host-runner serving and
//!   composing by reference: digests, cache, credentials, signatures.

mod cli_world;
mod client_faults;
mod compat;
mod composition;
mod containerd;
mod contract;
mod faults;
mod front_door;
mod guest;
mod host_runner;
mod kernels;
mod keyvalue;
mod large_bodies;
mod manifests;
mod p3;
mod p3_compat;
mod platform;
mod registry;
mod serve;
mod telemetry;
mod wasi_host;
mod wire;
