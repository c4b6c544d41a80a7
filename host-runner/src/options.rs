//! The `-W`, `-S` and `-O` option groups, with Wasmtime's syntax.
//!
//! `-X key[=val][,key[=val]...]`, repeatable. Booleans: bare, `y`/`yes`/`true`,
//! `n`/`no`/`false`. Integers: decimal with `_`, or `0x` hex; no units.
//! Durations: an integer followed by nothing (seconds), `s`, `ms`, `us`/`μs`
//! or `ns`. Unknown keys are errors. Only keys that matter for serving are
//! accepted; the others Wasmtime knows are refused by name, so a user is
//! never silently ignored.

use std::time::Duration;

/// A malformed or unsupported option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    /// The key is not known in this group.
    #[error("unknown {group} option: {key}")]
    Unknown {
        /// `-W / --wasm`, etc.
        group: &'static str,
        /// The key as given.
        key: String,
    },
    /// The value does not parse.
    #[error("failed to parse {group} option `{item}`: {why}")]
    Invalid {
        /// The group.
        group: &'static str,
        /// `key=value` as given.
        item: String,
        /// Why.
        why: String,
    },
    /// Two options that may not be combined (Wasmtime's wording).
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
}

impl Default for WasiOptions {
    fn default() -> Self {
        Self {
            http: true,
            max_http_fields_size: None,
            cli: false,
            common_alias: false,
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

impl Tristate {
    fn parse(v: Option<&str>) -> Result<Self, String> {
        match v {
            Some("auto") => Ok(Tristate::Auto),
            other => parse_bool(other).map(|b| if b { Tristate::Yes } else { Tristate::No }),
        }
    }
}

/// Splits `a=1,b,c=x` into `(key, value)` pairs.
fn items(arg: &str) -> impl Iterator<Item = (&str, Option<&str>, &str)> {
    arg.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim()), item),
            None => (item.trim(), None, item),
        })
}

fn invalid(group: &'static str, item: &str, why: impl ToString) -> OptionError {
    OptionError::Invalid {
        group,
        item: item.to_string(),
        why: why.to_string(),
    }
}

fn unknown(group: &'static str, key: &str) -> OptionError {
    OptionError::Unknown {
        group,
        key: key.into(),
    }
}

fn unsupported(group: &'static str, key: &str) -> OptionError {
    OptionError::Unsupported {
        group,
        key: key.into(),
    }
}

/// Parses a Wasmtime boolean.
pub fn parse_bool(v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("y") | Some("yes") | Some("true") => Ok(true),
        Some("n") | Some("no") | Some("false") => Ok(false),
        Some(other) => Err(format!("invalid boolean value `{other}`")),
    }
}

/// Parses a Wasmtime integer (decimal with `_`, or `0x` hex).
pub fn parse_u64(v: Option<&str>) -> Result<u64, String> {
    let v = v.ok_or("a value is required")?.replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|e| e.to_string())
}

/// Parses a Wasmtime duration: an integer with no unit (seconds), `s`, `ms`,
/// `us`/`μs` or `ns`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("failed to parse duration: {v}");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "us" | "μs" => Duration::from_micros(n),
        "ns" => Duration::from_nanos(n),
        _ => return Err(bad()),
    })
}

impl WasmOptions {
    /// Applies one `-W` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-W / --wasm";
        for (key, value, item) in items(arg) {
            match key {
                "timeout" => {
                    let v = value.ok_or_else(|| invalid(G, item, "a value is required"))?;
                    self.timeout = Some(parse_duration(v).map_err(|e| invalid(G, item, e))?);
                    self.epoch_interruption = true;
                }
                "max-memory-size" => {
                    self.max_memory_size = Some(parse_u64(value).map_err(|e| invalid(G, item, e))?);
                }
                "fuel" => self.fuel = Some(parse_u64(value).map_err(|e| invalid(G, item, e))?),
                "max-wasm-stack" => {
                    self.max_wasm_stack =
                        Some(parse_u64(value).map_err(|e| invalid(G, item, e))? as usize);
                }
                "epoch-interruption" => {
                    self.epoch_interruption |=
                        parse_bool(value).map_err(|e| invalid(G, item, e))?;
                }
                "component-model" => {
                    if !parse_bool(value).map_err(|e| invalid(G, item, e))? {
                        return Err(invalid(
                            G,
                            item,
                            "components are required for the serve command, and must not be disabled",
                        ));
                    }
                }
                "max-table-elements" => {
                    self.max_table_elements =
                        Some(parse_u64(value).map_err(|e| invalid(G, item, e))? as usize);
                }
                "max-instances"
                | "max-tables"
                | "max-memories"
                | "trap-on-grow-failure"
                | "async-stack-size"
                | "unknown-imports-trap"
                | "unknown-imports-default"
                | "threads"
                | "simd"
                | "relaxed-simd"
                | "gc"
                | "function-references"
                | "exceptions"
                | "memory64" => return Err(unsupported(G, key)),
                _ => return Err(unknown(G, key)),
            }
        }
        Ok(())
    }
}

