//! Guests' outbound HTTP (`wasi:http/outgoing-handler`, p2 and p3): the
//! policy it passes and the client that sends it.
//!
//! `wasmtime serve` sends a guest's request anywhere, on a fresh TCP (and
//! TLS) connection each time, with Mozilla's roots. host-runner sends only
//! what an `--outbound-allow` rule permits ([`policy`]; none by default),
//! at most `--outbound-max-concurrent` at once, over pooled keep-alive
//! connections (hyper-util's client, one pool per scheme and authority,
//! idle ones closed after `--outbound-idle-timeout`), with TLS by rustls
//! trusting Mozilla's roots (webpki-roots, as Wasmtime) plus
//! `--outbound-ca`. Timeouts: the guest's `request-options` where it sets
//! them, capped by the host's; the connect timeout covers TCP and TLS, the
//! first-byte timeout runs from the moment a connection is ready.
//!
//! Every refusal reaches the guest as the `error-code` the WASI HTTP
//! interface names for it (`HTTP-request-denied`, `connection-limit-reached`,
//! `connection-timeout`, `connection-refused`, `DNS-error`,
//! `TLS-certificate-error`, `connection-read-timeout`) and is counted in
//! `host_runner_outbound_requests_total{outcome}`; new connections are
//! counted in `host_runner_outbound_connections_total`, so pooling shows.

pub mod policy;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::metrics::Metrics;
use policy::{AllowList, Scheme};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Host settings for outbound requests.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// `--outbound-allow`.
    pub allow: AllowList,
    /// `--outbound-ca`: more trusted roots.
    pub ca: Option<PathBuf>,
    /// `--outbound-connect-timeout`: the longest TCP connect and TLS
    /// handshake.
    pub connect_timeout: Duration,
    /// `--outbound-first-byte-timeout`: the longest wait for response
    /// headers once connected.
    pub first_byte_timeout: Duration,
    /// `--outbound-between-bytes-timeout`: the longest pause in a response
    /// body.
    pub between_bytes_timeout: Duration,
    /// `--outbound-max-concurrent`: requests in flight at once, bodies
    /// included.
    pub max_concurrent: usize,
    /// `--outbound-idle-timeout`: how long an idle pooled connection is
    /// kept (zero: no pooling).
    pub idle_timeout: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            allow: AllowList::default(),
            ca: None,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(60),
            max_concurrent: 100,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// `--outbound-ca` cannot be read or holds no usable certificate.
    #[error("--outbound-ca {}: {problem}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

tokio::task_local! {
    /// The connect timeout of the request being sent, for [`Dial`], which
    /// hyper-util calls with nothing but the URI.
    static CONNECT_TIMEOUT: Duration;
}

/// A connect that took longer than its timeout.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
struct ConnectTimedOut;

/// hyper-rustls's connector, with the request's connect timeout and a
/// count of connections opened.
#[derive(Clone)]
struct Dial {
    inner: hyper_rustls::HttpsConnector<HttpConnector>,
    default_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl tower_service::Service<Uri> for Dial {
    type Response = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = CONNECT_TIMEOUT
            .try_with(|t| *t)
            .unwrap_or(self.default_timeout);
        let connecting = self.inner.call(uri);
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(stream)) => {
                    metrics.outbound_connections.inc();
                    Ok(stream)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// The outbound policy and client, shared by every instance.
pub struct Outbound {
    settings: OutboundSettings,
    client: Client<Dial, WasiBody>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the outbound hook answers: the response and a future for errors
/// after it (always `Ok`: the pool drives the connection).
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

impl Outbound {
    /// The client for `settings`, reading `--outbound-ca`.
    pub fn new(settings: OutboundSettings, metrics: Arc<Metrics>) -> Result<Self, OutboundError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        if let Some(path) = &settings.ca {
            let extra = crate::tls::read_roots(path).map_err(|problem| OutboundError::Ca {
                path: path.clone(),
                problem,
            })?;
            roots.roots.extend(extra.roots);
        }
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let dial = Dial {
            inner: https,
            default_timeout: settings.connect_timeout,
            metrics: Arc::clone(&metrics),
        };
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new());
        if settings.idle_timeout.is_zero() {
            builder.pool_max_idle_per_host(0);
        } else {
            builder.pool_idle_timeout(settings.idle_timeout);
        }
        let client = builder.build(dial);
        Ok(Self {
            permits: Arc::new(Semaphore::new(settings.max_concurrent)),
            settings,
            client,
            metrics,
        })
    }

    /// The startup line.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let mut line = s.allow.summary();
        if !s.allow.is_empty() {
            line.push_str(&format!(
                "; at most {} at once, pooled (idle {:?}), connect timeout {:?}{}",
                s.max_concurrent,
                s.idle_timeout,
                s.connect_timeout,
                match &s.ca {
                    Some(ca) => format!(", extra roots from {}", ca.display()),
                    None => String::new(),
                }
            ));
        }
        line
    }

