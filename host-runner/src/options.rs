//! The `-W`, `-S` and `-O` option groups, parsed by Wasmtime's own parser.
//!
//! `-X key[=val][,key[=val]...]`, repeatable; a later value wins. The syntax,
//! the keys, and every "unknown option" and "failed to parse" message are
//! those of `wasmtime serve` by construction: each argument goes through
//! `wasmtime_cli_flags::CommonOptions`, the clap parser `wasmtime serve` itself
//! uses (crate `wasmtime-cli-flags`, the same version as `wasmtime`). The
//! parsed group is then mapped into the structs below. Keys Wasmtime knows but
//! host-runner does not implement are refused by name, so a user is never
//! silently ignored; the few that `wasmtime serve` accepts and ignores are
//! accepted and ignored here too.
//!
//! ## How, and why not `CommonOptions::config()`
//!
//! `-W`, `-S` and `-O` are parsed by `wasmtime-cli-flags` 48.0.8, the crate `wasmtime serve`
//! parses them with, so the keys, the value syntax (booleans, `0x` and `_` in numbers,
//! durations, `y/n/auto`), `-X help`, and the "unknown ... option" and "failed to parse ..."
//! messages are Wasmtime's by construction (`option_errors_match_wasmtime_serve_word_for_word`
//! compares them with the real `wasmtime serve`). The group enums (`Wasm`, `Wasi`, `Optimize`)
//! and `CommonOptions::configure` are private, so the public path is the whole clap parser:
//! each argument goes through `CommonOptions::try_parse_from(["host-runner", "--wasm=ARG"])`,
//! then `init_logging()` (without the crate's `logging` feature it only runs `configure`,
//! which fills the public `wasm`, `wasi` and `opts` groups). `CommonOptions` is not flattened
//! into host-runner's clap arguments because it also brings `-C`, `-D`, `-R`, `--target` and
//! `--config`. Each parsed group is destructured field by field (`split_group!`, which names
//! each field once, either kept or refused), so a key added to Wasmtime's group is a compile
//! error until it is mapped, ignored or refused. What host-runner keeps of
//! its own: the refusals by name (`nn`, `threads`, `listenfd`,
//! `tcplisten`, proposal switches, code-generation and unimplemented `pooling-*` keys) and
//! `wasmtime serve`'s own post-parse checks (`-Shttp=n`, `-Wcomponent-model=n`, `-Scommon`
//! with `-Scli`, in its words). Not used: `CommonOptions::config()`. It builds a whole
//! `Config`, applying every key host-runner refuses, and its pooling block takes only `-O`
//! values (and `-W max-memory-size`), with no place for host-runner's defaults: the slot reset
//! (`engine::reset_policy`: pagemap scan where available, what stays resident), the
//! `--max-memory-size` default in the pool, epoch interruption from `--request-timeout`; a
//! `Config` exposes no getter to amend the `PoolingAllocationConfig` afterwards, and `config()`
//! fails on a cache it cannot load where host-runner warns and serves uncached. `engine.rs`
//! therefore still builds the `Config` (about 40 lines) from the mapped settings.

use std::time::Duration;

use clap::Parser as _;
use wasmtime_cli_flags::opt::WasmtimeOptionValue;
use wasmtime_cli_flags::CommonOptions;

/// A malformed or unsupported option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    /// Wasmtime's parser refused the argument: an unknown key or a value
    /// that does not parse, in `wasmtime serve`'s words (``unknown -W /
    /// --wasm option: bogus``, ``failed to parse -W option `timeout=1m`:
    /// failed to parse duration: 1m``).
    #[error("{0}")]
    Wasmtime(String),
    /// A setting `wasmtime serve` refuses after parsing, in its wording
    /// (`-Shttp=n`, `-Wcomponent-model=n`, `-Scommon` with `-Scli`).
    #[error("{0}")]
    Conflict(&'static str),
    /// Wasmtime knows the key but host-runner does not implement it.
    #[error("{group} option `{key}` is not supported by host-runner")]
    Unsupported {
        /// The group.
        group: &'static str,
        /// The key.
        key: String,
    },
}

