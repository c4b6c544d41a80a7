//! The listener and its connections: HTTP/1.1 with keep-alive and
//! pipelining, admission control in front of the handler, header-read
//! timeouts, access logs, the admin endpoints, and graceful drain.
//!
//! Drain (SIGINT, SIGTERM or a connection to `--shutdown-addr`): stop
//! accepting and close the listening socket, tell every connection to
//! finish its current request and close, wait for them and for guests
//! still running on their own (a body being streamed, a client gone) up to
//! the drain deadline, and return so the process exits 0.
//!
//! The queued and in-flight gauges are held as [`GaugeUnit`]s: a request
//! whose client leaves while it waits gives its units back with its future.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission::{Admission, Rejected};
use crate::handler::{simple, Handler, Ticket};
use crate::metrics::{GaugeUnit, Metrics};

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Close a connection whose request headers take longer than this,
    /// including the wait for the next request on an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// How long a drain waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Write one access-log line per request.
    pub access_log: bool,
    /// Open client connections at most; while full, `accept` is not called
    /// and new connections wait in the kernel's backlog.
    pub max_concurrent_connections: usize,
}

/// Everything a connection needs.
pub struct App {
    /// Runs requests.
    pub handler: Handler,
    /// Admission control.
    pub admission: Admission,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Connection settings.
    pub config: ServerConfig,
    draining: AtomicBool,
    next_request: AtomicU64,
}

impl App {
    /// Puts the parts together.
    pub fn new(
        handler: Handler,
        admission: Admission,
        metrics: Arc<Metrics>,
        config: ServerConfig,
    ) -> Self {
        App {
            handler,
            admission,
            metrics,
            config,
            draining: AtomicBool::new(false),
            next_request: AtomicU64::new(0),
        }
    }

    async fn serve(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (method, path) = if self.config.access_log {
            (req.method().to_string(), req.uri().to_string())
        } else {
            (String::new(), String::new())
        };
        let queued = GaugeUnit::hold(&self.metrics.queued);
        let admitted = self.admission.admit().await;
        drop(queued);
        let response = match admitted {
            Ok(admitted) => {
                let ticket = Ticket {
                    admitted: Some(admitted),
                    in_flight: GaugeUnit::hold(&self.metrics.in_flight),
                };
                self.handler.handle(req, ticket).await
            }
            Err(why) => {
                self.metrics.rejected.inc();
                let mut response = simple(
                    503,
                    "text/plain; charset=utf-8",
                    format!("503 Service Unavailable: {why}\n"),
                );
                response.headers_mut().insert(
                    "retry-after",
                    hyper::header::HeaderValue::from_static(match why {
                        Rejected::QueueFull => "1",
                        Rejected::TimedOut | Rejected::MemoryBudget => "2",
                    }),
                );
                response
            }
        };
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        self.metrics.count_status(status);
        self.metrics.latency.observe(elapsed);
        if self.config.access_log {
            tracing::info!(
                target: "host_runner::access",
                request_id,
                method = %method,
                path = %path,
                status,
                duration_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        }
        response
    }
}

/// Serves `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.config.max_concurrent_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let header_read_timeout = app.config.header_read_timeout;
                let app = Arc::clone(&app);
                let service = service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(app.serve(req).await) }
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        if !e.is_incomplete_message() && !e.is_timeout() {
                            crate::failure_line(format_args!("error: {e:?}"));
                        }
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    app.draining.store(true, Ordering::Relaxed);
    drop(listener);
    let deadline = app.config.drain_timeout;
    let background = app.handler.background();
    background.close();
    let drained = async {
        graceful.shutdown().await;
        background.wait().await;
    };
    tracing::info!(
        ?deadline,
        "draining: no new connections; waiting for requests and guests"
    );
    if tokio::time::timeout(deadline, drained).await.is_err() {
        tracing::warn!(
            ?deadline,
            "drain deadline passed with requests still running; exiting"
        );
    } else {
        tracing::info!("drained");
    }
    Ok(())
}

/// Serves `/metrics` and `/healthz` on `listener` until the process exits.
pub async fn admin(listener: TcpListener, app: Arc<App>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off as the main
                // listener does, instead of spinning.
                tracing::error!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |req: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move {
                let response = match req.uri().path() {
                    "/metrics" => {
                        if let Some(budget) = app.admission.budget() {
                            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                            app.metrics.budget_limit.set(gauge(budget.limit()));
                            app.metrics.budget_used.set(gauge(budget.used()));
                        }
                        simple(200, crate::metrics::CONTENT_TYPE, app.metrics.render())
                    }
                    "/healthz" if app.draining.load(Ordering::Relaxed) => {
                        simple(503, "text/plain", "draining\n")
                    }
                    "/healthz" => simple(200, "text/plain", "ok\n"),
                    _ => simple(404, "text/plain", "try /metrics or /healthz\n"),
                };
                Ok::<_, Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Resolves on SIGINT or SIGTERM, or on the first connection to the
/// `--shutdown-addr` listener when there is one.
pub async fn shutdown_signal(shutdown_listener: Option<TcpListener>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let connected = async {
        match &shutdown_listener {
            Some(l) => loop {
                if l.accept().await.is_ok() {
                    break;
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        () = connected => {}
    }
}

/// The address a listener is bound to, for the startup line.
pub fn serving_line(addr: SocketAddr) -> String {
    format!("Serving HTTP on http://{addr}/")
}
