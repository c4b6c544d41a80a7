//! The Wasmtime side of serving: engine configuration (pooling allocator,
//! epoch interruption, code cache), compiling and checking the component,
//! and the linker with exactly the `wasi:http/proxy` imports (p2) and the
//! `wasi:http/service` imports (p3), as `wasmtime serve` links them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Cache, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::options::{OptimizeOptions, Tristate, WasmOptions};

/// The `wasi:http` hooks: `-S http-outgoing-body-buffer-chunks` and
/// `-S http-outgoing-body-chunk-size`, and where outbound requests go
/// ([`crate::outbound`]).
#[derive(Debug, Clone)]
pub struct HttpHooks {
    /// Body writes buffered per outgoing body.
    pub buffer_chunks: usize,
    /// The largest single body write.
    pub chunk_size: usize,
    /// The outbound policy and client, shared by every instance.
    pub outbound: Arc<crate::outbound::Outbound>,
    /// The span outbound requests are children of (the guest call of a
    /// fresh instance's request, when OTLP telemetry is on).
    pub trace: Option<crate::telemetry::RequestTrace>,
}

impl HttpHooks {
    /// Wasmtime's body settings, and `outbound`.
    pub fn new(outbound: Arc<crate::outbound::Outbound>) -> Self {
        Self {
            buffer_chunks: wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_BUFFER_CHUNKS,
            chunk_size: wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_CHUNK_SIZE,
            outbound,
            trace: None,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpHooks for HttpHooks {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        self.buffer_chunks
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.chunk_size
    }

    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _response_errors: Box<
            dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send,
        >,
    ) -> Box<
        dyn std::future::Future<Output = Result<crate::outbound::Sent, wasmtime_wasi_http::Error>>
            + Send,
    > {
        Box::new(self.outbound.send(request, options, self.trace.clone()))
    }
}

/// Per-store state of one instance.
pub struct Host {
    /// WASI context (stdio and clocks; with `-S cli` also the environment,
    /// preopens and sockets).
    pub wasi: WasiCtx,
    /// wasi:http context.
    pub http: WasiHttpCtx,
    /// Outgoing-body settings and outbound requests.
    pub hooks: HttpHooks,
    /// Resources the guest holds.
    pub table: ResourceTable,
    /// Memory and instance limits, and this store's share of the host's
    /// memory budget.
    pub limits: crate::memory_budget::BudgetLimiter,
    /// What `wasi:config/store` answers (`-S config`).
    pub config: ConfigStore,
    /// The key-value stores (`-S keyvalue`); `None` when not linked.
    pub keyvalue: Option<Arc<crate::keyvalue::KeyValue>>,
}

/// The `wasi:config/store` values, shared by every instance. Its `Debug`
/// shows no values: they may be secrets.
#[derive(Clone, Default)]
pub struct ConfigStore(pub Arc<wasmtime_wasi_config::WasiConfigVariables>);

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigStore { .. }")
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Why a component cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Wasmtime could not be configured.
    #[error("failed to configure the engine: {0}")]
    Engine(String),
    /// The bytes are a core module, not a component.
    #[error("the serve command currently requires a component")]
    CoreModule,
    /// The bytes do not compile.
    #[error("failed to compile {name}: {message}")]
    Compile {
        /// The component's name (its path).
        name: String,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The component exports neither `wasi:http/incoming-handler@0.2.x`
    /// nor `wasi:http/handler@0.3.x`.
    #[error("{name} does not target wasi:http/proxy: it exports no wasi:http/incoming-handler@0.2.x, nor wasi:http/handler@0.3.x (wasi:http/service) (exports: {exports})")]
    NotProxy {
        /// The component's name.
        name: String,
        /// What it does export.
        exports: String,
    },
    /// A p3 component with `-S p3=n`.
    #[error("{name} exports wasi:http/handler@0.3.x (WASI 0.3), which -S p3=n turns off")]
    P3Disabled {
        /// The component's name.
        name: String,
    },
    /// An import is not provided by the proxy world.
    #[error("{name} cannot be served: {message}")]
    Link {
        /// The component's name.
        name: String,
        /// Wasmtime's explanation.
        message: String,
    },
}

/// A compiled, checked, pre-instantiated component and the engine it lives in.
pub struct Loaded {
    /// The engine.
    pub engine: Engine,
    /// Pre-instantiated handler.
    pub pre: ProxyPre<Host>,
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
}

/// Engine settings derived from the command line.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `-W`.
    pub wasm: WasmOptions,
    /// `-O`.
    pub optimize: OptimizeOptions,
    /// Whether compiled code is cached on disk (Wasmtime's cache directory).
    pub cache: bool,
    /// Interrupt guests by epoch (needed for any request timeout).
    pub epoch_interruption: bool,
    /// The per-memory cap used for pooling slots.
    pub max_memory_size: Option<u64>,
}

