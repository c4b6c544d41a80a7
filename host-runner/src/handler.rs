//! One request through one fresh instance, with `wasmtime serve`'s answers
//! when the guest fails: the same 500 page, the same log lines, and the
//! server keeps serving.
//!
//! Flow: check the declared body size, make a store (limits, fuel, epoch
//! yield, prefixed stdio), turn the hyper request into `wasi:http`
//! resources, instantiate from the pre-instantiated component and call
//! `handle` under the request timeout, driven in the connection's own task
//! until `response-outparam.set`; body bytes after `set` are written as the
//! response body is polled (see `DrivenBody`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::capabilities::Capabilities;
use crate::engine::{BodyHooks, Host};
use crate::headers::HeaderOverrides;
use crate::log_stream::{LogStream, Target};
use crate::memory_budget::{BudgetLease, BudgetLimiter, MemoryBudget};
use crate::metrics::Metrics;

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
    /// Requests one instance serves, in sequence, before it is retired (1:
    /// a fresh instance per request, the default).
    pub max_instance_reuse_count: u64,
    /// How long an idle instance is kept for reuse.
    pub idle_instance_timeout: Duration,
    /// `-H` overrides, applied before the guest sees the request.
    pub header_overrides: HeaderOverrides,
    /// What each instance is granted (`-S cli`, `--env`, `--dir`, network).
    pub capabilities: Capabilities,
    /// Outgoing-body settings (`-S http-outgoing-body-*`).
    pub body_hooks: BodyHooks,
    /// `-S max-resources`.
    pub max_resources: Option<usize>,
    /// `-S hostcall-fuel`.
    pub hostcall_fuel: Option<usize>,
    /// `-S max-component-handles`.
    pub max_component_handles: Option<usize>,
    /// The host-wide budget for guest memory (`--memory-budget`).
    pub memory_budget: Option<Arc<MemoryBudget>>,
}

/// An instance waiting for its next request.
struct Idle {
    store: GuestStore,
    proxy: Proxy,
    uses: u64,
    since: Instant,
}

/// A store and the lease on its share of the memory budget. Fields drop
/// in order: the store frees its memory first, then the lease returns the
/// budget, so the budget never counts pages as free while they are still
/// resident.
struct GuestStore {
    store: Store<Host>,
    _lease: BudgetLease,
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

/// One guest call (instantiation included), logging its own failure.
type GuestRun = Pin<Box<dyn Future<Output = Result<(), wasmtime::Error>> + Send>>;

/// Lets a guest run to completion on its own after nobody waits for it
/// (`wasmtime serve` runs every guest to its end, even when the client is gone).
fn finish_in_background(guest: GuestRun) {
    tokio::spawn(async move {
        let _ = guest.await;
    });
}

/// A response body whose guest is still writing it: polling the body polls
/// the guest first, so the guest runs in the connection's task. If the body
/// ends before the guest returns, or the client goes away, the guest finishes
/// in a task of its own.
struct DrivenBody {
    inner: HyperOutgoingBody,
    guest: Option<GuestRun>,
}

impl Body for DrivenBody {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(guest) = self.guest.as_mut() {
            if guest.as_mut().poll(cx).is_ready() {
                self.guest = None;
            }
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.guest.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            finish_in_background(guest);
        }
    }
}