/// `-W` settings that matter for serving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasmOptions {
    /// `timeout`: wall-clock limit per request.
    pub timeout: Option<Duration>,
    /// `max-memory-size`: bytes per linear memory.
    pub max_memory_size: Option<u64>,
    /// `max-table-elements`: the largest any table may grow.
    pub max_table_elements: Option<usize>,
    /// `fuel`: fuel per store.
    pub fuel: Option<u64>,
    /// `max-wasm-stack`.
    pub max_wasm_stack: Option<usize>,
    /// `epoch-interruption` (implied by `timeout`).
    pub epoch_interruption: bool,
}

/// `-S` settings that matter for serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasiOptions {
    /// `http` (forced on; `-Shttp=n` is an error).
    pub http: bool,
    /// `max-http-fields-size`.
    pub max_http_fields_size: Option<usize>,
    /// `cli` (or its deprecated alias `common`): link every WASI p2
    /// interface, not only the proxy world's.
    pub cli: bool,
    /// Whether `common` was given (it may not be combined with `cli`).
    pub common_alias: bool,
    /// Whether `cli` was given.
    pub cli_given: bool,
    /// `inherit-env`: copy the whole host environment.
    pub inherit_env: bool,
    /// `inherit-network`: any socket address (implies tcp and udp).
    pub inherit_network: bool,
    /// `allow-ip-name-lookup`.
    pub allow_ip_name_lookup: Option<bool>,
    /// `tcp`.
    pub tcp: Option<bool>,
    /// `udp`.
    pub udp: Option<bool>,
    /// `network-error-code`.
    pub network_error_code: bool,
    /// `http-outgoing-body-buffer-chunks`: body writes buffered per outgoing body.
    pub http_outgoing_body_buffer_chunks: Option<usize>,
    /// `http-outgoing-body-chunk-size`: the largest single body write.
    pub http_outgoing_body_chunk_size: Option<usize>,
    /// `max-resources`: entries in each store's resource table.
    pub max_resources: Option<usize>,
    /// `hostcall-fuel`: fuel for copying data into the host per call.
    pub hostcall_fuel: Option<usize>,
    /// `max-component-handles`.
    pub max_component_handles: Option<usize>,
    /// `max-random-size`: the largest `get-random-bytes` request.
    pub max_random_size: Option<u64>,
    /// `cwd`: the guest's initial working directory.
    pub cwd: Option<String>,
    /// `p3`: link the WASI 0.3 interfaces and serve `wasi:http/service`
    /// components (default on, as in `wasmtime serve` 48).
    pub p3: Option<bool>,
    /// `config`: link `wasi:config/store`.
    pub config: bool,
    /// `config-var=KEY=VALUE`, in order (a later one wins).
    pub config_vars: Vec<(String, String)>,
    /// `keyvalue`: link `wasi:keyvalue` (draft2 over the host's store, and
    /// the draft in memory as `wasmtime serve` does).
    pub keyvalue: bool,
    /// `keyvalue-in-memory-data=KEY=VALUE`: the draft's seed.
    pub keyvalue_in_memory_data: Vec<(String, String)>,
}

impl Default for WasiOptions {
    fn default() -> Self {
        Self {
            http: true,
            max_http_fields_size: None,
            cli: false,
            common_alias: false,
            cli_given: false,
            inherit_env: false,
            inherit_network: false,
            allow_ip_name_lookup: None,
            tcp: None,
            udp: None,
            network_error_code: false,
            http_outgoing_body_buffer_chunks: None,
            http_outgoing_body_chunk_size: None,
            max_resources: None,
            hostcall_fuel: None,
            max_component_handles: None,
            max_random_size: None,
            cwd: None,
            p3: None,
            config: false,
            config_vars: Vec::new(),
            keyvalue: false,
            keyvalue_in_memory_data: Vec::new(),
        }
    }
}

