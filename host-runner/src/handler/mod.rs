//! Running requests: the parts p2 and p3 share, and the choice between them.
//!
//! [`Handler::handle`] applies the `-H` overrides, answers 413 for a
//! declared body over the limit before any guest runs, wraps the body so a
//! streamed one stops at the limit ([`LimitedBody`]), and hands the request
//! to one of two engines: [`p2`], a fresh `wasi:http/incoming-handler`
//! instance per request (`wasmtime serve`'s p2 default), or [`pool`],
//! instances reused in sequence and at once by `wasmtime-wasi-http`'s own
//! `ProxyHandler` (every p3 component, and p2 with
//! `--max-instance-reuse-count` above 1), as `wasmtime serve` chooses. Both
//! make their stores with [`new_store`], so limits, fuel, the memory budget
//! and the epoch yield are the same for both.
//!
//! Every request carries a [`Ticket`] (its admission slot, its memory
//! reservation, its in-flight count) for as long as its guest works on it:
//! until the fresh instance ends, or until a pooled request's response
//! body is finished or dropped. Guests that outlive their request (the
//! client went away, or the body is still being written) run as tasks of
//! [`Handler::background`], which the drain waits for.

pub mod p2;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::handler::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpCtx;

use tokio_util::task::TaskTracker;

use crate::admission::Admitted;
use crate::capabilities::Capabilities;
use crate::engine::{Host, HttpHooks};
use crate::headers::HeaderOverrides;
use crate::log_stream::{LogStream, Target};
use crate::memory_budget::{BudgetLease, BudgetLimiter, MemoryBudget, Reservation};
use crate::metrics::{GaugeUnit, Metrics};

/// The page `wasmtime serve` sends for every failure before a response
/// exists (205 bytes, no trailing newline).
pub const ERROR_PAGE: &str = "<!doctype html>\n<html>\n<head>\n    <title>500 Internal Server Error</title>\n</head>\n<body>\n    <center>\n        <h1>500 Internal Server Error</h1>\n        <hr>\n        wasmtime\n    </center>\n</body>\n</html>";

/// How requests are run.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// Wall-clock limit for the whole `handle` call (body streaming included).
    pub timeout: Option<Duration>,
    /// Per-memory cap in bytes.
    pub max_memory_size: Option<u64>,
    /// Per-table cap in elements.
    pub max_table_elements: Option<usize>,
    /// Fuel per store.
    pub fuel: Option<u64>,
    /// Prefix guest output with `stdout [N] :: `.
    pub logging_prefix: bool,
    /// Request bodies over this many bytes get 413.
    pub max_request_body_size: Option<u64>,
    /// Whether epoch interruption is on (then guests yield every tick).
    pub epoch_interruption: bool,
    /// `max-http-fields-size` for the guest.
    pub max_http_fields_size: Option<usize>,
    /// Requests one instance serves, in sequence, before it is retired
    /// (`None`: `wasmtime serve`'s default, 1 for p2 and 128 for p3).
    pub max_instance_reuse_count: Option<u64>,
    /// Requests one p3 instance serves at once (`None`: 16; p2: always 1).
    pub max_instance_concurrent_reuse_count: Option<u64>,
    /// How long an idle instance is kept for reuse.
    pub idle_instance_timeout: Duration,
    /// `-H` overrides, applied before the guest sees the request.
    pub header_overrides: HeaderOverrides,
    /// What each instance is granted (`-S cli`, `--env`, `--dir`, network).
    pub capabilities: Capabilities,
    /// Outgoing-body settings (`-S http-outgoing-body-*`) and outbound
    /// requests (`--outbound-*`).
    pub http_hooks: HttpHooks,
    /// What `wasi:config/store` answers (`-S config`).
    pub config: crate::engine::ConfigStore,
    /// The key-value stores (`-S keyvalue`).
    pub keyvalue: Option<Arc<crate::keyvalue::KeyValue>>,
    /// `-S max-resources`.
    pub max_resources: Option<usize>,
    /// `-S hostcall-fuel`.
    pub hostcall_fuel: Option<usize>,
    /// `-S max-component-handles`.
    pub max_component_handles: Option<usize>,
    /// The host-wide budget for guest memory (`--memory-budget`).
    pub memory_budget: Option<Arc<MemoryBudget>>,
}

/// The per-table cap when `-W max-table-elements` is not given: a million
/// elements (8 MiB of references). `wasmtime serve` has none without the
/// pooling allocator, where a guest growing a table in a loop reached
/// 2^31 elements (16 GiB) before `table.grow` failed; with it the pool's
/// slots cap tables at 20,000 elements.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// What a request holds while a guest works on it: its admission slot and
/// memory reservation, and its unit of the in-flight gauge. Dropped when
/// the guest is done with the request, however that ends.
pub struct Ticket {
    /// The admission slot and reservation (`None` for a request admitted
    /// without admission control, as in tests).
    pub admitted: Option<Admitted>,
    /// The request's unit of `host_runner_requests_in_flight`.
    pub in_flight: GaugeUnit,
    /// The request's trace, when OTLP telemetry is on.
    pub trace: Option<crate::telemetry::RequestTrace>,
}

