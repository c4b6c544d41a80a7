#!/usr/bin/env python3
"""Puts the samples of a `perf record -g` profile of a server into buckets.

Usage: tools/perf-buckets.py PERF_DATA [CPU_US_PER_REQUEST]

Kernel samples are classified by their call chain (complete in the kernel);
user-space samples by the function they were taken in, because release
builds keep no frame pointers and their chains stop after a frame or two.
With CPU µs per request (from `cargo xtask bench`'s table or /proc), each
bucket is also given in µs per request. Used for the profile in
BENCHMARKS.md; the rules are by symbol name and tuned to Wasmtime 48.
"""
import sys, subprocess, collections
rules = [
 ("slot reset: madvise + TLB shootdown", ["decommit_pages", "do_madvise"]),
 ("slot reset: PAGEMAP_SCAN + in-place restore", ["reset_with_pagemap", "do_pagemap_scan", "clear_and_remain_ready", "manually_reset_region"]),
 ("page faults (CoW / zero-fill)", ["asm_exc_page_fault", "exc_page_fault"]),
 ("backtrace capture (RUST_BACKTRACE)", ["Backtrace>::create", "_Unwind_"]),
 ("TCP send (incl. loopback delivery, waking the client)", ["__GI___writev", "__send", "tcp_sendmsg"]),
 ("TCP receive", ["__libc_recv", "tcp_recvmsg", "__x64_sys_recvfrom", "readv"]),
 ("epoll / accept", ["epoll_wait", "ep_poll", "accept4"]),
 ("scheduler: context switches, wake-ups, futex", ["__schedule", "futex", "asm_sysvec_reschedule_ipi", "try_to_wake_up"]),
 ("instantiation (+ instance/store teardown)", ["instantiate_async", "InstancePre", "Instance::new", "allocate_instance", "OwnedInstance", "deallocate", "drop_in_place<wasmtime::runtime::store", "Store<", "StoreInner", "store::StoreOpaque>::drop", "run_manual_drop", "ModuleRegistry", "free_many"]),
 ("guest call: component-model ABI, resources, WASI/HTTP host functions", ["call_handle", "Func::call", "call_unchecked", "[JIT]", "HostFn", "wasmtime_wasi_http", "wasmtime_wasi::", "catch_traps", "fiber"]),
 ("HTTP parsing/encoding (hyper)", ["hyper::"]),
 ("async runtime (tokio)", ["tokio::"]),
]
leaf_rules = [
 ("backtrace capture (RUST_BACKTRACE)", ["Backtrace", "_Unwind_", "libgcc_s", "_dl_find_object"]),
 ("slot reset: PAGEMAP_SCAN + in-place restore", ["reset_with_pagemap", "manually_reset_region", "clear_and_remain_ready"]),
 ("instantiation (+ instance/store teardown)", ["instantiate", "InstancePre", "Instance::new", "allocate_instance", "OwnedInstance", "deallocate", "ModuleRegistry", "free_many", "OwnedImports", "lookup_vmdef", "get_func_ref", "initialize_and_return_funcref", "IndexAllocator", "MemoryPool", "TablePool", "StackPool", "Store<", "StoreInner", "StoreOpaque::new", "cranelift_bforest", "in_store", "module_artifacts", "func_loc"]),
 ("guest call: component-model ABI, resources, WASI/HTTP host functions", ["wasmtime::runtime::component", "wasmtime::runtime::vm::component", "wasmtime_wasi", "wasmtime::runtime::func", "wasmtime_environ::component", "wasmtime::runtime::vm::", "wasmtime::", "perf-", "[JIT]", "type_id", "vtable.shim"]),
 ("malloc / free / memcpy", ["malloc", "free", "_int_", "memmove", "memcpy", "memset", "unlink_chunk", "realloc", "__rust_no_alloc", "__rustc::"]),
 ("HTTP parsing/encoding (hyper)", ["hyper::", "httparse", "http::"]),
 ("async runtime (tokio)", ["tokio::", "clock_gettime", "futures_"]),
 ("host-runner / wasmtime serve request glue", ["host_runner::", "wasmtime_cli::"]),
]
def classify(frames):
    text = "\n".join(frames)
    if frames and "kernel.kallsyms" not in frames[0]:
        for name, keys in leaf_rules:
            if any(k in frames[0] for k in keys):
                return name
    for name, keys in rules:
        if any(k in text for k in keys):
            return name
    return "other (malloc, host-runner/serve glue, ...)"
def main(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym,dso"], capture_output=True, text=True).stdout
    counts = collections.Counter(); total = 0
    for block in out.split("\n\n"):
        lines = [l for l in block.strip().split("\n") if l.strip()]
        if not lines: continue
        frames = lines[1:]
        counts[classify(frames)] += 1; total += 1
    cpu = float(sys.argv[2]) if len(sys.argv) > 2 else None
    for name, n in counts.most_common():
        pct = 100 * n / total
        extra = f"  {cpu*pct/100:6.1f} µs" if cpu else ""
        print(f"{pct:5.1f}%{extra}  {name}")
main(sys.argv[1])