/// `-O` settings that matter for serving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizeOptions {
    /// `pooling-allocator`: `None` lets host-runner decide (as `wasmtime serve`).
    pub pooling_allocator: Option<bool>,
    /// `pooling-total-component-instances`.
    pub pooling_total_component_instances: Option<u32>,
    /// `pooling-total-memories`.
    pub pooling_total_memories: Option<u32>,
    /// `pooling-total-core-instances`.
    pub pooling_total_core_instances: Option<u32>,
    /// `pooling-max-memory-size`.
    pub pooling_max_memory_size: Option<usize>,
    /// `pooling-memory-keep-resident`: bytes of each linear memory reset in
    /// place instead of returned to the kernel. `None` lets host-runner
    /// decide (see `engine::reset_policy`).
    pub pooling_memory_keep_resident: Option<usize>,
    /// `pooling-table-keep-resident`.
    pub pooling_table_keep_resident: Option<usize>,
    /// `pooling-pagemap-scan`: `None` lets host-runner decide.
    pub pooling_pagemap_scan: Option<Tristate>,
    /// `pooling-max-unused-warm-slots`.
    pub pooling_max_unused_warm_slots: Option<u32>,
}

/// Wasmtime's `y`/`n`/`auto` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tristate {
    /// Required: an error if unsupported.
    Yes,
    /// Off.
    No,
    /// On where the system supports it.
    Auto,
}

impl From<wasmtime::Enabled> for Tristate {
    fn from(e: wasmtime::Enabled) -> Self {
        match e {
            wasmtime::Enabled::Yes => Tristate::Yes,
            wasmtime::Enabled::No => Tristate::No,
            wasmtime::Enabled::Auto => Tristate::Auto,
        }
    }
}

/// Parses a Wasmtime duration (`wasmtime-cli-flags`' parser): an integer
/// followed by nothing (seconds), `s`, `ms`, `us`/`μs` or `ns`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    <Duration as WasmtimeOptionValue>::parse(Some(v)).map_err(|e| e.to_string())
}

/// Runs one `-W`, `-S` or `-O` argument through `wasmtime serve`'s parser and
/// returns the parsed groups. `flag` is the long name (`wasm`, `wasi`,
/// `optimize`); `--flag=ARG` keeps an argument that starts with `-` a value.
fn wasmtime_parse(flag: &str, arg: &str) -> Result<CommonOptions, OptionError> {
    let argv = ["host-runner".to_string(), format!("--{flag}={arg}")];
    let mut parsed = CommonOptions::try_parse_from(argv).map_err(|e| {
        // clap renders `error: <message>`; Wasmtime's parse errors are
        // printed with `{:?}`, which appends a backtrace under RUST_BACKTRACE.
        let text = e.to_string();
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        let text = text.split("Stack backtrace:").next().unwrap_or(text);
        OptionError::Wasmtime(text.trim_end().to_string())
    })?;
    // `configure` (moving the raw groups into the public `wasm`, `wasi` and
    // `opts` fields) is private; `init_logging` is the public entry that runs
    // it without building a `Config`. Without the crate's `logging` feature
    // it installs nothing, and no `-D` (the only source of an error) reaches it.
    parsed
        .init_logging()
        .map_err(|e| OptionError::Wasmtime(e.to_string()))?;
    Ok(parsed)
}

/// Whether a parsed key was given at all.
trait Given {
    fn given(&self) -> bool;
}

impl<T> Given for Option<T> {
    fn given(&self) -> bool {
        self.is_some()
    }
}

impl<T> Given for Vec<T> {
    fn given(&self) -> bool {
        !self.is_empty()
    }
}

/// Destructures one parsed Wasmtime option group, naming each field once.
/// Every field is named, so a key added to Wasmtime's group is a compile
/// error here until it is mapped, ignored or refused. The `keep` fields are
/// bound for the caller; the refused ones go into `$refused`, a list of
/// (field, given) for [`refuse_given`].
macro_rules! split_group {
    ($value:expr => $ty:path { $($keep:ident),* $(,)? }
     refused $refused:ident { $($no:ident),+ $(,)? }) => {
        let $ty { $($keep,)* $($no,)* } = $value;
        let $refused: &[(&str, bool)] = &[$((stringify!($no), Given::given(&$no))),+];
    };
}

