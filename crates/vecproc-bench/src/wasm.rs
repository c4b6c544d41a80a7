//! The benchmark component `vector-kernels.wasm` in Wasmtime: kernels timed
//! inside the guest (`time-kernel`) and from the host around each exported
//! call.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use vecproc_kernels::{self as kernels, Input, Kernel};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../components/vector-kernels/wit/kernels.wit",
    world: "kernels-exports",
});

use exports::vecproc::bench::kernels::Kernel as WitKernel;

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One instance of the component.
pub struct Guest {
    store: Store<Host>,
    bench: KernelsExports,
}

fn wit(kernel: Kernel) -> WitKernel {
    match kernel {
        Kernel::SortI32 => WitKernel::SortI32,
        Kernel::SortF64 => WitKernel::SortF64,
        Kernel::Blur => WitKernel::Blur,
        Kernel::Matmul => WitKernel::Matmul,
        Kernel::Sha256 => WitKernel::Sha256,
        Kernel::Compute => WitKernel::Compute,
        Kernel::ComputeLibm => WitKernel::ComputeLibm,
        Kernel::Statistics => WitKernel::Statistics,
    }
}

fn to_anyhow(e: wasmtime::Error) -> anyhow::Error {
    anyhow!("{e:?}")
}

/// The component at `path` compiled with the default engine configuration,
/// as the ELF object Wasmtime would load.
pub fn precompile(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    Engine::default()
        .precompile_component(&bytes)
        .map_err(to_anyhow)
}

impl Guest {
    /// Compiles and instantiates the component at `path`.
    pub fn load(path: &Path) -> Result<Guest> {
        let engine = Engine::default();
        let component = Component::from_file(&engine, path).map_err(to_anyhow)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(to_anyhow)?;
        let host = Host {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&engine, host);
        let bench =
            KernelsExports::instantiate(&mut store, &component, &linker).map_err(to_anyhow)?;
        Ok(Guest { store, bench })
    }

    /// The guest's own timing of `runs` runs.
    pub fn time_kernel(&mut self, kernel: Kernel, size: u32, runs: u32) -> Result<(Vec<u64>, f64)> {
        let t = self
            .bench
            .vecproc_bench_kernels()
            .call_time_kernel(&mut self.store, wit(kernel), size, runs)
            .map_err(to_anyhow)?;
        Ok((t.nanos, t.checksum))
    }

    /// Host-side timing of each exported kernel call, copies included.
    pub fn host_timed(
        &mut self,
        kernel: Kernel,
        size: u32,
        warmup: u32,
        runs: u32,
    ) -> Result<(Vec<u64>, f64)> {
        let input = kernels::input(kernel, size);
        let mut nanos = Vec::new();
        let mut checksum = 0.0;
        for i in 0..warmup + runs {
            let (elapsed, sum) = self.call_once(kernel, &input)?;
            if i >= warmup {
                nanos.push(elapsed);
                checksum = sum;
            }
        }
        Ok((nanos, checksum))
    }

    fn call_once(&mut self, kernel: Kernel, input: &Input) -> Result<(u64, f64)> {
        let api = self.bench.vecproc_bench_kernels();
        let store = &mut self.store;
        let start = Instant::now();
        // Each arm times the call, then rebuilds the checksum from the output
        // exactly as the native kernel does.
        let (elapsed, output) = match (kernel, input) {
            (Kernel::SortI32, Input::I32(v)) => {
                let out = api.call_sort_i32(&mut *store, v).map_err(to_anyhow)?;
                (start.elapsed(), Input::I32(out))
            }
            (Kernel::SortF64, Input::F64(v)) => {
                let out = api.call_sort_f64(&mut *store, v).map_err(to_anyhow)?;
                (start.elapsed(), Input::F64(out))
            }
            (
                Kernel::Blur,
                Input::Image {
                    width,
                    height,
                    rgba,
                },
            ) => {
                let out = api
                    .call_blur(&mut *store, *width as u32, *height as u32, rgba)
                    .map_err(to_anyhow)?
                    .map_err(|e| anyhow!(e))?;
                let elapsed = start.elapsed();
                return Ok((elapsed.as_nanos() as u64, kernels::checksum_bytes(&out)));
            }
            (Kernel::Matmul, Input::Matrices { n, a, b }) => {
                let out = api
                    .call_matmul(&mut *store, *n as u32, a, b)
                    .map_err(to_anyhow)?
                    .map_err(|e| anyhow!(e))?;
                let elapsed = start.elapsed();
                return Ok((elapsed.as_nanos() as u64, kernels::checksum_matrix(&out)));
            }
            (Kernel::Sha256, Input::Bytes(data)) => {
                let d = api.call_sha256(&mut *store, data).map_err(to_anyhow)?;
                let elapsed = start.elapsed();
                return Ok((elapsed.as_nanos() as u64, kernels::checksum_digest(&d)));
            }
            (Kernel::Compute, Input::Terms(n)) => {
                let r = api.call_compute(&mut *store, *n).map_err(to_anyhow)?;
                return Ok((start.elapsed().as_nanos() as u64, r));
            }
            (Kernel::ComputeLibm, Input::Terms(n)) => {
                let r = api.call_compute_libm(&mut *store, *n).map_err(to_anyhow)?;
                return Ok((start.elapsed().as_nanos() as u64, r));
            }
            (Kernel::Statistics, Input::F64(v)) => {
                let mean = api
                    .call_statistics(&mut *store, v)
                    .map_err(to_anyhow)?
                    .map_err(|e| anyhow!(e))?;
                return Ok((start.elapsed().as_nanos() as u64, mean));
            }
            (kernel, _) => return Err(anyhow!("no input for {}", kernel.name())),
        };
        // Sorted outputs: the checksum reads three positions.
        let sum = match &output {
            Input::I32(v) => kernels::checksum_sorted(v),
            Input::F64(v) => kernels::checksum_sorted(v),
            _ => 0.0,
        };
        Ok((elapsed.as_nanos() as u64, sum))
    }
}
