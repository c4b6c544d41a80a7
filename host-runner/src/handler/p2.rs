//! WASI 0.2 (`wasi:http/incoming-handler`): one request through one fresh
//! instance (or a reused one, with `--max-instance-reuse-count`), with
//! `wasmtime serve`'s answers when the guest fails: the same 500 page, the
//! same log lines, and the server keeps serving.
//!
//! Flow: make a store ([`super::new_store`]), turn the hyper request into
//! `wasi:http` resources, instantiate from the pre-instantiated component
//! and call `handle` under the request timeout, driven in the connection's
//! own task until `response-outparam.set`; body bytes after `set` are
//! written as the response body is polled (see `DrivenBody`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::{Request, Response};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::{error_page, new_store, GuestStore, HandlerConfig};
use crate::engine::Host;
use crate::metrics::Metrics;

/// An instance waiting for its next request.
struct Idle {
    store: GuestStore,
    proxy: Proxy,
    uses: u64,
    since: Instant,
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

    pub(crate) fn config(&self) -> &HandlerConfig {
        &self.config
    }

    /// Handles one request; never fails (failures become the 500 page).
    pub async fn handle(&self, req: Request<WasiBody>) -> Response<HyperOutgoingBody> {
        let reuse = self.config.max_instance_reuse_count.unwrap_or(1).max(1);
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
                (new_store(&self.config, self.pre.engine(), id), None, 0)
            }
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
                        metrics.timeouts.inc();
                        Err(wasmtime::format_err!("guest timed out"))
                    }
                },
                None => run.await,
            };
            if let Err(e) = &result {
                metrics.traps.inc();
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