/// Refuses the first given key of a refused list, by its command-line name
/// (the field name with `-` for `_`, as Wasmtime spells it).
fn refuse_given(group: &'static str, refused: &[(&str, bool)]) -> Result<(), OptionError> {
    match refused.iter().find(|(_, given)| *given) {
        Some((field, _)) => Err(unsupported(group, &field.replace('_', "-"))),
        None => Ok(()),
    }
}

fn unsupported(group: &'static str, key: &str) -> OptionError {
    OptionError::Unsupported {
        group,
        key: key.into(),
    }
}

impl WasmOptions {
    /// Applies one `-W` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-W / --wasm";
        split_group!(wasmtime_parse("wasm", arg)?.wasm => wasmtime_cli_flags::WasmOptions {
            timeout,
            max_memory_size,
            max_table_elements,
            fuel,
            max_wasm_stack,
            epoch_interruption,
            component_model,
        } refused refused {
            max_instances,
            max_tables,
            max_memories,
            trap_on_grow_failure,
            async_stack_size,
            async_stack_zeroing,
            unknown_exports_allow,
            unknown_imports_trap,
            unknown_imports_default,
            nan_canonicalization,
            wmemcheck,
            all_proposals,
            bulk_memory,
            multi_memory,
            multi_value,
            reference_types,
            simd,
            relaxed_simd,
            relaxed_simd_deterministic,
            tail_call,
            threads,
            shared_memory,
            shared_everything_threads,
            memory64,
            component_model_async,
            component_model_more_async_builtins,
            component_model_async_stackful,
            component_model_threading,
            component_model_error_context,
            component_model_gc,
            component_model_map,
            component_model_memory64,
            function_references,
            stack_switching,
            gc,
            custom_page_sizes,
            wide_arithmetic,
            branch_hinting,
            extended_const,
            exceptions,
            gc_support,
            component_model_fixed_length_lists,
            component_model_implements,
            concurrency_support,
        });
        if component_model == Some(false) {
            // `wasmtime serve`'s wording.
            return Err(OptionError::Conflict(
                "components are required for the serve command, and must not be disabled",
            ));
        }
        refuse_given(G, refused)?;
        if let Some(t) = timeout {
            self.timeout = Some(t);
            self.epoch_interruption = true;
        }
        if let Some(v) = max_memory_size {
            self.max_memory_size = Some(v as u64);
        }
        self.max_table_elements = max_table_elements.or(self.max_table_elements);
        self.fuel = fuel.or(self.fuel);
        self.max_wasm_stack = max_wasm_stack.or(self.max_wasm_stack);
        self.epoch_interruption |= epoch_interruption.unwrap_or(false);
        Ok(())
    }
}

