//! The listener and its connections: HTTP/1.1 with keep-alive and
//! pipelining, HTTP/2 (over TLS by ALPN, in cleartext by prior knowledge),
//! optional TLS (`crate::tls`), admission control in front of the handler
//! for every request or stream, header-read and handshake timeouts, access
//! logs, the admin endpoints, and graceful drain.
//!
//! Each connection is served by hyper-util's automatic builder. Over TLS
//! the protocol ALPN chose is the only one accepted (a client that offers
//! no ALPN gets HTTP/1.1); in plaintext, HTTP/1.1 exactly as
//! `wasmtime serve` speaks it, and with `--h2c` a client that opens with
//! the HTTP/2 preface speaks HTTP/2. HTTP/2 connections carry at most [`H2_MAX_STREAMS`]
//! concurrent streams with hyper's flow-control windows (1 MiB per stream
//! and per connection) and 16 KiB header lists, and a client that
//! resets streams as fast as it opens them is closed after
//! [`H2_MAX_PENDING_RESETS`].
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission::{Admission, Rejected};
use crate::handler::{simple, Handler, Ticket};
use crate::listen::Listener;
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
    /// TLS on the listener (`--tls-cert`, `--tls-key`), or plaintext.
    pub tls: Option<crate::tls::Tls>,
    /// OTLP traces and metrics, when the environment asks for them.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// `--h2c`: a plaintext connection that opens with the HTTP/2 preface
    /// speaks HTTP/2. Off, plaintext is HTTP/1.1 only, as under
    /// `wasmtime serve`.
    pub h2c: bool,
}

/// Concurrent streams one HTTP/2 connection may open; each is a request,
/// admitted like any other.
pub const H2_MAX_STREAMS: u32 = 100;
/// Streams an HTTP/2 client may reset before the server has accepted them,
/// before the connection is closed (the "rapid reset" attack).
pub const H2_MAX_PENDING_RESETS: usize = 20;

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
        let trace = self
            .config
            .telemetry
            .as_ref()
            .map(|t| t.start_request(&req, self.config.tls.is_some()));
        let queued = GaugeUnit::hold(&self.metrics.queued);
        let admitted = self.admission.admit().await;
        drop(queued);
        let response = match admitted {
            Ok(admitted) => {
                let ticket = Ticket {
                    admitted: Some(admitted),
                    in_flight: GaugeUnit::hold(&self.metrics.in_flight),
                    trace: trace.clone(),
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
        if let Some(trace) = trace {
            trace.finish(status);
        }
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

/// An accepted connection, from a TCP or a Unix listener.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Accepts on `listener` while a connection slot is free, handing each
/// connection (with its slot) to `accepted`; ends when the receiver does.
async fn accept_loop(
    listener: Listener,
    connections: Arc<Semaphore>,
    accepted: tokio::sync::mpsc::Sender<(Accepted, OwnedSemaphorePermit)>,
) {
    loop {
        let permit = Arc::clone(&connections)
            .acquire_owned()
            .await
            .expect("never closed");
        let next = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Accepted::Tcp(s)
            }),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        };
        match next {
            Ok(conn) => {
                if accepted.send((conn, permit)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves every listener until `shutdown` resolves, then drains.
pub async fn run(
    listeners: Vec<Listener>,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.config.max_concurrent_connections.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        accepting.spawn(accept_loop(listener, Arc::clone(&connections), tx.clone()));
    }
    drop(tx);
    tokio::pin!(shutdown);
    loop {
        let (conn, permit) = tokio::select! {
            next = rx.recv() => match next {
                Some(next) => next,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let app = Arc::clone(&app);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match conn {
                Accepted::Tcp(stream) => connection(stream, &app, watcher).await,
                Accepted::Unix(stream) => connection(stream, &app, watcher).await,
            }
            drop(permit);
        });
    }
    // Closes every listening socket (and removes Unix socket files); a
    // connection accepted but not yet taken from the channel is dropped.
    accepting.abort_all();
    while accepting.join_next().await.is_some() {}
    drop(rx);
    app.draining.store(true, Ordering::Relaxed);

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

/// One accepted connection: its TLS handshake, if the listener has TLS,
/// then [`serve_connection`].
async fn connection<I>(io: I, app: &Arc<App>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(tls) = app.config.tls.clone() else {
        return serve_connection(io, None, app, watcher).await;
    };
    let limit = tls.handshake_timeout;
    match tokio::time::timeout(limit, tls.acceptor.accept(io)).await {
        Ok(Ok(stream)) if !app.draining.load(Ordering::Relaxed) => {
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            serve_connection(stream, alpn, app, watcher).await;
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            app.metrics.tls_handshake_failures.inc();
            tracing::debug!(error = %e, "TLS handshake failed");
        }
        Err(_) => {
            app.metrics.tls_handshake_failures.inc();
            tracing::debug!(?limit, "TLS handshake timed out");
        }
    }
}

/// Serves one connection (plaintext, or TLS after its handshake, with the
/// protocol ALPN chose) until it closes or the drain ends it.
async fn serve_connection<I>(io: I, alpn: Option<Vec<u8>>, app: &Arc<App>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn({
        let app = Arc::clone(app);
        move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.serve(req).await) }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        // HTTP/2 has no header-read timeout: a peer that stops answering
        // pings within 20 s is closed instead, so a vanished client does
        // not hold its connection slot.
        .keep_alive_interval(app.config.header_read_timeout)
        .keep_alive_timeout(Duration::from_secs(20));
    builder = match alpn.as_deref() {
        Some(b"h2") => builder.http2_only(),
        Some(_) => builder.http1_only(),
        // Plaintext: HTTP/2 only by prior knowledge, and only with --h2c.
        None if app.config.h2c && app.config.tls.is_none() => builder,
        None => builder.http1_only(),
    };
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        let quiet = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_incomplete_message() || e.is_timeout() || e.is_closed());
        if !quiet {
            crate::failure_line(format_args!("error: {e:?}"));
        }
    }
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
pub fn serving_line(url: &str) -> String {
    format!("Serving HTTP on {url}")
}