fn config(settings: &EngineSettings, pooling: bool) -> Result<Config, LoadError> {
    let mut config = Config::new();
    config.epoch_interruption(settings.epoch_interruption || settings.wasm.epoch_interruption);
    if settings.wasm.fuel.is_some() {
        config.consume_fuel(true);
    }
    if let Some(stack) = settings.wasm.max_wasm_stack {
        config.max_wasm_stack(stack);
    }
    if settings.cache {
        match Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!("compiled-code cache disabled: {e:#}"),
        }
    }
    if pooling {
        let o = &settings.optimize;
        let mut pool = PoolingAllocationConfig::default();
        if let Some(n) = o.pooling_total_component_instances {
            pool.total_component_instances(n);
        }
        if let Some(n) = o.pooling_total_core_instances {
            pool.total_core_instances(n);
        }
        if let Some(n) = o.pooling_total_memories {
            pool.total_memories(n);
        }
        if let Some(size) = o
            .pooling_max_memory_size
            .or(settings.max_memory_size.map(|m| m as usize))
        {
            pool.max_memory_size(size);
        }
        if let Some(n) = o.pooling_max_unused_warm_slots {
            pool.max_unused_warm_slots(n);
        }
        let reset = reset_policy(o, PoolingAllocationConfig::is_pagemap_scan_available())?;
        pool.pagemap_scan(if reset.pagemap_scan {
            wasmtime::Enabled::Yes
        } else {
            wasmtime::Enabled::No
        });
        pool.linear_memory_keep_resident(reset.memory_keep_resident);
        pool.table_keep_resident(reset.table_keep_resident);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(config)
}

/// How a pooled slot is made fresh again after an instance is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    /// Find the pages the guest dirtied with Linux's `PAGEMAP_SCAN` ioctl.
    pub pagemap_scan: bool,
    /// Up to this many bytes of dirtied pages per linear memory are restored
    /// in place (copied back from the image or zeroed) and stay resident; the
    /// rest are returned to the kernel with `madvise`.
    pub memory_keep_resident: usize,
    /// The same for tables.
    pub table_keep_resident: usize,
}

/// Default bytes of dirtied linear memory restored in place when
/// `PAGEMAP_SCAN` is available. What a burst leaves resident is at most
/// this per memory of each slot it used (so at most this times the pool's
/// `total_memories`, 1,000 by default: 250 MiB): 256 KiB served small
/// requests as fast as 2 MiB did, and 40 concurrent guests that dirtied
/// 8 MiB each left 16 MiB resident instead of 86 MiB (BENCHMARKS.md).
pub const DEFAULT_MEMORY_KEEP_RESIDENT: usize = 256 << 10;
/// Default bytes of dirtied table restored in place when `PAGEMAP_SCAN` is
/// available.
pub const DEFAULT_TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Decides how slots are reset. Every memory is restored to its initial
/// contents either way; this only chooses between restoring dirtied pages in
/// place and `madvise(MADV_DONTNEED)`, whose TLB shootdowns and later page
/// faults dominate a small request on a multi-threaded server.
///
/// `wasmtime serve` leaves pagemap scanning off and keeps nothing resident.
/// host-runner turns scanning on where the kernel supports it (Linux 6.7+)
/// and then keeps [`DEFAULT_MEMORY_KEEP_RESIDENT`] resident; without the scan,
/// keeping memory resident would mean a `memset` of the whole amount on every
/// reset, so it keeps Wasmtime's defaults. `-O` settings win.
pub fn reset_policy(
    o: &OptimizeOptions,
    pagemap_available: bool,
) -> Result<ResetPolicy, LoadError> {
    let pagemap_scan = match o.pooling_pagemap_scan {
        Some(Tristate::Yes) if !pagemap_available => {
            return Err(LoadError::Engine(
                "-O pooling-pagemap-scan=y: this system does not support PAGEMAP_SCAN (Linux 6.7 or later)".into(),
            ))
        }
        Some(Tristate::Yes) => true,
        Some(Tristate::No) => false,
        Some(Tristate::Auto) | None => pagemap_available,
    };
    let (memory, table) = if pagemap_scan {
        (DEFAULT_MEMORY_KEEP_RESIDENT, DEFAULT_TABLE_KEEP_RESIDENT)
    } else {
        (0, 0)
    };
    Ok(ResetPolicy {
        pagemap_scan,
        memory_keep_resident: o.pooling_memory_keep_resident.unwrap_or(memory),
        table_keep_resident: o.pooling_table_keep_resident.unwrap_or(table),
    })
}