impl WasiOptions {
    /// Applies one `-S` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-S / --wasi";
        split_group!(wasmtime_parse("wasi", arg)?.wasi => wasmtime_cli_flags::WasiOptions {
            cli,
            cli_exit_with_code,
            common,
            http,
            http_outgoing_body_buffer_chunks,
            http_outgoing_body_chunk_size,
            tls,
            inherit_network,
            allow_ip_name_lookup,
            tcp,
            udp,
            network_error_code,
            inherit_env,
            inherit_stdin,
            inherit_stdout,
            inherit_stderr,
            cwd,
            p3,
            config,
            config_var,
            keyvalue,
            keyvalue_in_memory_data,
            max_resources,
            hostcall_fuel,
            max_component_handles,
            max_random_size,
            max_http_fields_size,
        } refused refused {
            // Features this project does not build (nor does the `wasmtime
            // serve` it installs), or that components cannot use.
            nn,
            nn_graph,
            threads,
            listenfd,
            tcplisten,
            preview2,
            preview0,
        });
        if http == Some(false) {
            // `wasmtime serve`'s wording.
            return Err(OptionError::Conflict(
                "wasi-http is required for the serve command, and must not be disabled",
            ));
        }
        refuse_given(G, refused)?;
        // Accepted and ignored by `wasmtime serve` as well.
        let _ = (
            inherit_stdin,
            inherit_stdout,
            inherit_stderr,
            tls,
            cli_exit_with_code,
        );
        // `common` is a deprecated alias of `cli`; `wasmtime serve` refuses
        // both together, in whichever arguments they come.
        self.common_alias |= common.is_some();
        self.cli_given |= cli.is_some();
        if self.common_alias && self.cli_given {
            return Err(OptionError::Conflict(
                "The -Scommon option should not be use with -Scli as it is a deprecated alias",
            ));
        }
        if let Some(on) = cli.or(common) {
            self.cli = on;
        }
        self.inherit_env = inherit_env.unwrap_or(self.inherit_env);
        self.inherit_network = inherit_network.unwrap_or(self.inherit_network);
        self.network_error_code = network_error_code.unwrap_or(self.network_error_code);
        self.allow_ip_name_lookup = allow_ip_name_lookup.or(self.allow_ip_name_lookup);
        self.tcp = tcp.or(self.tcp);
        self.udp = udp.or(self.udp);
        self.max_http_fields_size = max_http_fields_size.or(self.max_http_fields_size);
        self.http_outgoing_body_buffer_chunks =
            http_outgoing_body_buffer_chunks.or(self.http_outgoing_body_buffer_chunks);
        self.http_outgoing_body_chunk_size =
            http_outgoing_body_chunk_size.or(self.http_outgoing_body_chunk_size);
        self.max_resources = max_resources.or(self.max_resources);
        self.hostcall_fuel = hostcall_fuel.or(self.hostcall_fuel);
        self.max_component_handles = max_component_handles.or(self.max_component_handles);
        self.max_random_size = max_random_size.or(self.max_random_size);
        if cwd.is_some() {
            self.cwd = cwd;
        }
        self.p3 = p3.or(self.p3);
        self.config = config.unwrap_or(self.config);
        self.config_vars
            .extend(config_var.into_iter().map(|kv| (kv.key, kv.value)));
        self.keyvalue = keyvalue.unwrap_or(self.keyvalue);
        self.keyvalue_in_memory_data.extend(
            keyvalue_in_memory_data
                .into_iter()
                .map(|kv| (kv.key, kv.value)),
        );
        Ok(())
    }
}

