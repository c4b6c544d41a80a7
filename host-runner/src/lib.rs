//! host-runner: a Wasmtime embedder for `wasi:http/proxy` components.
//!
//! It serves a component the way `wasmtime serve` does (same flags where they
//! overlap, same startup line, a fresh instance per request from a
//! pre-instantiated component, the same 500 page and log lines when a guest
//! fails) and adds what operators ask for: in-process composition
//! (`--plug`), limits on by default with a bounded admission queue, header
//! and idle timeouts, graceful drain on SIGTERM and SIGINT, TLS and HTTP/2,
//! access logs and Prometheus metrics.
//!
//! Modules, one concern each:
//! - [`options`]: the `-W`/`-S`/`-O` option groups, parsed as Wasmtime does;
//! - [`capabilities`]: what `-S cli`, `--env`, `--dir` and the network keys
//!   grant each instance;
//! - [`wasi_config`]: the values `wasi:config/store` answers (`-S config`,
//!   `--config-file`, `--config-env-prefix`);
//! - [`outbound`]: guests' outbound HTTP: the `--outbound-allow` policy,
//!   the pooled client, timeouts and the concurrency cap;
//! - [`compose`]: plugging components together with wac-graph;
//! - [`engine`]: engine configuration, compilation, proxy validation;
//! - [`handler`]: one request through an instance: a fresh one per request (p2,
//!   the default), or a `ProxyHandler` worker pool (p3, and p2 with reuse);
//! - [`headers`]: `-H` request-header overrides;
//! - [`admission`]: the concurrency limit and its bounded queue;
//! - [`memory_budget`]: one budget for the guest memory of all instances;
//! - [`listen`]: `--addr` values (TCP and Unix sockets) and binding them;
//! - [`server`]: listeners, connections (HTTP/1.1 and HTTP/2), drain;
//! - [`tls`]: the listener's certificate, ALPN and reload on SIGHUP;
//! - [`metrics`]: counters, histograms and the admin endpoints;
//! - [`telemetry`]: OpenTelemetry traces and metrics over OTLP, off unless
//!   `OTEL_EXPORTER_OTLP_*ENDPOINT` is set;
//! - [`registry`]: `oci://` references: verified pulls, the cache, cosign
//!   signatures, credentials;
//! - [`log_stream`]: guest stdout/stderr with `wasmtime serve`'s prefixes.

pub mod admission;
pub mod capabilities;
pub mod cli;
pub mod compose;
pub mod container;
pub mod engine;
pub mod handler;
pub mod headers;
pub mod keyvalue;
pub mod listen;
pub mod log_stream;
pub mod memory_budget;
pub mod metrics;
pub mod options;
pub mod outbound;
pub mod registry;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod wasi_config;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; colours only on a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`),
    /// for log collectors.
    Json,
}

/// Set by [`init_logging`] under `--log-format json`.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Logs to stderr, filtered by `HOST_RUNNER_LOG` (default `info`), as
/// `format` says; text has colours only when stderr is a terminal.
///
/// Lines are written by a thread of their own (`tracing-appender`), so a
/// slow stderr never stalls a request: past 128 Ki queued lines, new ones
/// are dropped rather than waited for. The guard flushes what is queued
/// when dropped; hold it until the process ends.
#[must_use = "dropping the guard stops logging"]
pub fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOST_RUNNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `init` would panic where a `log` logger is already installed: in a
    // containerd shim's container process, which inherits the shim's. The
    // subscriber is installed first, so there it is still ours, only
    // without the bridge from the `log` crate.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .try_init(),
        LogFormat::Json => {
            JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
            builder.json().with_ansi(false).finish().try_init()
        }
    };
    guard
}

/// A failure line in `wasmtime serve`'s words (`error: ...`, `worker
/// failed: ...`): written to stderr as it is in text mode, where tools and
/// tests read those words, and as one JSON error event (target
/// `host_runner::failure`, the line in `message`) under `--log-format json`.
pub(crate) fn failure_line(line: std::fmt::Arguments<'_>) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(target: "host_runner::failure", "{line}");
    } else {
        eprintln!("{line}");
    }
}
