//! The command line: `host-runner serve` and `host-runner compose`.
//!
//! Flags shared with `wasmtime serve` keep its spellings, defaults and
//! meanings; the rest are host-runner's own and documented in the README.
//! Everything that can fail (options, files, composition, compilation,
//! linking, the bind) is checked before the serving line is printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::admission::Admission;
use crate::capabilities::Capabilities;
use crate::engine::{self, EngineSettings, EpochTicker, HttpHooks};
use crate::handler::{self, Handler, HandlerConfig};
use crate::headers::HeaderOverrides;
use crate::memory_budget::MemoryBudget;
use crate::metrics::Metrics;
use crate::options::{parse_duration, OptimizeOptions, WasiOptions, WasmOptions};
use crate::registry::{self, Fetched, Fetcher, PullPolicy, RegistryOptions, Source};
use crate::server::{self, App, ServerConfig};

#[derive(Parser)]
#[command(
    name = "host-runner",
    version,
    about = "Serve wasi:http/proxy components with Wasmtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How host-runner's own log lines are written: `text`, or `json` (one
    /// object per line, for log collectors). Guest output is not affected.
    #[arg(long, global = true, value_enum, default_value_t = crate::LogFormat::Text)]
    log_format: crate::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a wasi:http/proxy component (like `wasmtime serve`).
    Serve(Box<ServeArgs>),
    /// Plug components into a component's imports and write the result.
    Compose(ComposeArgs),
    /// Pull and verify a registry component into the cache (and a file).
    Pull(PullArgs),
    /// Print a registry component's digest, manifest and config as JSON.
    Inspect(InspectArgs),
    /// Sign a registry component (cosign key-pair format) and store the signature.
    Sign(SignArgs),
    /// Push an OCI image whose root filesystem holds the component (the
    /// entrypoint set), for node runtimes that cannot unpack a Wasm artifact
    /// and run it through a shim (containerd before 1.6.25 / 1.7.7).
    Image(ImageArgs),
}

/// Exit status when a registry says a reference does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;

/// How components named by `oci://` references are pulled and verified.
#[derive(Args, Clone)]
struct RegistryArgs {
    /// Speak plain HTTP to this registry, named exactly as in references
    /// (`HOST:PORT`; repeatable). Every other registry is HTTPS.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Pull cache [default: $XDG_CACHE_HOME/host-runner/oci or ~/.cache/host-runner/oci].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// When to ask the registry: always; missing (digests from the cache,
    /// tags from the registry with the cache as fallback); never.
    #[arg(long, default_value = "missing", value_name = "POLICY")]
    pull: PullPolicy,
    /// Require a cosign signature by this public key (SubjectPublicKeyInfo
    /// PEM, P-256) on every component, plugs included (repeatable: any one key).
    #[arg(long = "verify-key", value_name = "PUB.pem")]
    verify_keys: Vec<PathBuf>,
    /// Connect and read time limit for each registry request.
    #[arg(long, default_value = "30s", value_parser = duration)]
    registry_timeout: Duration,
    /// Largest component layer accepted from a registry, in bytes.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    max_component_size: u64,
}

impl RegistryArgs {
    fn options(&self) -> RegistryOptions {
        RegistryOptions {
            cache_dir: self.cache_dir.clone(),
            pull: self.pull,
            insecure: self.insecure_registries.clone(),
            verify_keys: self.verify_keys.clone(),
            timeout: self.registry_timeout,
            max_component_size: self.max_component_size,
        }
    }

    /// Reads or pulls every source, verifying each before returning any.
    fn fetch(&self, sources: &[Source]) -> Result<Vec<Fetched>> {
        let needs_registry =
            !self.verify_keys.is_empty() || sources.iter().any(|s| matches!(s, Source::Oci(_)));
        if !needs_registry {
            return sources
                .iter()
                .map(|s| match s {
                    Source::File(path) => Ok(registry::read_file(path)?),
                    Source::Oci(_) => unreachable!("checked above"),
                })
                .collect();
        }
        let registries: Vec<&str> = sources
            .iter()
            .filter_map(|s| match s {
                Source::Oci(r) => Some(r.registry.as_str()),
                Source::File(_) => None,
            })
            .collect();
        registry::credentials::check_binding(&registries)?;
        let fetcher = Fetcher::new(self.options())?;
        sources.iter().map(|s| Ok(fetcher.fetch(s)?)).collect()
    }
}