impl Ticket {
    /// The memory reserved at admission, for a new store to draw on.
    pub(crate) fn take_reservation(&mut self) -> Option<Reservation> {
        self.admitted.as_mut().and_then(Admitted::take_reservation)
    }
}

/// The two ways requests meet instances.
enum Mode {
    /// A fresh p2 instance per request (boxed: the pool is a pointer).
    Fresh(Box<p2::Handler>),
    /// Reused instances (p3, or p2 with reuse above 1).
    Pool(pool::Handler),
}

/// Runs requests against a pre-instantiated component, p2 or p3.
pub struct Handler {
    mode: Mode,
    version: &'static str,
    background: TaskTracker,
}

impl Handler {
    /// A handler for `pre`, p2 or p3 as it was loaded.
    pub fn new(pre: ProxyPre<Host>, config: HandlerConfig, metrics: Arc<Metrics>) -> Self {
        let background = TaskTracker::new();
        let (mode, version) = match pre {
            ProxyPre::P2(pre) if config.max_instance_reuse_count.unwrap_or(1) <= 1 => (
                Mode::Fresh(Box::new(p2::Handler::new(
                    pre,
                    config,
                    metrics,
                    background.clone(),
                ))),
                "p2",
            ),
            ProxyPre::P2(pre) => (
                Mode::Pool(pool::Handler::new(ProxyPre::P2(pre), config, metrics)),
                "p2",
            ),
            ProxyPre::P3(pre) => (
                Mode::Pool(pool::Handler::new(ProxyPre::P3(pre), config, metrics)),
                "p3",
            ),
        };
        Handler {
            mode,
            version,
            background,
        }
    }

    /// Which WASI HTTP version is served: `"p2"` or `"p3"`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// Guests still running after their request's handler returned; the
    /// drain waits for them.
    pub fn background(&self) -> &TaskTracker {
        &self.background
    }

    fn config(&self) -> &HandlerConfig {
        match &self.mode {
            Mode::Fresh(h) => h.config(),
            Mode::Pool(h) => h.config(),
        }
    }

    /// Handles one request; never fails (failures become the 500 page).
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        ticket: Ticket,
    ) -> Response<HyperOutgoingBody> {
        let config = self.config();
        if !config.header_overrides.is_empty() {
            config.header_overrides.apply(req.headers_mut());
        }
        if let (Some(limit), Some(declared)) = (
            config.max_request_body_size,
            req.headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
        ) {
            if declared > limit {
                return simple(
                    413,
                    "text/plain; charset=utf-8",
                    format!(
                        "request body of {declared} bytes is over the limit of {limit} bytes\n"
                    ),
                );
            }
        }
        let req = match config.max_request_body_size {
            Some(limit) => req.map(|inner| {
                LimitedBody {
                    crossed: false,
                    inner,
                    seen: 0,
                    limit,
                }
                .boxed_unsync()
            }),
            None => req.map(|b| b.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()),
        };
        match &self.mode {
            Mode::Fresh(h) => h.handle(req, ticket).await,
            Mode::Pool(h) => h.handle(req, ticket).await,
        }
    }
}

/// A store and the lease on its share of the memory budget. Fields drop
/// in order: the store frees its memory first, then the lease returns the
/// budget, so the budget never counts pages as free while they are still
/// resident.
pub(crate) struct GuestStore {
    pub(crate) store: Store<Host>,
    pub(crate) lease: BudgetLease,
}

impl std::ops::Deref for GuestStore {
    type Target = Store<Host>;
    fn deref(&self) -> &Store<Host> {
        &self.store
    }
}

impl std::ops::DerefMut for GuestStore {
    fn deref_mut(&mut self) -> &mut Store<Host> {
        &mut self.store
    }
}

