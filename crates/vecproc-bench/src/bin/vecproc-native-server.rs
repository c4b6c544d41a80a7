//! `vecproc-native-server`: the service's benchmark routes (`GET /health`,
//! `GET /compute`, `POST /stats`, `POST /sort`) answered natively by
//! `vecproc_core::api` on hyper 1 and tokio, with no WebAssembly: the limit
//! of the machine for the serving benchmark (`cargo xtask bench`), which
//! measures it in the same run as the wasm servers.
//!
//! `vecproc-native-server serve --addr=127.0.0.1:0` prints
//! `Serving HTTP on http://ADDR/` on stderr like `wasmtime serve` and
//! host-runner, so the benchmark starts all three the same way. Bodies are
//! read whole up to the service's 64 MiB limit; there are no timeouts or
//! other limits: it is a yardstick, not a server to deploy.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
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

#[tokio::main]
async fn main() -> Result<()> {
    let Command::Serve { addr } = Command::parse();
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("Serving HTTP on http://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