/// Runs requests against a pre-instantiated component.
pub struct Handler {
    pre: ProxyPre<Host>,
    config: HandlerConfig,
    next_instance: AtomicU64,
    metrics: Arc<Metrics>,
    idle: Arc<Mutex<Vec<Idle>>>,
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

impl Handler {
    /// A handler for `pre`.
    pub fn new(pre: ProxyPre<Host>, config: HandlerConfig, metrics: Arc<Metrics>) -> Self {
        Handler {
            pre,
            config,
            next_instance: AtomicU64::new(0),
            metrics,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn store(&self, id: u64) -> GuestStore {
        let prefix = self.config.logging_prefix;
        let mut wasi = WasiCtx::builder();
        wasi.stdout(LogStream::new(Target::Stdout, id, prefix))
            .stderr(LogStream::new(Target::Stderr, id, prefix));
        if let Err(e) = self.config.capabilities.apply(&mut wasi, id) {
            // Checked at startup; a directory removed since then is the
            // only way here, and the guest then runs without it.
            tracing::warn!("instance {id}: {e:#}");
        }
        let mut limits = StoreLimitsBuilder::new();
        if let Some(max) = self.config.max_memory_size {
            limits = limits.memory_size(max as usize);
        }
        let mut http = WasiHttpCtx::new();
        if let Some(n) = self.config.max_http_fields_size {
            http.set_field_size_limit(n);
        }
        let mut table = ResourceTable::new();
        if let Some(max) = self.config.max_resources {
            table.set_max_capacity(max);
        }
        let (limiter, lease) =
            BudgetLimiter::new(limits.build(), self.config.memory_budget.clone());
        let host = Host {
            wasi: wasi.build(),
            http,
            hooks: self.config.body_hooks,
            table,
            limits: limiter,
        };
        let mut store = Store::new(self.pre.engine(), host);
        store.limiter(|h| &mut h.limits);
        if let Some(fuel) = self.config.hostcall_fuel {
            store.set_hostcall_fuel(fuel);
        }
        if let Some(max) = self.config.max_component_handles {
            store.set_max_component_handles(max);
        }
        if let Some(fuel) = self.config.fuel {
            let _ = store.set_fuel(fuel);
        }
        GuestStore {
            store,
            _lease: lease,
        }
    }

    /// Handles one request; never fails (failures become the 500 page).
    pub async fn handle(&self, mut req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        if !self.config.header_overrides.is_empty() {
            self.config.header_overrides.apply(req.headers_mut());
        }
        if let (Some(limit), Some(declared)) = (
            self.config.max_request_body_size,
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
        let reuse = self.config.max_instance_reuse_count.max(1);
        let reused = if reuse > 1 {
            let mut idle = self.idle.lock().expect("not poisoned");
            let timeout = self.config.idle_instance_timeout;
            idle.retain(|i| i.since.elapsed() < timeout);
            idle.pop()
        } else {
            None
        };
        let (mut store, mut proxy, uses) = match reused {
            Some(i) => (i.store, Some(i.proxy), i.uses),
            None => {
                let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
                (self.store(id), None, 0)
            }
        };
        if self.config.epoch_interruption {
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
        }
        let req = match self.config.max_request_body_size {
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
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let resources = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| {
                let out = store.data_mut().http().new_response_outparam(sender)?;
                Ok((req, out))
            });
        let (req, out) = match resources {
            Ok(r) => r,
            Err(e) => {
                eprintln!("worker failed: {e:?}");
                eprintln!("error: worker trapped or panicked");
                return error_page();
            }
        };

        let pre = self.pre.clone();
        let metrics = Arc::clone(&self.metrics);
        let timeout = self.config.timeout;
        let pool = Arc::clone(&self.idle);
        let mut guest: GuestRun = Box::pin(async move {
            let run = async {
                let handler = match proxy.take() {
                    Some(p) => p,
                    None => {
                        let started = Instant::now();
                        let p = pre
                            .instantiate_async(&mut *store)
                            .await
                            .map_err(|e| e.context("instantiation error"))?;
                        metrics.instantiation.observe(started.elapsed());
                        p
                    }
                };
                handler
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, req, out)
                    .await?;
                // A clean finish may serve again; a trap or timeout never does.
                if uses + 1 < reuse {
                    pool.lock().expect("not poisoned").push(Idle {
                        store,
                        proxy: handler,
                        uses: uses + 1,
                        since: Instant::now(),
                    });
                }
                Ok(())
            };
            let result = match timeout {
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(result) => result,
                    Err(_) => {
                        metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                        Err(wasmtime::format_err!("guest timed out"))
                    }
                },
                None => run.await,
            };
            if let Err(e) = &result {
                metrics.traps.fetch_add(1, Ordering::Relaxed);
                eprintln!("worker failed: {e:?}");
            }
            result
        });

        // Drive the guest here, in the connection's task, until it sets the
        // response: no task spawn or cross-thread wake-up per request.
        let mut ended = None;
        let set = tokio::select! {
            biased;
            set = &mut receiver => set.ok(),
            result = &mut guest => {
                ended = Some(result);
                // Returned without answering, even if the guest leaked the
                // outparam (its store may live on for reuse).
                receiver.try_recv().ok()
            }
        };
        match set {
            Some(Ok(response)) => match ended {
                Some(_) => response,
                // The guest still has body to write: the body drives it.
                None => response.map(|inner| {
                    DrivenBody {
                        inner,
                        guest: Some(guest),
                    }
                    .boxed_unsync()
                }),
            },
            Some(Err(code)) => {
                eprintln!("error: {code:?}");
                if ended.is_none() {
                    finish_in_background(guest);
                }
                error_page()
            }
            None => {
                // The guest dropped the outparam without setting it: report
                // how it ended, as `wasmtime serve` does.
                let result = match ended {
                    Some(result) => result,
                    None => guest.await,
                };
                match result {
                    Err(e) if format!("{e:?}").starts_with("instantiation error") => {
                        eprintln!("error: {e:?}");
                    }
                    _ => eprintln!("error: guest never invoked `response-outparam::set` method"),
                }
                error_page()
            }
        }
    }
}
