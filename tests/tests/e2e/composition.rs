//! The shape of the composed component: what `wasm-tools component wit`
//! would show, read with wasmparser.

use vecproc_tests::artifact;
use wasmparser::{Parser, Payload};

/// Top-level import and export names of a component.
pub(crate) fn interface(path: &str) -> (Vec<String>, Vec<String>) {
    let bytes = std::fs::read(artifact(path)).unwrap();
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(s) if depth == 0 => {
                for import in s {
                    imports.push(import.unwrap().name.name.to_string());
                }
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                for export in s {
                    exports.push(export.unwrap().name.name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

/// The largest initial linear memory, in bytes, of the core modules a
/// component holds (at any depth).
pub(crate) fn initial_memory_bytes(path: &str) -> u64 {
    let bytes = std::fs::read(artifact(path)).unwrap();
    let mut largest = 0;
    for payload in Parser::new(0).parse_all(&bytes) {
        if let Payload::MemorySection(s) = payload.unwrap() {
            for memory in s {
                largest = largest.max(memory.unwrap().initial * 65536);
            }
        }
    }
    largest
}

/// Interfaces of the `wasi:http/proxy` world (any 0.2.x version).
const PROXY: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

#[test]
fn service_imports_only_the_proxy_world_and_exports_the_handler() {
    let (imports, exports) = interface("vector-service.wasm");
    assert!(!imports.is_empty());
    for name in &imports {
        let unversioned = name.split('@').next().unwrap();
        assert!(
            PROXY.contains(&unversioned),
            "vector-service.wasm imports {name}, which wasi:http/proxy does not provide"
        );
    }
    assert_eq!(exports, ["wasi:http/incoming-handler@0.2.3"]);
}

#[test]
fn http_api_needs_the_processor_and_the_composition_supplies_it() {
    let (imports, _) = interface("http-api.wasm");
    assert!(
        imports
            .iter()
            .any(|i| i == "vecproc:vector/vector-processor@0.1.0"),
        "{imports:?}"
    );
    // The shipped processor exports the interface users get and nothing
    // else: the benchmark kernels are a component of their own.
    // It imports nothing at all (plain cargo for wasm32-unknown-unknown: no
    // WASI libc, no adapter), so any host can instantiate it.
    let (imports, exports) = interface("vector-processor.wasm");
    assert_eq!(exports, ["vecproc:vector/vector-processor@0.1.0"]);
    assert_eq!(imports, Vec::<String>::new());
    // The benchmark component imports only the clock its timings read (at
    // the WASI 0.2 version rustc's wasm-component-ld names, 0.2.6 with rustc
    // 1.95, whatever the WIT's 0.2.3 says: hosts link 0.2.x by semver).
    let (imports, exports) = interface("vector-kernels.wasm");
    assert_eq!(exports, ["vecproc:bench/kernels@0.1.0"]);
    assert!(
        matches!(&imports[..], [clock] if clock.starts_with("wasi:clocks/monotonic-clock@0.2.")),
        "{imports:?}"
    );
}

/// `host-runner compose` (wac-graph, in-process) writes the same bytes as
/// `wac plug` (the wac CLI on the same wac-graph) for the shipped pair: what
/// `cargo xtask serve` composes with host-runner is exactly the
/// `vector-service.wasm` that `cargo xtask build` composes with wac and the
/// suites test.
#[test]
fn host_runner_compose_writes_what_wac_plug_writes() {
    let out = std::env::temp_dir().join(format!("vecproc-compose-{}.wasm", std::process::id()));
    let status = std::process::Command::new(vecproc_tests::host_runner_bin())
        .arg("compose")
        .arg(artifact("http-api.wasm"))
        .arg("--plug")
        .arg(artifact("vector-processor.wasm"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let ours = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let wac = std::fs::read(artifact("vector-service.wasm")).unwrap();
    assert!(
        ours == wac,
        "host-runner compose wrote {} bytes, wac plug {}",
        ours.len(),
        wac.len()
    );
}

/// A small request does not grow a guest's memory: the guests' allocator
/// first uses the heap the linker reserved in the initial memory. Served
/// with `-W max-memory-size` at exactly the initial size, so a growth would
/// answer 500. (Rust std's own allocator on wasm32-unknown-unknown grew the
/// memory on every instance's first allocation, which cost host-runner 45%
/// of its p2 `/health` throughput.)
#[test]
fn small_requests_do_not_grow_guest_memory() {
    // p2 makes an instance per request, so this is paid per request. The p3
    // guest reuses its instance, and its body reads (1 MiB at a time) do grow
    // the memory once, so only `/health` is held to it there.
    for (file, routes) in [
        ("vector-service.wasm", &["/health", "/stats"][..]),
        ("vector-service-p3.wasm", &["/health"][..]),
    ] {
        let initial = initial_memory_bytes(file);
        assert!(initial > 0, "{file}");
        let cap = format!("-Wmax-memory-size={initial}");
        let server = vecproc_tests::Server::host_runner(&artifact(file), &[&cap]);
        for route in routes {
            let reply = if *route == "/stats" {
                vecproc_tests::post_json(&server.url(route), "[4, 1, 3, 2]")
            } else {
                vecproc_tests::get(&server.url(route))
            };
            assert_eq!(reply.status, 200, "{file} {route}");
        }
    }
}