    /// Sends a guest's request, or refuses it.
    /// With `trace`, the request gets a client span (a child of it) and
    /// carries that span's `traceparent`.
    pub fn send(
        self: &Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        trace: Option<crate::telemetry::RequestTrace>,
    ) -> impl Future<Output = Result<Sent, Error>> + Send + 'static {
        let this = Arc::clone(self);
        let span = trace.map(|t| t.outbound(&mut request));
        async move {
            let outcome = this.send_inner(request, options).await;
            if let Some(span) = span {
                match &outcome {
                    Ok((response, _)) => {
                        span.set(opentelemetry::KeyValue::new(
                            "http.response.status_code",
                            i64::from(response.status().as_u16()),
                        ));
                        span.end(None);
                    }
                    Err(e) => span.end(Some(format!("{e:?}"))),
                }
            }
            let label = match &outcome {
                Ok(_) => "sent",
                Err(Error::HttpRequestDenied) => "denied",
                Err(Error::ConnectionLimitReached) => "limited",
                Err(Error::ConnectionTimeout | Error::ConnectionReadTimeout) => "timeout",
                Err(_) => "error",
            };
            this.metrics.outbound(label);
            outcome
        }
    }

    async fn send_inner(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => return Err(Error::HttpProtocolError),
        };
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        if !self.settings.allow.allows(scheme, host, port) {
            tracing::warn!(
                "outbound request to {}://{host}:{port} denied: no --outbound-allow rule allows it",
                uri.scheme_str().unwrap_or_default()
            );
            return Err(Error::HttpRequestDenied);
        }
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| Error::ConnectionLimitReached)?;
        let options = options.unwrap_or_default();
        let cap = |guest: Option<Duration>, host: Duration| guest.map_or(host, |g| g.min(host));
        let connect = cap(options.connect_timeout, self.settings.connect_timeout);
        let first_byte = cap(options.first_byte_timeout, self.settings.first_byte_timeout);
        let between = cap(
            options.between_bytes_timeout,
            self.settings.between_bytes_timeout,
        );
        // A pooled connection skips the connect, so the wait for headers
        // gets the connect budget only when it needs it.
        let response = tokio::time::timeout(
            connect.saturating_add(first_byte),
            CONNECT_TIMEOUT.scope(connect, self.client.request(request)),
        )
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(client_error)?;
        let response = response.map(|incoming| {
            TimedBody {
                incoming,
                between,
                idle: Box::pin(tokio::time::sleep(between)),
                _permit: permit,
            }
            .boxed_unsync()
        });
        Ok((response, Box::new(async { Ok(()) })))
    }
}

/// A response body that fails with `connection-read-timeout` after a pause
/// longer than `between`, and holds the request's concurrency permit until
/// the guest drops it.
struct TimedBody {
    incoming: hyper::body::Incoming,
    between: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(hyper_error(&e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// The `error-code` for a failed exchange.
fn client_error(e: hyper_util::client::legacy::Error) -> Error {
    tracing::debug!("outbound request failed: {e:?}");
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(cause) = source {
        if let Some(code) = classify(cause) {
            return code;
        }
        source = cause.source();
    }
    if e.is_connect() {
        // hyper-util's resolver reports a failed lookup as "dns error".
        if format!("{e:#?}").contains("dns error") {
            return Error::DnsError {
                rcode: None,
                info_code: None,
            };
        }
        return Error::DestinationUnavailable;
    }
    Error::HttpProtocolError
}

/// The `error-code` one cause in an error chain stands for, if it is one
/// we know. An `io::Error`'s `source()` skips the error it wraps (rustls
/// reports through one), so that is looked at here.
fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<Error> {
    if cause.is::<ConnectTimedOut>() {
        return Some(Error::ConnectionTimeout);
    }
    if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
        return Some(match tls {
            rustls::Error::InvalidCertificate(_) => Error::TlsCertificateError,
            rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            },
            _ => Error::TlsProtocolError,
        });
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        if let Some(code) = io.get_ref().and_then(|inner| classify(inner)) {
            return Some(code);
        }
        use std::io::ErrorKind::*;
        return match io.kind() {
            ConnectionRefused => Some(Error::ConnectionRefused),
            TimedOut => Some(Error::ConnectionTimeout),
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
                Some(Error::ConnectionTerminated)
            }
            _ => None,
        };
    }
    cause.downcast_ref::<hyper::Error>().map(hyper_error)
}

/// The `error-code` for a hyper error, by reference.
fn hyper_error(e: &hyper::Error) -> Error {
    if e.is_incomplete_message() {
        Error::HttpResponseIncomplete
    } else if e.is_timeout() {
        Error::ConnectionReadTimeout
    } else if e.is_closed() || e.is_canceled() {
        Error::ConnectionTerminated
    } else {
        Error::HttpProtocolError
    }
}