fn source(arg: &str) -> Result<Source, String> {
    Source::parse(arg).map_err(|e| e.problem)
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// `host-runner serve`.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix socket.
    /// Repeat it to listen on several; each gets its own serving line.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    addr: Vec<crate::listen::ListenAddr>,
    /// Serve on the listening sockets a service manager passed (systemd
    /// socket activation: LISTEN_FDS, LISTEN_PID) instead of binding
    /// --addr; without any passed, --addr is bound as usual.
    #[arg(long)]
    systemd_listenfd: bool,
    /// Permissions of the Unix sockets `--addr unix:PATH` creates (octal).
    #[arg(long, default_value = "660", value_parser = crate::listen::parse_mode)]
    unix_socket_mode: u32,
    /// WebAssembly options, parsed as `wasmtime serve` parses them (`-W help`
    /// lists Wasmtime's keys; host-runner implements timeout, max-memory-size,
    /// max-table-elements, fuel, max-wasm-stack, epoch-interruption and refuses
    /// the others by name).
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VAL[,..]]")]
    wasm: Vec<String>,
    /// WASI options (`-S help` lists Wasmtime's keys): cli, inherit-env,
    /// inherit-network, allow-ip-name-lookup, tcp, udp, http (always on),
    /// max-http-fields-size, http-outgoing-body-buffer-chunks,
    /// http-outgoing-body-chunk-size, max-resources, hostcall-fuel,
    /// max-component-handles, max-random-size, cwd, p3, config,
    /// config-var, keyvalue, keyvalue-in-memory-data.
    #[arg(short = 'S', long = "wasi", value_name = "KEY[=VAL[,..]]")]
    wasi: Vec<String>,
    /// Optimization options (`-O help` lists Wasmtime's keys):
    /// pooling-allocator, the pooling-* totals, and how pooled slots are reset
    /// (pooling-pagemap-scan, pooling-*-keep-resident).
    #[arg(short = 'O', long = "optimize", value_name = "KEY[=VAL[,..]]")]
    optimize: Vec<String>,
    /// Pass an environment variable to the guest (`NAME=VAL`, or `NAME` to
    /// pass the host's value); seen only with `-S cli` (repeatable).
    #[arg(long = "env", value_name = "NAME[=VAL]")]
    envs: Vec<String>,
    /// Preopen a host directory, read-write, for every instance
    /// (`HOST[::GUEST]`); seen only with `-S cli` (repeatable).
    #[arg(long = "dir", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs: Vec<String>,
    /// Values for `wasi:config/store` (with `-S config`) from this file:
    /// TOML when it ends in `.toml` (nested tables give `table.key`),
    /// otherwise `KEY=VALUE` lines; `-S config-var` wins over it.
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Values for `wasi:config/store` (with `-S config`) from the host's
    /// environment: PREFIXNAME=VALUE becomes the key `name` (lower-cased);
    /// wins over --config-file, `-S config-var` wins over it.
    #[arg(long, value_name = "PREFIX")]
    config_env_prefix: Option<String>,
    /// Where host-runner keeps state: with `-S keyvalue` and no
    /// `--keyvalue-redis`, the embedded store `DIR/keyvalue.redb` (one
    /// process per directory). Default: `$XDG_STATE_HOME/host-runner`, or
    /// `~/.local/state/host-runner`.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A `wasi:keyvalue` bucket guests may open (repeatable; `default` when
    /// none is given). Any other name is `no-such-store`.
    #[arg(long = "keyvalue-bucket", value_name = "NAME")]
    keyvalue_buckets: Vec<String>,
    /// Keep `wasi:keyvalue@0.2.0-draft2` data in Redis at `redis://HOST:PORT[/DB]`
    /// (for several nodes sharing state). A URL with a password is refused
    /// here: use --keyvalue-redis-url-file.
    #[arg(long, value_name = "URL", conflicts_with = "keyvalue_redis_url_file")]
    keyvalue_redis: Option<String>,
    /// As --keyvalue-redis, the URL (credentials allowed) read from FILE.
    #[arg(long, value_name = "FILE")]
    keyvalue_redis_url_file: Option<PathBuf>,
    /// The prefix of every Redis key host-runner writes (then `BUCKET:KEY`).
    #[arg(long, value_name = "PREFIX", default_value = crate::keyvalue::redis::DEFAULT_PREFIX)]
    keyvalue_redis_prefix: String,
    /// Let guests send outbound HTTP requests to `[http://|https://]HOST[:PORT]`
    /// (HOST a name, *.NAME, * or an IP; PORT a number or *, the scheme's
    /// default when left out); repeatable. Without it, every outbound
    /// request is refused with HTTP-request-denied.
    #[arg(long = "outbound-allow", value_name = "RULE")]
    outbound_allow: Vec<crate::outbound::policy::Rule>,
    /// Trust the CA certificates in this PEM file for guests' HTTPS
    /// requests, besides Mozilla's roots.
    #[arg(long, value_name = "CA.pem")]
    outbound_ca: Option<PathBuf>,
    /// The longest TCP connect and TLS handshake of an outbound request (a
    /// guest's shorter `connect-timeout` wins).
    #[arg(long, default_value = "10s", value_parser = duration)]
    outbound_connect_timeout: Duration,
    /// The longest wait for an outbound response's headers once connected
    /// (a guest's shorter `first-byte-timeout` wins).
    #[arg(long, default_value = "60s", value_parser = duration)]
    outbound_first_byte_timeout: Duration,
    /// The longest pause within an outbound response's body (a guest's
    /// shorter `between-bytes-timeout` wins).
    #[arg(long, default_value = "60s", value_parser = duration)]
    outbound_between_bytes_timeout: Duration,
    /// Outbound requests in flight at once, from all guests; beyond it a
    /// request fails at once with connection-limit-reached.
    #[arg(long, default_value_t = 100)]
    outbound_max_concurrent: usize,
    /// How long an idle outbound connection is kept for the next request to
    /// the same scheme and authority (0: a fresh connection per request).
    #[arg(long, default_value = "90s", value_parser = duration)]
    outbound_idle_timeout: Duration,
    /// Add or replace a request header before the guest sees it: `name: value`,
    /// or `@file` with one header per line (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Any TCP connection to this address starts a graceful shutdown.
    #[arg(long, value_name = "SOCKADDR")]
    shutdown_addr: Option<SocketAddr>,
    /// Compose these components into the served one's imports first
    /// (repeatable; files or oci:// references).
    #[arg(long = "plug", value_name = "COMPONENT", value_parser = source)]
    plugs: Vec<Source>,
    /// Pass guest stdout/stderr through without the `stdout [N] :: ` prefix.
    #[arg(long)]
    no_logging_prefix: bool,
    /// Requests one instance serves in sequence before it is retired. p2
    /// default 1 (a fresh instance per request), p3 default 128; with
    /// reuse, state survives between requests.
    #[arg(long)]
    max_instance_reuse_count: Option<u64>,
    /// Requests one p3 instance serves at once (default 16); p2 instances
    /// always serve one at a time.
    #[arg(long)]
    max_instance_concurrent_reuse_count: Option<u64>,
    /// How long an idle instance is kept for reuse.
    #[arg(long, default_value = "1s", value_parser = duration)]
    idle_instance_timeout: Duration,
    /// Requests handled at once.
    #[arg(long, default_value_t = 1000)]
    max_concurrent_requests: usize,
    /// Client connections open at once; while full, new connections wait in
    /// the kernel's accept queue.
    #[arg(long, default_value_t = 1000)]
    max_concurrent_connections: usize,
    /// Requests that may wait for a slot; beyond this, 503 at once.
    #[arg(long, default_value_t = 1000)]
    max_queued_requests: usize,
    /// How long a request may wait for a slot before 503.
    #[arg(long, default_value = "5s", value_parser = duration)]
    queue_timeout: Duration,
    /// Per-request time limit when `-W timeout` is not given (0 disables).
    #[arg(long, default_value = "60s", value_parser = duration)]
    request_timeout: Duration,
    /// Per-memory cap in bytes when `-W max-memory-size` is not given (0 disables).
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    max_memory_size: u64,
    /// Bytes of guest linear memory all live instances may hold together
    /// [default: half of physical memory, or of the cgroup memory limit if
    /// smaller]; 0 disables. A growth past it
    /// fails, and new requests wait and then get 503 while it is spent.
    #[arg(long, value_name = "BYTES")]
    memory_budget: Option<u64>,
    /// Request bodies over this many bytes get 413 (0 disables).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_request_body_size: u64,
    /// Close connections that take longer than this to send request headers,
    /// or that sit idle between keep-alive requests.
    #[arg(long, default_value = "30s", value_parser = duration)]
    header_read_timeout: Duration,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, default_value = "30s", value_parser = duration)]
    drain_timeout: Duration,
    /// Serve /metrics (Prometheus) and /healthz on this address.
    #[arg(long, value_name = "SOCKADDR")]
    admin_addr: Option<SocketAddr>,
    /// Serve HTTPS (TLS 1.2 and 1.3, ALPN h2 and http/1.1) with this PEM
    /// certificate chain, leaf first; needs --tls-key. Both files are read
    /// again on SIGHUP.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1; ECDSA,
    /// Ed25519 or RSA).
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate issued by a CA in this PEM file (mutual
    /// TLS, for example between a proxy and host-runner).
    #[arg(long, value_name = "CA.pem", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// On a plaintext listener, serve HTTP/2 to clients that open with its
    /// preface (h2c by prior knowledge, as proxies speak to upstreams); off,
    /// plaintext is HTTP/1.1 only, as under `wasmtime serve`.
    #[arg(long)]
    h2c: bool,
    /// Drop a TLS client that has not finished its handshake by then.
    #[arg(long, default_value = "10s", value_parser = duration)]
    tls_handshake_timeout: Duration,
    /// Log one line per request (method, path, status, duration, request id).
    #[arg(long)]
    access_log: bool,
    /// Do not cache compiled code on disk.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The component to serve: a file, or oci://HOST:PORT/REPO:TAG or
    /// oci://HOST:PORT/REPO@sha256:HEX.
    #[arg(value_parser = source)]
    component: Source,
}