impl WasiOptions {
    /// Applies one `-S` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-S / --wasi";
        for (key, value, item) in items(arg) {
            let flag = || parse_bool(value).map_err(|e| invalid(G, item, e));
            let int = || parse_u64(value).map_err(|e| invalid(G, item, e));
            match key {
                "http" => {
                    if !parse_bool(value).map_err(|e| invalid(G, item, e))? {
                        return Err(invalid(
                            G,
                            item,
                            "the serve command requires wasi-http (it cannot be disabled)",
                        ));
                    }
                }
                "max-http-fields-size" => {
                    self.max_http_fields_size =
                        Some(parse_u64(value).map_err(|e| invalid(G, item, e))? as usize);
                }
                "cli" | "common" => {
                    let on = parse_bool(value).map_err(|e| invalid(G, item, e))?;
                    if key == "common" {
                        self.common_alias = true;
                    }
                    if self.common_alias && (key == "cli" || self.cli) {
                        return Err(OptionError::Conflict(
                            "The -Scommon option should not be use with -Scli as it is a deprecated alias",
                        ));
                    }
                    self.cli = on;
                }
                "inherit-env" => self.inherit_env = flag()?,
                "inherit-network" => self.inherit_network = flag()?,
                "allow-ip-name-lookup" => self.allow_ip_name_lookup = Some(flag()?),
                "tcp" => self.tcp = Some(flag()?),
                "udp" => self.udp = Some(flag()?),
                "network-error-code" => self.network_error_code = flag()?,
                "http-outgoing-body-buffer-chunks" => {
                    self.http_outgoing_body_buffer_chunks = Some(int()? as usize);
                }
                "http-outgoing-body-chunk-size" => {
                    self.http_outgoing_body_chunk_size = Some(int()? as usize);
                }
                "max-resources" => self.max_resources = Some(int()? as usize),
                "hostcall-fuel" => self.hostcall_fuel = Some(int()? as usize),
                "max-component-handles" => self.max_component_handles = Some(int()? as usize),
                "max-random-size" => self.max_random_size = Some(int()?),
                "cwd" => {
                    let v = value.ok_or_else(|| invalid(G, item, "a value is required"))?;
                    self.cwd = Some(v.to_string());
                }
                // Accepted and ignored by `wasmtime serve` as well.
                "p3" => self.p3 = Some(parse_bool(value).map_err(|e| invalid(G, item, e))?),
                "inherit-stdin" | "inherit-stdout" | "inherit-stderr" | "tls"
                | "cli-exit-with-code" => {
                    parse_bool(value).map_err(|e| invalid(G, item, e))?;
                }
                // Features this project does not build (nor does the
                // `wasmtime serve` it installs), or that components cannot use.
                "keyvalue"
                | "keyvalue-in-memory-data"
                | "config"
                | "config-var"
                | "nn"
                | "nn-graph"
                | "threads"
                | "listenfd"
                | "tcplisten"
                | "preview2" => return Err(unsupported(G, key)),
                _ => return Err(unknown(G, key)),
            }
        }
        Ok(())
    }
}

