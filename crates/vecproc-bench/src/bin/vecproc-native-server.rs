//! `vecproc-native-server`: the service's benchmark routes (`GET /health`,
//! `GET /compute`, `POST /stats`, `POST /sort`) answered natively by
//! `vecproc_core::api` on hyper 1 and tokio, with no WebAssembly: the limit
//! of the machine for the serving benchmark (`cargo xtask bench`), which
//! measures it in the same run as the wasm servers.
//!
//! `vecproc-native-server serve --addr=127.0.0.1:0` prints
//! `Serving HTTP on http://ADDR/` on stderr like `wasmtime serve` and
//! host-runner, so the benchmark starts all three the same way. It speaks
//! HTTP/1.1, with `--h2c` also HTTP/2 by prior knowledge on the same
//! listener, and with `--tls-cert`/`--tls-key` HTTPS with ALPN `h2` and
//! `http/1.1` on rustls (ring): hyper-util's automatic builder, set per
//! connection exactly as host-runner sets it, for the protocol benchmark's
//! native row. Bodies are read whole up to the
//! service's 64 MiB limit; there are no timeouts or other limits: it is a
//! yardstick, not a server to deploy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use vecproc_core::api::{self, ApiError, BodyFormat, Route};
use vecproc_core::Vector;

#[derive(Parser)]
enum Command {
    /// Serve until killed.
    Serve {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// On plaintext, also serve HTTP/2 to clients that open with its
        /// preface (off: HTTP/1.1 only), as host-runner's `--h2c`.
        #[arg(long)]
        h2c: bool,
    },
}

/// A complete answer: status, content type, `Allow`, body.
type Reply = (u16, &'static str, Option<&'static str>, Vec<u8>);

fn error(e: &ApiError) -> Reply {
    (e.status(), api::JSON, e.allow, e.to_json())
}

async fn respond(request: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let route = api::route(request.method().as_str(), &path)?;
    match route {
        Route::Health => Ok((200, api::JSON, None, api::health_json())),
        Route::Compute { n } => Ok((
            200,
            api::JSON,
            None,
            api::compute_json(n, vecproc_core::compute(n)),
        )),
        Route::Stats | Route::Sort { .. } => {
            let header = |name| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let format = BodyFormat::from_content_type(header(CONTENT_TYPE).as_deref())?;
            let accept = header(hyper::header::ACCEPT);
            let limit = api::DEFAULT_MAX_BODY_BYTES;
            let declared = header(CONTENT_LENGTH).and_then(|v| v.parse().ok());
            api::check_declared_length(declared, limit)?;
            let body = Limited::new(request.into_body(), limit as usize)
                .collect()
                .await
                .map_err(|_| api::too_large(limit))?
                .to_bytes();
            let values = api::parse_values(format, &body)?;
            drop(body);
            let mut vector = Vector::new();
            // As the service's http-api: the only error adding values can
            // give is a non-finite value, with the same message.
            vector
                .add_values(&values)
                .map_err(|e| ApiError::new(api::ErrorCode::NonFinite, e.to_string()))?;
            drop(values);
            match route {
                Route::Sort { order } => {
                    let sorted = vector.sorted(order);
                    if api::wants_binary(accept.as_deref()) {
                        Ok((200, api::OCTET_STREAM, None, api::values_binary(sorted)))
                    } else {
                        Ok((200, api::JSON, None, api::values_json(sorted)))
                    }
                }
                _ => Ok((200, api::JSON, None, api::stats_json(&vector.statistics()))),
            }
        }
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, allow, body) = respond(request).await.unwrap_or_else(|e| error(&e));
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type);
    if let Some(allow) = allow {
        response = response.header(ALLOW, allow);
    }
    Ok(response
        .body(Full::new(Bytes::from(body)))
        .expect("valid response parts"))
}

/// The rustls configuration for `--tls-cert`/`--tls-key`: TLS 1.2 and 1.3,
/// ALPN `h2` then `http/1.1`.
fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<()> {
    let Command::Serve {
        addr,
        tls_cert,
        tls_key,
        h2c,
    } = Command::parse();
    let tls = match (&tls_cert, &tls_key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(
            cert, key,
        )?))),
        _ => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("Serving HTTP on {scheme}://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        tokio::spawn(async move {
            // The protocol is chosen as host-runner chooses it: by ALPN over
            // TLS, and on plaintext HTTP/1.1 only unless --h2c.
            let builder = auto::Builder::new(TokioExecutor::new());
            let service = service_fn(handle);
            let _ = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        let builder = match stream.get_ref().1.alpn_protocol() {
                            Some(b"h2") => builder.http2_only(),
                            _ => builder.http1_only(),
                        };
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    let builder = if h2c { builder } else { builder.http1_only() };
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}