/// Builds the engine. With no `-O pooling-allocator` choice the pooling
/// allocator is tried first and dropped if its address-space reservation
/// fails, as `wasmtime serve` decides; an explicit `=y` that fails is an error.
pub fn engine(settings: &EngineSettings) -> Result<(Engine, bool), LoadError> {
    let try_engine = |pooling| {
        Engine::new(&config(settings, pooling)?).map_err(|e| LoadError::Engine(format!("{e:#}")))
    };
    match settings.optimize.pooling_allocator {
        Some(pooling) => Ok((try_engine(pooling)?, pooling)),
        None => match try_engine(true) {
            Ok(engine) => Ok((engine, true)),
            Err(e) => {
                tracing::info!("pooling allocator unavailable, using on-demand allocation: {e}");
                Ok((try_engine(false)?, false))
            }
        },
    }
}

/// How the linker is filled: the proxy world, or every WASI interface
/// (`-S cli`); with or without the WASI 0.3 interfaces (`-S p3`).
#[derive(Debug, Clone, Copy)]
pub struct LinkSettings {
    /// `-S cli`.
    pub cli: bool,
    /// `-S network-error-code`.
    pub network_error_code: bool,
    /// `-S p3` (on by default, as in `wasmtime serve` 48).
    pub p3: bool,
    /// `-S config`: link `wasi:config/store`.
    pub config: bool,
    /// `-S keyvalue`: link `wasi:keyvalue` (draft2 and draft); every
    /// [`Host`] then carries a store.
    pub keyvalue: bool,
}

/// Compiles `bytes` (named `name` in errors), checks that it exports
/// `wasi:http/handler@0.3` or `wasi:http/incoming-handler@0.2` (p3 wins
/// when both are there, as in `wasmtime serve`), links what that world
/// imports (every WASI interface with `cli`, as `-S cli` does for
/// `wasmtime serve`) and pre-instantiates it.
pub fn load(
    engine: &Engine,
    name: &str,
    bytes: &[u8],
    link_settings: LinkSettings,
) -> Result<ProxyPre<Host>, LoadError> {
    let LinkSettings {
        cli,
        network_error_code,
        p3,
        config,
        keyvalue,
    } = link_settings;
    if wasmparser_is_core_module(bytes) {
        return Err(LoadError::CoreModule);
    }
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile {
        name: name.into(),
        message: format!("{e:#}"),
    })?;
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let exports_p3 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/handler@0.3."));
    let exports_p2 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler@0.2."));
    if exports_p3 && !p3 && !exports_p2 {
        return Err(LoadError::P3Disabled { name: name.into() });
    }
    if !exports_p3 && !exports_p2 {
        return Err(LoadError::NotProxy {
            name: name.into(),
            exports: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        });
    }
    let mut linker: Linker<Host> = Linker::new(engine);
    let link = |e: wasmtime::Error| {
        let mut message = format!("{e:#}");
        let needs_cli = ["wasi:cli/", "wasi:filesystem/", "wasi:sockets/"]
            .iter()
            .any(|i| message.contains(&format!("instance `{i}")));
        if !cli && needs_cli {
            message.push_str(
                " (the proxy world has no environment, files or sockets: \
                 serve it with -S cli to grant them, as wasmtime serve does)",
            );
        }
        if !config && message.contains("instance `wasi:config/") {
            message
                .push_str(" (serve it with -S config to link wasi:config, as wasmtime serve does)");
        }
        if !keyvalue && message.contains("instance `wasi:keyvalue/") {
            message.push_str(" (serve it with -S keyvalue to link wasi:keyvalue)");
        }
        LoadError::Link {
            name: name.into(),
            message,
        }
    };
    if cli {
        let mut options = wasmtime_wasi::p2::bindings::LinkOptions::default();
        options.network_error_code(network_error_code);
        wasmtime_wasi::p2::add_to_linker_with_options_async(&mut linker, &options).map_err(link)?;
        if p3 {
            wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(link)?;
        }
    } else {
        wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut linker).map_err(link)?;
        if p3 {
            wasmtime_wasi::p3::clocks::add_to_linker(&mut linker).map_err(link)?;
            wasmtime_wasi::p3::random::add_to_linker(&mut linker).map_err(link)?;
            wasmtime_wasi::p3::cli::add_to_linker(&mut linker).map_err(link)?;
        }
    }
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
    if p3 {
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(link)?;
    }
    if config {
        wasmtime_wasi_config::add_to_linker(&mut linker, |h: &mut Host| {
            wasmtime_wasi_config::WasiConfig::from(&*h.config.0)
        })
        .map_err(link)?;
    }
    if keyvalue {
        crate::keyvalue::draft2::add_to_linker(&mut linker, |h: &mut Host| {
            crate::keyvalue::draft2::View::new(
                h.keyvalue
                    .as_ref()
                    .expect("every store of a -S keyvalue server carries the key-value stores"),
                &mut h.table,
            )
        })
        .map_err(link)?;
        wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |h: &mut Host| {
            let kv = h
                .keyvalue
                .as_ref()
                .expect("every store of a -S keyvalue server carries the key-value stores");
            wasmtime_wasi_keyvalue::WasiKeyValue::new(kv.draft(), &mut h.table)
        })
        .map_err(link)?;
    }
    let pre = linker.instantiate_pre(&component).map_err(link)?;
    if p3 && exports_p3 {
        if let Ok(service) = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
            return Ok(ProxyPre::P3(service));
        }
    }
    wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
        .map(ProxyPre::P2)
        .map_err(link)
}