/// `host-runner compose`.
#[derive(Args)]
struct ComposeArgs {
    /// The component whose imports are filled (a file or an oci:// reference).
    #[arg(value_parser = source)]
    socket: Source,
    /// Components whose exports fill them (repeatable).
    #[arg(long = "plug", value_name = "COMPONENT", required = true, value_parser = source)]
    plugs: Vec<Source>,
    /// Where to write the composed component.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `host-runner pull`.
#[derive(Args)]
struct PullArgs {
    /// The component: oci://HOST:PORT/REPO:TAG or ...@sha256:HEX.
    #[arg(value_parser = source)]
    reference: Source,
    /// Also write the component to this file.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `host-runner inspect`.
#[derive(Args)]
struct InspectArgs {
    /// The component: oci://HOST:PORT/REPO:TAG or ...@sha256:HEX.
    #[arg(value_parser = source)]
    reference: Source,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `host-runner sign`.
#[derive(Args)]
struct SignArgs {
    /// The private key: PKCS#8 PEM, ECDSA P-256.
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// The component to sign: oci://HOST:PORT/REPO:TAG or ...@sha256:HEX.
    #[arg(value_parser = source)]
    reference: Source,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The component file.
    component: PathBuf,
    /// Where to push the image: oci://HOST:PORT/REPO:TAG.
    #[arg(value_parser = source)]
    reference: Source,
    /// The component's file name in the image, and so the entrypoint
    /// (`/NAME`) [default: the component's file name].
    #[arg(long, value_name = "NAME.wasm")]
    file_name: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Keeps host backtraces out of the errors that requests produce, unless
/// `RUST_LIB_BACKTRACE` asks for them.
///
/// Under `RUST_BACKTRACE=1` (which CI environments and many shells set),
/// every error Wasmtime creates captures a host backtrace, and logging a
/// guest failure symbolizes it: the first ones load and parse the binary's
/// debug information and keep it, which took a release build from 24 to
/// 283 MiB resident after 40 clients left mid-body, for good. The guest's
/// own wasm backtrace is part of the error and is still logged; panics
/// still get their backtrace (`RUST_BACKTRACE` alone governs those).
///
/// The variable is host-runner's own: `-S inherit-env` does not pass it on.
fn no_host_backtraces_in_errors() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Runs first in `main`, before any other thread exists.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
        LIB_BACKTRACE_IS_OURS.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether `RUST_LIB_BACKTRACE` was set by [`no_host_backtraces_in_errors`].
static LIB_BACKTRACE_IS_OURS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Runs the command line; the binary only calls this.
pub fn main() -> std::process::ExitCode {
    run(std::env::args_os())
}

/// Runs `argv` (the program name first) as the command line would: what a
/// container runtime's shim calls with `serve`, the flags from
/// [`crate::container::env::serve_args`] and its component. A malformed
/// command line exits as clap does (status 2, the message on stderr).
pub fn run<I, T>(argv: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    std::process::ExitCode::from(status(argv))
}

/// [`run`], returning the exit status as a number (a shim hands it to its
/// container runtime): 0 after a clean stop (a drain included), 1 when the
/// command failed (the reason on stderr), 2 for a malformed command line
/// (clap's message on stderr; `--help` and `--version` print and give 0),
/// [`EXIT_NOT_FOUND`] when a registry says a reference does not exist.
pub fn status<I, T>(argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    no_host_backtraces_in_errors();
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let _logging = crate::init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Compose(args) => compose(args),
        Command::Pull(args) => pull(args),
        Command::Inspect(args) => inspect(args),
        Command::Sign(args) => sign(args),
        Command::Image(args) => image(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:#}");
            let not_found = e
                .downcast_ref::<registry::FetchError>()
                .is_some_and(|f| f.not_found);
            if not_found {
                EXIT_NOT_FOUND
            } else {
                1
            }
        }
    }
}

/// The served component's name and bytes: fetched, then composed with the
/// plugs when there are any.
fn component_bytes(
    registry: &RegistryArgs,
    component: &Source,
    plugs: &[Source],
) -> Result<(String, Vec<u8>)> {
    let mut sources = vec![component.clone()];
    sources.extend(plugs.iter().cloned());
    let mut fetched = registry
        .fetch(&sources)?
        .into_iter()
        .map(|f| crate::compose::Input {
            name: f.name,
            bytes: f.bytes,
        });
    let main = fetched.next().expect("the component is the first source");
    if plugs.is_empty() {
        return Ok((main.name, main.bytes));
    }
    let plugs: Vec<_> = fetched.collect();
    let bytes = crate::compose::plug(&main, &plugs)?;
    Ok((main.name, bytes))
}

fn compose(args: ComposeArgs) -> Result<()> {
    let (_, bytes) = component_bytes(&args.registry, &args.socket, &args.plugs)?;
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("failed to write {}", args.output.display()))
}

fn oci_only(source: &Source) -> Result<&registry::OciReference> {
    match source {
        Source::Oci(r) => Ok(r),
        Source::File(path) => anyhow::bail!(
            "{} is a file; this command takes an oci://HOST:PORT/REPO:TAG reference",
            path.display()
        ),
    }
}

fn pull(args: PullArgs) -> Result<()> {
    let r = oci_only(&args.reference)?;
    let fetcher = Fetcher::new(args.registry.options())?;
    let fetched = fetcher.fetch(&args.reference)?;
    if let Some(output) = &args.output {
        std::fs::write(output, &fetched.bytes)
            .with_context(|| format!("failed to write {}", output.display()))?;
    }
    let digest = fetched.digest.expect("registry components have a digest");
    println!("{}", r.pinned(&digest));
    Ok(())
}

fn inspect(args: InspectArgs) -> Result<()> {
    let r = oci_only(&args.reference)?;
    let fetcher = Fetcher::new(args.registry.options())?;
    let description = fetcher.inspect(r)?;
    println!("{}", serde_json::to_string_pretty(&description)?);
    Ok(())
}

fn sign(args: SignArgs) -> Result<()> {
    let r = oci_only(&args.reference)?;
    let key = registry::signature::PrivateKey::load(&args.key)?;
    let fetcher = Fetcher::new(args.registry.options())?;
    let (digest, tag) = fetcher.sign(r, &key)?;
    println!("{}", r.pinned(&digest));
    eprintln!("Signed {digest} of {r}; signature stored under the tag {tag}");
    Ok(())
}

fn image(args: ImageArgs) -> Result<()> {
    let r = oci_only(&args.reference)?;
    let component = registry::read_file(&args.component)?;
    let file_name = match &args.file_name {
        Some(name) => name.clone(),
        None => args
            .component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let image = registry::image::Image::new(&file_name, &component.bytes)
        .with_context(|| format!("{}", args.component.display()))?;
    let fetcher = Fetcher::new(args.registry.options())?;
    let digest = fetcher.push_image(r, image)?;
    println!("{}", r.pinned(&digest));
    eprintln!(
        "Pushed an OCI image ({}/{}, entrypoint /{file_name}) of {} to {r}",
        registry::image::OS,
        registry::image::ARCHITECTURE,
        args.component.display()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> Result<()> {
    // First: read and removed from the environment before any thread
    // starts, and before `-S inherit-env` copies it.
    let inherited = if args.systemd_listenfd {
        crate::listen::inherited().map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    let mut wasm = WasmOptions::default();
    for w in &args.wasm {
        wasm.apply(w)?;
    }
    let mut wasi = WasiOptions::default();
    for s in &args.wasi {
        wasi.apply(s)?;
    }
    let mut optimize = OptimizeOptions::default();
    for o in &args.optimize {
        optimize.apply(o)?;
    }
    let nonzero = |v: u64| (v > 0).then_some(v);
    let timeout = wasm
        .timeout
        .or((!args.request_timeout.is_zero()).then_some(args.request_timeout));
    let max_memory_size = wasm.max_memory_size.or(nonzero(args.max_memory_size));
    let settings = EngineSettings {
        wasm: wasm.clone(),
        optimize,
        cache: !args.no_cache,
        epoch_interruption: timeout.is_some(),
        max_memory_size,
    };

    let header_overrides = HeaderOverrides::parse(&args.headers)?;
    let memory_budget = match args.memory_budget {
        Some(0) => None,
        Some(bytes) => Some(MemoryBudget::new(bytes)),
        None => Some(MemoryBudget::new(MemoryBudget::default_limit())),
    };
    let ours = LIB_BACKTRACE_IS_OURS.load(std::sync::atomic::Ordering::Relaxed);
    let host_vars: Vec<_> = if wasi.inherit_env {
        std::env::vars_os()
            .filter(|(name, _)| !(ours && name == "RUST_LIB_BACKTRACE"))
            // host-runner's registry credentials are the host's secrets.
            .filter(|(name, _)| {
                !name.to_str().is_some_and(|n| {
                    n.starts_with(crate::registry::credentials::SECRET_VAR_PREFIX)
                        // and the OTLP exporter's headers (its credentials).
                        || crate::telemetry::is_secret_var(n)
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let capabilities = Capabilities::resolve(
        &wasi,
        &args.envs,
        &args.dirs,
        &|name| std::env::var_os(name),
        &host_vars,
    )?;
    let guest_config = {
        let host_vars: Vec<_> = if args.config_env_prefix.is_some() {
            std::env::vars_os().collect()
        } else {
            Vec::new()
        };
        crate::wasi_config::GuestConfig::resolve(&crate::wasi_config::ConfigSources {
            file: args.config_file.as_deref(),
            env_prefix: args.config_env_prefix.as_deref(),
            host_vars: &host_vars,
            vars: &wasi.config_vars,
        })?
    };
    let (name, bytes) = component_bytes(&args.registry, &args.component, &args.plugs)?;
    let (engine, _pooling) = engine::engine(&settings)?;
    let pre = engine::load(
        &engine,
        &name,
        &bytes,
        engine::LinkSettings {
            cli: capabilities.cli,
            network_error_code: capabilities.network_error_code,
            p3: wasi.p3.unwrap_or(true),
            config: wasi.config,
            keyvalue: wasi.keyvalue,
        },
    )?;
    let reserve = {
        let component = match &pre {
            wasmtime_wasi_http::handler::ProxyPre::P2(p) => p.instance_pre().component(),
            wasmtime_wasi_http::handler::ProxyPre::P3(p) => p.instance_pre().component(),
        };
        crate::memory_budget::instance_reserve(component)
    };
    // Written after `wasmtime serve`'s own startup lines, which a wrapper
    // may read first (its own test harness reads the first line).
    let mut grants: Vec<String> = capabilities.summary();
    let config_given = args.config_file.is_some()
        || args.config_env_prefix.is_some()
        || !wasi.config_vars.is_empty();
    if wasi.config {
        grants.push(guest_config.summary());
    }
    let p3_served = matches!(pre, wasmtime_wasi_http::handler::ProxyPre::P3(_));
    let inert: Vec<String> = capabilities
        .inert_without_cli(p3_served)
        .into_iter()
        .map(|f| f.to_string())
        .collect();

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let certificates = crate::tls::Certificates::load(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })?;
            let tls = crate::tls::Tls::new(
                Arc::clone(&certificates),
                args.tls_handshake_timeout,
                args.tls_client_ca.as_deref(),
            )?;
            Some((certificates, tls))
        }
        _ => None,
    };

    let metrics = Arc::new(Metrics::default());
    let keyvalue = if wasi.keyvalue {
        let kv = crate::keyvalue::KeyValue::open(
            &keyvalue_settings(&args, &wasi)?,
            Arc::clone(&metrics),
        )?;
        grants.push(kv.summary());
        Some(Arc::new(kv))
    } else {
        let flagged = args.keyvalue_redis.is_some()
            || args.keyvalue_redis_url_file.is_some()
            || !args.keyvalue_buckets.is_empty();
        if flagged {
            anyhow::bail!("the --keyvalue-* options need -S keyvalue, which links wasi:keyvalue");
        }
        None
    };
    let outbound = Arc::new(crate::outbound::Outbound::new(
        crate::outbound::OutboundSettings {
            allow: crate::outbound::policy::AllowList::new(args.outbound_allow.clone()),
            ca: args.outbound_ca.clone(),
            connect_timeout: args.outbound_connect_timeout,
            first_byte_timeout: args.outbound_first_byte_timeout,
            between_bytes_timeout: args.outbound_between_bytes_timeout,
            max_concurrent: args.outbound_max_concurrent,
            idle_timeout: args.outbound_idle_timeout,
        },
        Arc::clone(&metrics),
    )?);
    // Nothing for the default (nothing allowed), so the startup output
    // stays `wasmtime serve`'s.
    // Before the runtime: the exporters' client is a blocking one.
    let telemetry = crate::telemetry::Telemetry::from_env(&|name| std::env::var(name).ok())?;
    let telemetry_for_server = telemetry.clone();
    let telemetry_for_log = telemetry.is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served: Result<()> = runtime.block_on(async move {
        if let Some((certificates, _)) = &tls {
            reload_on_sighup(Arc::clone(certificates))?;
        }
        let shutdown_listener = match args.shutdown_addr {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to bind the shutdown address {addr}"))?;
                eprintln!("Listening for shutdown on tcp://{}/", l.local_addr()?);
                Some(l)
            }
            None => None,
        };
        let mut listeners = Vec::with_capacity(args.addr.len().max(inherited.len()));
        if inherited.is_empty() {
            for addr in &args.addr {
                listeners.push(crate::listen::Listener::bind(addr, args.unix_socket_mode).await?);
            }
        } else {
            for socket in inherited {
                listeners.push(
                    crate::listen::Listener::adopt(socket)
                        .context("--systemd-listenfd: adopting a passed socket")?,
                );
            }
        }
        let admin = match args.admin_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to bind the admin address {addr}"))?,
            ),
            None => None,
        };
        let _ticker =
            timeout.map(|t| EpochTicker::start(engine.clone(), t.min(engine::EPOCH_TICK)));
        let outbound_line = (!args.outbound_allow.is_empty()).then(|| outbound.summary());
        let handler = Handler::new(
            pre,
            HandlerConfig {
                timeout,
                max_memory_size,
                max_table_elements: Some(
                    wasm.max_table_elements
                        .unwrap_or(handler::DEFAULT_MAX_TABLE_ELEMENTS),
                ),
                fuel: wasm.fuel,
                logging_prefix: !args.no_logging_prefix,
                max_request_body_size: nonzero(args.max_request_body_size),
                epoch_interruption: timeout.is_some() || wasm.epoch_interruption,
                max_http_fields_size: wasi.max_http_fields_size,
                max_instance_reuse_count: args.max_instance_reuse_count,
                max_instance_concurrent_reuse_count: args.max_instance_concurrent_reuse_count,
                idle_instance_timeout: args.idle_instance_timeout,
                header_overrides,
                capabilities,
                config: engine::ConfigStore(Arc::new(if wasi.config {
                    guest_config.iter().collect()
                } else {
                    Default::default()
                })),
                keyvalue,
                http_hooks: {
                    let mut hooks = HttpHooks::new(outbound);
                    if let Some(n) = wasi.http_outgoing_body_buffer_chunks {
                        hooks.buffer_chunks = n;
                    }
                    if let Some(n) = wasi.http_outgoing_body_chunk_size {
                        hooks.chunk_size = n;
                    }
                    hooks
                },
                max_resources: wasi.max_resources,
                hostcall_fuel: wasi.hostcall_fuel,
                max_component_handles: wasi.max_component_handles,
                memory_budget: memory_budget.clone(),
            },
            Arc::clone(&metrics),
        );
        let app = Arc::new(App::new(
            handler,
            match &memory_budget {
                Some(budget) => Admission::new(
                    args.max_concurrent_requests,
                    args.max_queued_requests,
                    args.queue_timeout,
                )
                .with_budget(Arc::clone(budget), reserve),
                None => Admission::new(
                    args.max_concurrent_requests,
                    args.max_queued_requests,
                    args.queue_timeout,
                ),
            },
            metrics,
            ServerConfig {
                header_read_timeout: args.header_read_timeout,
                drain_timeout: args.drain_timeout,
                access_log: args.access_log,
                max_concurrent_connections: args.max_concurrent_connections,
                tls: tls.map(|(_, tls)| tls),
                telemetry: telemetry_for_server,
                h2c: args.h2c,
            },
        ));
        if let Some(admin) = admin {
            eprintln!(
                "Admin endpoints on http://{}/metrics and /healthz",
                admin.local_addr()?
            );
            tokio::spawn(server::admin(admin, Arc::clone(&app)));
        }
        for listener in &listeners {
            eprintln!(
                "{}",
                server::serving_line(&listener.url(args.tls_cert.is_some()))
            );
        }
        for line in grants {
            tracing::info!("grants: {line}");
        }
        if telemetry_for_log {
            tracing::info!(
                "telemetry: OpenTelemetry traces and metrics over OTLP (http/protobuf), as OTEL_EXPORTER_OTLP_* says"
            );
        }
        if let Some(line) = outbound_line {
            tracing::info!("grants: {line}");
        }
        if config_given && !wasi.config {
            tracing::warn!(
                "-S config-var / --config-file / --config-env-prefix have no effect without -S config: wasi:config is not linked"
            );
        }
        for flag in inert {
            tracing::warn!("{flag} has no effect without -S cli: the p2 proxy world cannot see it");
        }
        server::run(listeners, app, server::shutdown_signal(shutdown_listener)).await?;
        Ok(())
    });
    // The runtime first: guests still holding the trace go with it.
    drop(runtime);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    served
}

/// Reads the TLS certificate and key again on every SIGHUP; a pair that
/// cannot be used is logged and the one in use stays.
fn reload_on_sighup(certificates: Arc<crate::tls::Certificates>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match certificates.reload() {
                Ok(()) => tracing::info!(
                    "TLS certificate reloaded from {}",
                    certificates.files().cert.display()
                ),
                Err(e) => {
                    tracing::error!("TLS certificate not reloaded, the previous one stays: {e}")
                }
            }
        }
    });
    Ok(())
}

/// `serve`'s arguments, the global `--log-format` included, for tools that
/// read its flags (the container environment's names,
/// [`crate::container::env`]).
pub fn serve_command() -> clap::Command {
    let mut cli = <Cli as clap::CommandFactory>::command();
    cli.build();
    cli.find_subcommand("serve")
        .expect("host-runner has a serve command")
        .clone()
}

/// The key-value stores' settings from the flags and `-S keyvalue-*`.
fn keyvalue_settings(
    args: &ServeArgs,
    wasi: &crate::options::WasiOptions,
) -> Result<crate::keyvalue::KeyValueSettings> {
    use crate::keyvalue::{redis::RedisSettings, BackendSettings};
    let prefix = &args.keyvalue_redis_prefix;
    let backend = match (&args.keyvalue_redis, &args.keyvalue_redis_url_file) {
        (Some(url), _) => BackendSettings::Redis(RedisSettings::from_argument(url, prefix)?),
        (None, Some(file)) => BackendSettings::Redis(RedisSettings::from_file(file, prefix)?),
        (None, None) => BackendSettings::Embedded {
            state_dir: match &args.state_dir {
                Some(dir) => dir.clone(),
                None => default_state_dir()?,
            },
        },
    };
    Ok(crate::keyvalue::KeyValueSettings {
        backend,
        buckets: args.keyvalue_buckets.clone(),
        in_memory_data: wasi.keyvalue_in_memory_data.clone(),
    })
}

/// `$XDG_STATE_HOME/host-runner`, or `~/.local/state/host-runner`.
fn default_state_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("host-runner"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no --state-dir, and neither XDG_STATE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/state/host-runner"))
}
