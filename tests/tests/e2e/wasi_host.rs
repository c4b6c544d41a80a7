//! A WASI p2 host for calling a component's exports directly, shared by the
//! `guest` and `kernels` suites: the built artifact compiled with the default
//! engine, a linker with WASI p2, and a fresh store with stderr inherited.

use vecproc_tests::artifact;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The store's data: a WASI context and its resource table.
pub struct Host {
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

/// `<target>/wasm/<name>` compiled, with a WASI p2 linker and a fresh store,
/// ready for a generated `instantiate`.
pub fn load(name: &str) -> (Store<Host>, Component, Linker<Host>) {
    let engine = Engine::default();
    let component = Component::from_file(&engine, artifact(name)).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let host = Host {
        wasi: WasiCtx::builder().inherit_stderr().build(),
        table: ResourceTable::new(),
    };
    (Store::new(&engine, host), component, linker)
}