/// A core module starts with the magic and version 1; a component with
/// version 0x0d and layer 1.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// A thread that advances the engine's epoch every `interval` until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the epoch advances, and so how long a guest runs before it
/// yields its worker thread. 5 ms keeps a request that arrives behind many
/// busy guests waiting tens of milliseconds, not seconds (BENCHMARKS.md,
/// fairness); the ticker thread's 200 wake-ups a second cost nothing
/// measurable.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

impl EpochTicker {
    /// Starts ticking.
    pub fn start(engine: Engine, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(arg: &str) -> OptimizeOptions {
        let mut o = OptimizeOptions::default();
        if !arg.is_empty() {
            o.apply(arg).unwrap();
        }
        o
    }

    #[test]
    fn resets_in_place_only_where_the_scan_exists() {
        let on = reset_policy(&opts(""), true).unwrap();
        assert!(on.pagemap_scan);
        assert_eq!(on.memory_keep_resident, DEFAULT_MEMORY_KEEP_RESIDENT);
        assert_eq!(on.table_keep_resident, DEFAULT_TABLE_KEEP_RESIDENT);
        // Without the scan, a resident region costs a memset per reset:
        // keep Wasmtime's defaults.
        let off = reset_policy(&opts(""), false).unwrap();
        assert_eq!(
            off,
            ResetPolicy {
                pagemap_scan: false,
                memory_keep_resident: 0,
                table_keep_resident: 0
            }
        );
    }

    #[test]
    fn optimize_flags_win() {
        let o = opts("pooling-pagemap-scan=n");
        assert_eq!(reset_policy(&o, true).unwrap().memory_keep_resident, 0);
        let o = opts("pooling-memory-keep-resident=65536,pooling-table-keep-resident=0");
        let p = reset_policy(&o, true).unwrap();
        assert_eq!((p.memory_keep_resident, p.table_keep_resident), (65536, 0));
        let o = opts("pooling-memory-keep-resident=4096");
        assert_eq!(reset_policy(&o, false).unwrap().memory_keep_resident, 4096);
        let err = reset_policy(&opts("pooling-pagemap-scan=y"), false).unwrap_err();
        assert!(err.to_string().contains("PAGEMAP_SCAN"), "{err}");
        assert!(reset_policy(&opts("pooling-pagemap-scan=auto"), false).is_ok());
    }
}