impl OptimizeOptions {
    /// Applies one `-O` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-O / --optimize";
        split_group!(wasmtime_parse("optimize", arg)?.opts => wasmtime_cli_flags::OptimizeOptions {
            pooling_allocator,
            pooling_total_component_instances,
            pooling_total_memories,
            pooling_total_core_instances,
            pooling_max_memory_size,
            pooling_memory_keep_resident,
            pooling_table_keep_resident,
            pooling_pagemap_scan,
            pooling_max_unused_warm_slots,
        } refused refused {
            // Code generation, memory layout and the pool limits host-runner
            // sizes itself: none changes serving semantics.
            opt_level,
            regalloc_algorithm,
            memory_may_move,
            memory_reservation,
            memory_reservation_for_growth,
            memory_guard_size,
            gc_heap_may_move,
            gc_heap_reservation,
            gc_heap_reservation_for_growth,
            gc_heap_guard_size,
            gc_heap_initial_size,
            guard_before_linear_memory,
            table_lazy_init,
            pooling_decommit_batch_size,
            pooling_memory_protection_keys,
            pooling_max_memory_protection_keys,
            memory_init_cow,
            memory_guaranteed_dense_image_size,
            pooling_total_tables,
            pooling_total_stacks,
            pooling_table_elements,
            pooling_max_core_instance_size,
            pooling_async_stack_keep_resident,
            pooling_max_component_instance_size,
            pooling_max_core_instances_per_component,
            pooling_max_memories_per_component,
            pooling_max_tables_per_component,
            pooling_max_tables_per_module,
            pooling_max_memories_per_module,
            pooling_total_gc_heaps,
            signals_based_traps,
            dynamic_memory_guard_size,
            static_memory_guard_size,
            static_memory_forced,
            static_memory_maximum_size,
            dynamic_memory_reserved_for_growth,
            gc_zeal_alloc_counter,
        });
        refuse_given(G, refused)?;
        self.pooling_allocator = pooling_allocator.or(self.pooling_allocator);
        self.pooling_total_component_instances =
            pooling_total_component_instances.or(self.pooling_total_component_instances);
        self.pooling_total_memories = pooling_total_memories.or(self.pooling_total_memories);
        self.pooling_total_core_instances =
            pooling_total_core_instances.or(self.pooling_total_core_instances);
        self.pooling_max_memory_size = pooling_max_memory_size.or(self.pooling_max_memory_size);
        self.pooling_memory_keep_resident =
            pooling_memory_keep_resident.or(self.pooling_memory_keep_resident);
        self.pooling_table_keep_resident =
            pooling_table_keep_resident.or(self.pooling_table_keep_resident);
        self.pooling_pagemap_scan = pooling_pagemap_scan
            .map(Tristate::from)
            .or(self.pooling_pagemap_scan);
        self.pooling_max_unused_warm_slots =
            pooling_max_unused_warm_slots.or(self.pooling_max_unused_warm_slots);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_wasmtime() {
        assert_eq!(parse_duration("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse_duration("5μs"), Ok(Duration::from_micros(5)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(
            parse_duration("1m"),
            Err("failed to parse duration: 1m".into())
        );
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn wasm_group() {
        let mut w = WasmOptions::default();
        w.apply("timeout=2s,max-memory-size=0x1000_0000").unwrap();
        assert_eq!(w.timeout, Some(Duration::from_secs(2)));
        assert_eq!(w.max_memory_size, Some(0x1000_0000));
        assert!(w.epoch_interruption);
        // A later argument overrides one key and keeps the others.
        w.apply("fuel=1_000,max-table-elements=10").unwrap();
        assert_eq!(w.fuel, Some(1000));
        assert_eq!(w.max_table_elements, Some(10));
        assert_eq!(w.timeout, Some(Duration::from_secs(2)));
        // `wasmtime serve`'s wording, word for word.
        assert_eq!(
            w.apply("max-memory-size=64MiB").unwrap_err().to_string(),
            "failed to parse -W option `max-memory-size=64MiB`: invalid digit found in string"
        );
        assert_eq!(
            w.apply("timeout=1m").unwrap_err().to_string(),
            "failed to parse -W option `timeout=1m`: failed to parse duration: 1m"
        );
        assert_eq!(
            w.apply("bogus").unwrap_err().to_string(),
            "unknown -W / --wasm option: bogus"
        );
        assert_eq!(
            w.apply("component-model=n").unwrap_err().to_string(),
            "components are required for the serve command, and must not be disabled"
        );
        w.apply("component-model").unwrap();
        assert_eq!(
            w.apply("simd=n").unwrap_err().to_string(),
            "-W / --wasm option `simd` is not supported by host-runner"
        );
        assert!(matches!(
            w.apply("max-instances=3"),
            Err(OptionError::Unsupported { .. })
        ));
    }

    #[test]
    fn wasi_group() {
        let mut s = WasiOptions::default();
        s.apply("inherit-stdout,tls,cli-exit-with-code=n,max-http-fields-size=1024")
            .unwrap();
        assert_eq!(s.max_http_fields_size, Some(1024));
        assert_eq!(
            s.apply("http=n").unwrap_err().to_string(),
            "wasi-http is required for the serve command, and must not be disabled"
        );
        s.apply("http").unwrap();
        for key in ["nn", "threads", "listenfd", "preview2"] {
            assert_eq!(
                s.apply(key).unwrap_err().to_string(),
                format!("-S / --wasi option `{key}` is not supported by host-runner")
            );
        }
        assert!(matches!(
            s.apply("tcplisten=127.0.0.1:0"),
            Err(OptionError::Unsupported { .. })
        ));
        s.apply("keyvalue,keyvalue-in-memory-data=a=b").unwrap();
        assert!(s.keyvalue);
        assert_eq!(s.keyvalue_in_memory_data, [("a".into(), "b".into())]);
        s.apply("cli,inherit-network,tcp=n,http-outgoing-body-chunk-size=0x400,max-resources=10")
            .unwrap();
        assert!(s.cli && s.inherit_network);
        assert_eq!(s.tcp, Some(false));
        assert_eq!(s.http_outgoing_body_chunk_size, Some(1024));
        assert_eq!(s.max_resources, Some(10));
        s.apply("config,config-var=a=1,config-var=url=http://h/?q=x")
            .unwrap();
        s.apply("config-var=a=2").unwrap();
        assert!(s.config);
        assert_eq!(
            s.config_vars,
            [
                ("a".to_string(), "1".to_string()),
                ("url".into(), "http://h/?q=x".into()),
                ("a".into(), "2".into())
            ]
        );
        s.apply("cwd=/srv,p3=n,max-random-size=0x10").unwrap();
        assert_eq!(s.cwd.as_deref(), Some("/srv"));
        assert_eq!(s.p3, Some(false));
        assert_eq!(s.max_random_size, Some(16));
        assert_eq!(
            s.apply("inherit-env=maybe").unwrap_err().to_string(),
            "failed to parse -S option `inherit-env=maybe`: unknown boolean flag `maybe`, only yes,no,<nothing> accepted"
        );
        let e = s.apply("common").unwrap_err().to_string();
        assert!(e.contains("deprecated alias"), "{e}");
        let mut alias = WasiOptions::default();
        alias.apply("common").unwrap();
        assert!(alias.cli);
        assert!(alias.apply("cli=n").is_err());
    }

    #[test]
    fn optimize_group() {
        let mut o = OptimizeOptions::default();
        o.apply("pooling-pagemap-scan=auto,pooling-memory-keep-resident=0x10000")
            .unwrap();
        assert_eq!(o.pooling_pagemap_scan, Some(Tristate::Auto));
        assert_eq!(o.pooling_memory_keep_resident, Some(65536));
        o.apply("pooling-pagemap-scan=n").unwrap();
        assert_eq!(o.pooling_pagemap_scan, Some(Tristate::No));
        assert_eq!(
            o.apply("pooling-pagemap-scan=sometimes").unwrap_err().to_string(),
            "failed to parse -O option `pooling-pagemap-scan=sometimes`: unknown flag `sometimes`, only yes,no,auto,<nothing> accepted"
        );
        o.apply("pooling-allocator=n").unwrap();
        assert_eq!(o.pooling_allocator, Some(false));
        o.apply("pooling-allocator").unwrap();
        assert_eq!(o.pooling_allocator, Some(true));
        assert!(o.apply("pooling-allocator=maybe").is_err());
        o.apply("pooling-total-memories=100,pooling-max-unused-warm-slots=3")
            .unwrap();
        assert_eq!(o.pooling_total_memories, Some(100));
        assert_eq!(o.pooling_max_unused_warm_slots, Some(3));
        // u32 keys are range-checked, not truncated.
        assert!(o.apply("pooling-total-memories=0x1_0000_0000").is_err());
        for key in [
            "opt-level=2",
            "memory-guard-size=0",
            "pooling-total-tables=5",
        ] {
            let name = key.split('=').next().unwrap();
            assert_eq!(
                o.apply(key).unwrap_err().to_string(),
                format!("-O / --optimize option `{name}` is not supported by host-runner")
            );
        }
        assert_eq!(
            o.apply("bogus").unwrap_err().to_string(),
            "unknown -O / --optimize option: bogus"
        );
    }
}