/// A store for instance `id`: prefixed stdio, the granted capabilities,
/// memory and resource limits with a lease on the memory budget (drawing
/// first on `reservation`), fuel, and the epoch yield.
pub(crate) fn new_store(
    config: &HandlerConfig,
    engine: &wasmtime::Engine,
    id: u64,
    reservation: Option<Reservation>,
) -> GuestStore {
    let prefix = config.logging_prefix;
    let mut wasi = WasiCtx::builder();
    wasi.stdout(LogStream::new(Target::Stdout, id, prefix))
        .stderr(LogStream::new(Target::Stderr, id, prefix));
    if let Err(e) = config.capabilities.apply(&mut wasi, id) {
        // Checked at startup; a directory removed since then is the
        // only way here, and the guest then runs without it.
        tracing::warn!("instance {id}: {e:#}");
    }
    let mut limits = StoreLimitsBuilder::new();
    if let Some(max) = config.max_memory_size {
        limits = limits.memory_size(max as usize);
    }
    if let Some(max) = config.max_table_elements {
        limits = limits.table_elements(max);
    }
    let mut http = WasiHttpCtx::new();
    if let Some(n) = config.max_http_fields_size {
        http.set_field_size_limit(n);
    }
    let mut table = ResourceTable::new();
    if let Some(max) = config.max_resources {
        table.set_max_capacity(max);
    }
    let (limiter, lease) =
        BudgetLimiter::new(limits.build(), config.memory_budget.clone(), reservation);
    let host = Host {
        wasi: wasi.build(),
        http,
        hooks: config.http_hooks.clone(),
        table,
        limits: limiter,
        config: config.config.clone(),
        keyvalue: config.keyvalue.clone(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    if let Some(fuel) = config.hostcall_fuel {
        store.set_hostcall_fuel(fuel);
    }
    if let Some(max) = config.max_component_handles {
        store.set_max_component_handles(max);
    }
    if let Some(fuel) = config.fuel {
        let _ = store.set_fuel(fuel);
    }
    if config.epoch_interruption {
        // Yield to the runtime every tick, so the timeout can stop a
        // guest that never returns. The yield is tokio's own, which
        // puts the task at the back of the run queue: Wasmtime's
        // default yield wakes the task into the worker's LIFO slot, so
        // a busy guest ran again at once and 20 looping guests kept a
        // new request waiting for seconds (BENCHMARKS.md, fairness).
        store.epoch_deadline_callback(|_| {
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        // The first deadline is one tick away too. Left at 0, every fresh
        // store met it at its first check and yielded at once: a boxed
        // future, a fiber switch and a trip to the back of the run queue
        // on every request, some 22 µs of a fresh instance's 88 µs
        // (BENCHMARKS.md).
        store.set_epoch_deadline(1);
    }
    GuestStore { store, lease }
}

/// How a guest run failed, told apart by type rather than by message.
#[derive(Debug)]
pub(crate) enum GuestFailure {
    /// The component could not be instantiated.
    Instantiation(wasmtime::Error),
    /// The guest trapped or a host call failed.
    Call(wasmtime::Error),
    /// The request timeout stopped it.
    TimedOut,
}

impl GuestFailure {
    /// The text `wasmtime serve` prints after `worker failed: `.
    pub(crate) fn report(&self) -> String {
        match self {
            GuestFailure::Instantiation(e) => format!("{:?}", e),
            GuestFailure::Call(e) => format!("{e:?}"),
            GuestFailure::TimedOut => "guest timed out".to_string(),
        }
    }
}

/// A plain response with a small body.
pub fn simple(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<HyperOutgoingBody> {
    let body: Bytes = body.into();
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static parts are valid")
}

/// The 500 page.
pub fn error_page() -> Response<HyperOutgoingBody> {
    simple(500, "text/html; charset=UTF-8", ERROR_PAGE)
}

/// The answer for a guest that failed before answering because the memory
/// budget refused its growth: 503 with `Retry-After`, as admission answers
/// when the budget is spent, since the fault is the host's lack of room.
pub fn out_of_budget_page() -> Response<HyperOutgoingBody> {
    let mut response = simple(
        503,
        "text/plain; charset=utf-8",
        "503 Service Unavailable: the host's memory budget is spent (--memory-budget)\n",
    );
    response
        .headers_mut()
        .insert("retry-after", hyper::header::HeaderValue::from_static("2"));
    response
}

/// A request body that fails once more than `limit` bytes arrive.
///
/// The guest is first handed the byte that crosses the limit (the frame
/// that crosses it is cut to `limit + 1` bytes) and only the next read
/// fails. A guest that enforces its own limit, as the vector service does,
/// therefore sees its body grow past that limit and answers its own 413,
/// exactly as it does under `wasmtime serve`, which has no host limit; a
/// guest that does not count gets a failed read. At most `limit + 1` bytes
/// are ever passed on.
struct LimitedBody {
    inner: Incoming,
    seen: u64,
    limit: u64,
    crossed: bool,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        if self.crossed {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                Some(self.seen),
            ))));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                let Some(data) = frame.data_ref() else {
                    return Poll::Ready(Some(Ok(frame)));
                };
                let len = data.len() as u64;
                if self.seen + len <= self.limit {
                    self.seen += len;
                    return Poll::Ready(Some(Ok(frame)));
                }
                let keep = (self.limit + 1 - self.seen) as usize;
                let cut = data.slice(..keep);
                self.seen += keep as u64;
                self.crossed = true;
                Poll::Ready(Some(Ok(Frame::data(cut))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.crossed && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
