//! Reused instances: every WASI 0.3 component (`wasi:http/handler`, the
//! `wasi:http/service` world), and WASI 0.2 with
//! `--max-instance-reuse-count` above 1, run in sequence (and for p3 at
//! once) on instances kept between requests, as `wasmtime serve` 48 runs
//! them.
//!
//! The dispatch is `wasmtime-wasi-http`'s own [`ProxyHandler`], the one
//! `wasmtime serve` uses: a worker task per instance takes requests from a
//! shared queue while [`Worker::should_accept_request`] allows (up to
//! `--max-instance-concurrent-reuse-count` at once, 16 by default for p3
//! and always 1 for p2, and `--max-instance-reuse-count` in all, 128 for
//! p3), and the instance is retired after `--idle-instance-timeout` without
//! work (so an idle instance gives its share of the memory budget back),
//! after a trap, or once a request outlives the request timeout. What
//! host-runner adds is in the store ([`super::new_store`]: limits, fuel,
//! the memory budget, the epoch yield) and around the call: the timeout on
//! instantiation as well, the counters in `/metrics`, `wasmtime serve`'s
//! 500 page and log lines, and the request's [`Ticket`], held by the
//! response body until it is finished or dropped.
//!
//! A trap ends the instance, and with it every request it was serving at
//! that moment: the price of concurrent reuse, the same under
//! `wasmtime serve`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::{error_page, new_store, GuestStore, HandlerConfig, Ticket};
use crate::engine::Host;
use crate::memory_budget::BudgetLease;
use crate::metrics::Metrics;

/// Requests one p3 instance serves in all, as `wasmtime serve` 48.
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: u64 = 128;
/// Requests one p3 instance serves at once, as `wasmtime serve` 48.
pub const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: u64 = 16;

/// Runs requests against a pre-instantiated component on reused instances.
pub struct Handler {
    inner: ProxyHandler<Instances>,
}

impl Handler {
    /// A handler for `pre`.
    pub fn new(pre: ProxyPre<Host>, config: HandlerConfig, metrics: Arc<Metrics>) -> Self {
        let p2 = matches!(pre, ProxyPre::P2(_));
        let reuse = config
            .max_instance_reuse_count
            .unwrap_or(if p2 {
                1
            } else {
                DEFAULT_MAX_INSTANCE_REUSE_COUNT
            })
            .max(1);
        // A p2 instance serves one request at a time, whatever the flag says.
        let concurrent = if p2 {
            1
        } else {
            config
                .max_instance_concurrent_reuse_count
                .unwrap_or(DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT)
                .max(1)
        };
        Handler {
            inner: ProxyHandler::new(Instances {
                pre,
                config,
                metrics,
                next_instance: AtomicU64::new(0),
                reuse: usize::try_from(reuse).unwrap_or(usize::MAX),
                concurrent: usize::try_from(concurrent).unwrap_or(usize::MAX),
            }),
        }
    }

    pub(crate) fn config(&self) -> &HandlerConfig {
        &self.inner.state().config
    }

    /// Handles one request; never fails (failures become the 500 page, or
    /// 503 when the memory budget refused a growth meanwhile).
    /// The response body holds `ticket` until it is finished or dropped.
    pub async fn handle(
        &self,
        req: Request<WasiBody>,
        ticket: Ticket,
    ) -> Response<HyperOutgoingBody> {
        let state = self.inner.state();
        let budget = state.config.memory_budget.as_deref();
        let refused_before = budget.map(|b| b.refused_growths());
        match self.inner.handle((), req).await {
            Ok(response) => response.map(|inner| {
                Holding {
                    inner,
                    ticket: Some(ticket),
                }
                .boxed_unsync()
            }),
            Err(e) => {
                if e.is::<ExpirationError>() {
                    state.metrics.timeouts.inc();
                }
                crate::failure_line(format_args!("error: {e:?}"));
                // An instance serves several requests, so the failure is
                // not tied to one store's lease as on the p2 path: a growth
                // the budget refused while this request ran makes it the
                // host's lack of room, and a retry can succeed.
                if budget.map(|b| b.refused_growths()) > refused_before {
                    return super::out_of_budget_page();
                }
                error_page()
            }
        }
    }
}

/// A response body that holds its request's [`Ticket`] until the body ends
/// or is dropped.
struct Holding {
    inner: HyperOutgoingBody,
    ticket: Option<Ticket>,
}

impl Body for Holding {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = polled {
            self.ticket = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Makes instances for the worker pool.
struct Instances {
    pre: ProxyPre<Host>,
    config: HandlerConfig,
    metrics: Arc<Metrics>,
    next_instance: AtomicU64,
    reuse: usize,
    concurrent: usize,
}

impl HandlerState for Instances {
    type StoreData = Host;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiration, Worker>> {
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let engine = match &self.pre {
            ProxyPre::P2(pre) => pre.engine(),
            ProxyPre::P3(pre) => pre.engine(),
        };
        let GuestStore { mut store, lease } = new_store(&self.config, engine, id, None);
        let started = Instant::now();
        let instantiated = match self.config.timeout {
            Some(limit) => tokio::time::timeout(limit, self.pre.instantiate_async(&mut store))
                .await
                .unwrap_or_else(|_| Err(wasmtime::format_err!("guest timed out"))),
            None => self.pre.instantiate_async(&mut store).await,
        };
        let proxy = match instantiated {
            Ok(service) => service,
            Err(e) => {
                // The store's memory goes before its budget is returned.
                drop(store);
                drop(lease);
                self.metrics.traps.inc();
                return Err(e.context("instantiation error"));
            }
        };
        self.metrics.instantiation.observe(started.elapsed());
        let timeout = self.config.timeout.unwrap_or(Duration::MAX);
        let expired = Arc::new(AtomicBool::new(false));
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration {
                idle_timeout: self.config.idle_instance_timeout,
                request_timeout: timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
                expired: Arc::clone(&expired),
            },
            state: Worker {
                reuse: self.reuse,
                concurrent: self.concurrent,
                request_timeout: timeout,
                metrics: Arc::clone(&self.metrics),
                expired,
                _lease: lease,
            },
        })
    }
}

/// When a worker's instance is retired: idle too long, or busy past the
/// request timeout. The second check stands behind the per-request timer
/// of [`Worker::on_request_start`], which the concurrent event loop may not
/// poll while a guest keeps it busy.
struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Set when a busy instance passed the request timeout, for
    /// [`Worker::drop`] to count it as a timeout.
    expired: Arc<AtomicBool>,
}

impl WorkerExpiration for Expiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let limit = match status {
            WorkerStatus::Idle => self.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.request_timeout,
        };
        let Some(deadline) = start.checked_add(limit) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        let polled = self.sleep.as_mut().poll(cx);
        if polled.is_ready() && status != WorkerStatus::Idle {
            self.expired.store(true, Ordering::Relaxed);
        }
        polled
    }
}

/// One instance's limits, and its lease on the memory budget, which the
/// worker drops after the store.
struct Worker {
    reuse: usize,
    concurrent: usize,
    request_timeout: Duration,
    metrics: Arc<Metrics>,
    expired: Arc<AtomicBool>,
    _lease: BudgetLease,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= self.reuse {
            ShouldAccept::Never
        } else if concurrent_count >= self.concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            // The pool's own check, outside the guest's event loop, found
            // the instance busy past the request timeout (see `Expiration`).
            if self.expired.load(Ordering::Relaxed) || e.is::<ExpirationError>() {
                self.metrics.timeouts.inc();
            }
            self.metrics.traps.inc();
            crate::failure_line(format_args!("worker failed: {e:?}"));
        }
        drop(store);
    }
}
