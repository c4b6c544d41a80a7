//! `vecproc-bench kernels`: times the kernels of `vecproc_kernels` natively and
//! inside the `vector-kernels` benchmark component under Wasmtime, and writes one
//! JSON record per (runner, kernel, size) for `cargo xtask bench` to report.
//!
//! Runners: `native` (this binary, release); `wasm-guest` (the component's
//! `time-kernel`, timed with the guest's monotonic clock, no copies);
//! `wasm-host` (each exported kernel called from the host, timed around the
//! call, argument and result copies included); the same two for the
//! opt-level 3 build without SIMD (`wasm-o3-*`) and the size-optimised
//! build (`wasm-size-*`). Built with `--features portable-sha`, it runs only
//! SHA-256 natively as `native-portable-sha` (sha2 without SHA-NI).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use vecproc_kernels::{self as kernels, Kernel};

/// Options of `vecproc-bench kernels`.
#[derive(clap::Args)]
pub struct Args {
    /// The vector-kernels component built as the processor ships (opt-level
    /// 3, simd128).
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-kernels.wasm"))]
    wasm: PathBuf,
    /// The same component built at opt-level 3 without simd128.
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-kernels-o3.wasm"))]
    o3: PathBuf,
    /// The same component built for size (opt-level "s").
    #[arg(long, default_value_os_t = vecproc_harness::paths::wasm_path("vector-kernels-size.wasm"))]
    size: PathBuf,
    /// Timed runs per case.
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Untimed warm-up runs per case.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Small sizes and few runs, to check the runner itself.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON records (`rust-portable-sha.json` when built
    /// with `portable-sha`).
    #[arg(long, default_value_os_t = default_out())]
    out: PathBuf,
    /// Instead of measuring, write `--wasm` compiled by Cranelift (an ELF
    /// object, for `objdump -d`) to this path and exit.
    #[arg(long)]
    precompile: Option<PathBuf>,
}

/// A (kernel, size) to measure, and whether only the main runners take it.
struct Case {
    kernel: Kernel,
    size: u32,
    scaling: bool,
}

/// `<target>/bench/rust.json`, or `rust-portable-sha.json` for the build
/// with sha2's portable code path.
fn default_out() -> PathBuf {
    let file = if cfg!(feature = "portable-sha") {
        "rust-portable-sha.json"
    } else {
        "rust.json"
    };
    vecproc_harness::paths::bench_dir().join(file)
}

fn cases(quick: bool) -> Vec<Case> {
    let main = |kernel, size| Case {
        kernel,
        size,
        scaling: false,
    };
    if quick {
        return vec![
            main(Kernel::SortI32, 10_000),
            main(Kernel::SortF64, 10_000),
            main(Kernel::Blur, 64),
            main(Kernel::Matmul, 16),
            main(Kernel::Sha256, 65_536),
            main(Kernel::Compute, 10_000),
            main(Kernel::ComputeLibm, 10_000),
            main(Kernel::Statistics, 10_000),
        ];
    }
    let mut all = vec![
        main(Kernel::SortI32, 1_000_000),
        main(Kernel::SortF64, 1_000_000),
        main(Kernel::Blur, 1920),
        main(Kernel::Matmul, 256),
        main(Kernel::Matmul, 512),
        main(Kernel::Sha256, 16 * 1024 * 1024),
        main(Kernel::Compute, 1_000_000),
        main(Kernel::ComputeLibm, 1_000_000),
        main(Kernel::Statistics, 1_000_000),
    ];
    for kernel in [Kernel::SortF64, Kernel::Statistics] {
        for size in [10_000, 100_000, 10_000_000] {
            all.push(Case {
                kernel,
                size,
                scaling: true,
            });
        }
    }
    all
}

fn record(runner: &str, kernel: Kernel, size: u32, nanos: &[u64], checksum: f64) -> Value {
    let mut sorted = nanos.to_vec();
    sorted.sort_unstable();
    eprintln!(
        "  {runner:<20} {:<13} {size:>9}  min {:>9.3} ms  median {:>9.3} ms",
        kernel.name(),
        sorted[0] as f64 / 1e6,
        sorted[sorted.len() / 2] as f64 / 1e6
    );
    json!({"runner": runner, "kernel": kernel.name(), "size": size, "nanos": nanos, "checksum": checksum})
}

/// Runs every case on every runner given and writes the records.
pub fn run(mut args: Args) -> Result<()> {
    if let Some(out) = &args.precompile {
        let bytes = crate::wasm::precompile(&args.wasm)?;
        std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
        return Ok(());
    }
    let out = args.out.clone();
    if args.quick {
        args.runs = args.runs.min(3);
        args.warmup = args.warmup.min(1);
    }
    let mut records = Vec::new();
    let portable = cfg!(feature = "portable-sha");
    for case in cases(args.quick) {
        if portable && case.kernel != Kernel::Sha256 {
            continue;
        }
        // 10^7 values: fewer runs keep the whole benchmark within minutes.
        let runs = if case.size >= 10_000_000 {
            args.runs.min(5)
        } else {
            args.runs
        };
        kernels::time_kernel(case.kernel, case.size, args.warmup, kernels::instant_nanos);
        let (nanos, checksum) =
            kernels::time_kernel(case.kernel, case.size, runs, kernels::instant_nanos);
        let runner = if portable {
            "native-portable-sha"
        } else {
            "native"
        };
        records.push(record(runner, case.kernel, case.size, &nanos, checksum));
    }
    if !portable {
        for (label, path) in [
            ("wasm", &args.wasm),
            ("wasm-o3", &args.o3),
            ("wasm-size", &args.size),
        ] {
            let mut guest = crate::wasm::Guest::load(path)
                .with_context(|| format!("loading {}", path.display()))?;
            for case in cases(args.quick) {
                let runs = if case.size >= 10_000_000 {
                    args.runs.min(5)
                } else {
                    args.runs
                };
                guest.time_kernel(case.kernel, case.size, args.warmup)?;
                let (nanos, checksum) = guest.time_kernel(case.kernel, case.size, runs)?;
                records.push(record(
                    &format!("{label}-guest"),
                    case.kernel,
                    case.size,
                    &nanos,
                    checksum,
                ));
                if case.scaling && case.kernel != Kernel::Statistics {
                    continue;
                }
                let (nanos, checksum) =
                    guest.host_timed(case.kernel, case.size, args.warmup, runs)?;
                records.push(record(
                    &format!("{label}-host"),
                    case.kernel,
                    case.size,
                    &nanos,
                    checksum,
                ));
            }
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&records)?)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