impl OptimizeOptions {
    /// Applies one `-O` argument.
    pub fn apply(&mut self, arg: &str) -> Result<(), OptionError> {
        const G: &str = "-O / --optimize";
        for (key, value, item) in items(arg) {
            let int = || parse_u64(value).map_err(|e| invalid(G, item, e));
            match key {
                "pooling-allocator" => {
                    self.pooling_allocator =
                        Some(parse_bool(value).map_err(|e| invalid(G, item, e))?);
                }
                "pooling-total-component-instances" => {
                    self.pooling_total_component_instances = Some(int()? as u32);
                }
                "pooling-total-memories" => self.pooling_total_memories = Some(int()? as u32),
                "pooling-total-core-instances" => {
                    self.pooling_total_core_instances = Some(int()? as u32);
                }
                "pooling-max-memory-size" => self.pooling_max_memory_size = Some(int()? as usize),
                "pooling-memory-keep-resident" => {
                    self.pooling_memory_keep_resident = Some(int()? as usize);
                }
                "pooling-table-keep-resident" => {
                    self.pooling_table_keep_resident = Some(int()? as usize);
                }
                "pooling-pagemap-scan" => {
                    self.pooling_pagemap_scan =
                        Some(Tristate::parse(value).map_err(|e| invalid(G, item, e))?);
                }
                "pooling-max-unused-warm-slots" => {
                    self.pooling_max_unused_warm_slots = Some(int()? as u32);
                }
                // Code-generation settings that do not change serving semantics.
                "opt-level"
                | "regalloc-algorithm"
                | "memory-may-move"
                | "memory-reservation"
                | "memory-guard-size"
                | "signals-based-traps"
                | "table-lazy-init" => return Err(unsupported(G, key)),
                _ => return Err(unknown(G, key)),
            }
        }
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
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert!(parse_duration("1m").is_err());
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn wasm_group() {
        let mut w = WasmOptions::default();
        w.apply("timeout=2s,max-memory-size=0x1000_0000").unwrap();
        assert_eq!(w.timeout, Some(Duration::from_secs(2)));
        assert_eq!(w.max_memory_size, Some(0x1000_0000));
        assert!(w.epoch_interruption);
        let e = w.apply("max-memory-size=64MiB").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to parse -W / --wasm option `max-memory-size=64MiB`"),
            "{e}"
        );
        assert_eq!(
            w.apply("bogus").unwrap_err().to_string(),
            "unknown -W / --wasm option: bogus"
        );
        assert!(w.apply("component-model=n").is_err());
    }

    #[test]
    fn wasi_and_optimize_groups() {
        let mut s = WasiOptions::default();
        s.apply("inherit-stdout,max-http-fields-size=1024").unwrap();
        assert_eq!(s.max_http_fields_size, Some(1024));
        assert!(s.apply("http=n").is_err());
        assert!(matches!(
            s.apply("keyvalue"),
            Err(OptionError::Unsupported { .. })
        ));
        s.apply("cli,inherit-network,tcp=n,http-outgoing-body-chunk-size=0x400,max-resources=10")
            .unwrap();
        assert!(s.cli && s.inherit_network);
        assert_eq!(s.tcp, Some(false));
        assert_eq!(s.http_outgoing_body_chunk_size, Some(1024));
        assert_eq!(s.max_resources, Some(10));
        let e = s.apply("common").unwrap_err().to_string();
        assert!(e.contains("deprecated alias"), "{e}");
        let mut alias = WasiOptions::default();
        alias.apply("common").unwrap();
        assert!(alias.cli);
        let mut o = OptimizeOptions::default();
        o.apply("pooling-pagemap-scan=auto,pooling-memory-keep-resident=0x10000")
            .unwrap();
        assert_eq!(o.pooling_pagemap_scan, Some(Tristate::Auto));
        assert_eq!(o.pooling_memory_keep_resident, Some(65536));
        o.apply("pooling-pagemap-scan=n").unwrap();
        assert_eq!(o.pooling_pagemap_scan, Some(Tristate::No));
        assert!(o.apply("pooling-pagemap-scan=sometimes").is_err());
        o.apply("pooling-allocator=n").unwrap();
        assert_eq!(o.pooling_allocator, Some(false));
        o.apply("pooling-allocator").unwrap();
        assert_eq!(o.pooling_allocator, Some(true));
        assert!(o.apply("pooling-allocator=maybe").is_err());
    }
}
