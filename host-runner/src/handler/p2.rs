//! WASI 0.2 (`wasi:http/incoming-handler`) with a fresh instance per
//! request, `wasmtime serve`'s p2 default, with its answers when the guest
//! fails: the same 500 page, the same log lines, and the server keeps
//! serving. (With `--max-instance-reuse-count` above 1, p2 runs in
//! [`super::pool`] instead.)
//!
//! Flow: make a store ([`super::new_store`], drawing on the memory
//! reserved at admission), turn the hyper request into `wasi:http`
//! resources, instantiate from the pre-instantiated component and call
//! `handle` under the request timeout. The guest is driven in the
//! connection's own task until it calls `response-outparam.set` (no task
//! spawn or cross-thread wake-up for the common case); a guest that still
//! has work after that (a body to stream) runs on as a task of its own, so
//! it is bounded by its timeout whether or not the client reads. The
//! request's [`Ticket`] lives inside the guest's future: the admission
//! slot, the memory lease and the in-flight count are held until the guest
//! ends, not until the response head. A client that goes away before the
//! head does not stop the guest either: it finishes in the background, as
//! under `wasmtime serve`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::{Request, Response};
use tokio_util::task::TaskTracker;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::{error_page, new_store, GuestFailure, HandlerConfig, Ticket};
use crate::engine::Host;
use crate::metrics::Metrics;

/// One guest call (instantiation included), logging its own failure.
type GuestRun = Pin<Box<dyn Future<Output = Result<(), GuestFailure>> + Send>>;

/// A running guest owned by a request. Dropped before it ends (the client
/// went away, or the response head is out and the body still to come), it
/// is not cancelled: it finishes as a task of the handler's tracker.
struct Guest {
    run: Option<GuestRun>,
    background: TaskTracker,
}

impl Guest {
    /// Lets the guest run on in a task of its own.
    fn detach(mut self) {
        if let Some(run) = self.run.take() {
            self.background.spawn(async move {
                let _ = run.await;
            });
        }
    }
}

impl Future for Guest {
    type Output = Result<(), GuestFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(run) = self.run.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let polled = run.as_mut().poll(cx);
        if polled.is_ready() {
            self.run = None;
        }
        polled
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            self.background.spawn(async move {
                let _ = run.await;
            });
        }
    }
}

/// Runs requests, each on a fresh instance of a pre-instantiated component.
pub struct Handler {
    pre: ProxyPre<Host>,
    config: HandlerConfig,
    next_instance: AtomicU64,
    metrics: Arc<Metrics>,
    background: TaskTracker,
}

impl Handler {
    /// A handler for `pre`, whose guests outliving their request run on
    /// `background`.
    pub fn new(
        pre: ProxyPre<Host>,
        config: HandlerConfig,
        metrics: Arc<Metrics>,
        background: TaskTracker,
    ) -> Self {
        Handler {
            pre,
            config,
            next_instance: AtomicU64::new(0),
            metrics,
            background,
        }
    }

    pub(crate) fn config(&self) -> &HandlerConfig {
        &self.config
    }

    /// Handles one request; never fails (failures become the 500 page).
    pub async fn handle(
        &self,
        req: Request<WasiBody>,
        mut ticket: Ticket,
    ) -> Response<HyperOutgoingBody> {
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let mut store = new_store(
            &self.config,
            self.pre.engine(),
            id,
            ticket.take_reservation(),
        );
        let out_of_budget = store.lease.refusals();
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
                crate::failure_line(format_args!("worker failed: {e:?}"));
                crate::failure_line(format_args!("error: worker trapped or panicked"));
                return error_page();
            }
        };

        let pre = self.pre.clone();
        let metrics = Arc::clone(&self.metrics);
        let timeout = self.config.timeout;
        let trace = ticket.trace.clone();
        let run: GuestRun = Box::pin(async move {
            // Held until the guest ends, however it ends.
            let _ticket = ticket;
            let run = async {
                let started = Instant::now();
                let span = trace.as_ref().map(|t| t.child("instantiate"));
                let proxy = pre.instantiate_async(&mut *store).await;
                if let Some(span) = span {
                    span.end(proxy.as_ref().err().map(|e| format!("{e:#}")));
                }
                let proxy = proxy
                    .map_err(|e| GuestFailure::Instantiation(e.context("instantiation error")))?;
                metrics.instantiation.observe(started.elapsed());
                let span = trace.as_ref().map(|t| t.child("guest handle"));
                // Outbound requests from this call are children of its span.
                store.data_mut().hooks.trace = span.clone();
                let called = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, req, out)
                    .await;
                if let Some(span) = span {
                    span.end(called.as_ref().err().map(|e| format!("{e:#}")));
                }
                called.map_err(GuestFailure::Call)
            };
            let result = match timeout {
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or(Err(GuestFailure::TimedOut)),
                None => run.await,
            };
            if let Err(e) = &result {
                if matches!(e, GuestFailure::TimedOut) {
                    metrics.timeouts.inc();
                }
                metrics.traps.inc();
                crate::failure_line(format_args!("worker failed: {}", e.report()));
            }
            // The store (and its memory) goes before the ticket's lease.
            drop(store);
            result
        });
        let mut guest = Guest {
            run: Some(run),
            background: self.background.clone(),
        };

        // Drive the guest here, in the connection's task, until it sets the
        // response.
        let mut ended = None;
        let set = tokio::select! {
            biased;
            set = &mut receiver => set.ok(),
            result = &mut guest => {
                ended = Some(result);
                // Returned without answering, even if the guest leaked the
                // outparam.
                receiver.try_recv().ok()
            }
        };
        match set {
            Some(Ok(response)) => {
                if ended.is_none() {
                    // Most guests finish their body at once: one more poll
                    // here saves a task. One that still waits runs on its
                    // own, bounded by its timeout, the client reading or not.
                    let mut cx = Context::from_waker(std::task::Waker::noop());
                    if Pin::new(&mut guest).poll(&mut cx).is_pending() {
                        guest.detach();
                    }
                }
                response
            }
            Some(Err(code)) => {
                crate::failure_line(format_args!("error: {code:?}"));
                // Whatever is left of the guest finishes on its own.
                drop(guest);
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
                    Err(GuestFailure::Instantiation(e)) => {
                        crate::failure_line(format_args!("error: {e:?}"));
                    }
                    _ => crate::failure_line(format_args!(
                        "error: guest never invoked `response-outparam::set` method"
                    )),
                }
                if out_of_budget.load(std::sync::atomic::Ordering::Acquire) {
                    // The guest failed because the host had no room for its
                    // memory: a retry can succeed, so say so.
                    return super::out_of_budget_page();
                }
                error_page()
            }
        }
    }
}
