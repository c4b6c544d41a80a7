//! OpenTelemetry traces and metrics over OTLP, for collectors (Jaeger,
//! Tempo, the OpenTelemetry Collector, vendors' endpoints).
//!
//! Off unless one of the standard variables says where to send:
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` for one signal (and not when
//! `OTEL_SDK_DISABLED=true`). The exporter reads the rest of the standard
//! variables itself (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
//! `OTEL_METRIC_EXPORT_INTERVAL`); the protocol is `http/protobuf`.
//!
//! Each request gets a server span named after its method, with the HTTP
//! semantic conventions' attributes (`http.request.method`, `url.path`,
//! `url.scheme`, `network.protocol.version`, `user_agent.original`,
//! `http.response.status_code`, `error.type` for 5xx), continuing the
//! caller's trace when the request carries a W3C `traceparent`. A guest on a
//! fresh instance (p2, the default) adds children: `instantiate` and
//! `guest handle`, and a client span per outbound request whose context goes
//! to the upstream in `traceparent`. Metrics: `http.server.request.duration`
//! (seconds, by method and status) and `http.server.active_requests`. The
//! Prometheus endpoint (`--admin-addr`) is independent of all this.
//!
//! Exporting runs on the SDK's own threads, through a blocking reqwest
//! client on host-runner's rustls; a collector that is down costs dropped
//! telemetry (the SDK's queue is bounded), never a request.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Histogram, MeterProvider as _, UpDownCounter};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// Telemetry that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A protocol other than `http/protobuf`.
    #[error("{var}={value}: host-runner exports OTLP over HTTP with protobuf; set it to http/protobuf or leave it unset")]
    Protocol {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The exporter refused its configuration (an endpoint that is not a
    /// URL, say).
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

const ENDPOINTS: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
];

/// Variables whose values may hold credentials: never passed to guests by
/// `-S inherit-env`.
pub fn is_secret_var(name: &str) -> bool {
    name.starts_with("OTEL_EXPORTER_OTLP_") && name.ends_with("HEADERS")
}

/// The OpenTelemetry pipelines.
pub struct Telemetry {
    tracer: SdkTracer,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry { .. }")
    }
}

impl Telemetry {
    /// The pipelines the environment asks for, or `None` when it names no
    /// endpoint. `var` reads a variable (the process environment in the
    /// binary); call it before any async runtime starts (the exporter's
    /// client is a blocking one).
    pub fn from_env(
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Arc<Self>>, TelemetryError> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if !ENDPOINTS
            .iter()
            .any(|e| var(e).is_some_and(|v| !v.is_empty()))
        {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            if let Some(value) = var(name).filter(|v| v != "http/protobuf") {
                return Err(TelemetryError::Protocol { var: name, value });
            }
        }
        // rustls with ring and the system's roots, as the registry client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = || {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| TelemetryError::Exporter(format!("HTTP client: {e}")))
        };
        let exporter_error =
            |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter(e.to_string());
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(client()?)
            .build()
            .map_err(exporter_error)?;
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(client()?)
            .build()
            .map_err(exporter_error)?;
        let resource = Resource::builder()
            .with_service_name(var("OTEL_SERVICE_NAME").unwrap_or_else(|| "host-runner".into()))
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource)
            .build();
        let tracer = tracer_provider.tracer("host-runner");
        let meter = meter_provider.meter("host-runner");
        let duration = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP server requests")
            .with_boundaries(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .build();
        let active = meter
            .i64_up_down_counter("http.server.active_requests")
            .with_unit("{request}")
            .with_description("Number of active HTTP server requests")
            .build();
        Ok(Some(Arc::new(Telemetry {
            tracer,
            tracer_provider,
            meter_provider,
            duration,
            active,
            propagator: TraceContextPropagator::new(),
        })))
    }

    /// Starts a request's server span, continuing the trace in its
    /// `traceparent` if it has one.
    pub fn start_request<B>(
        self: &Arc<Self>,
        request: &http::Request<B>,
        tls: bool,
    ) -> RequestTrace {
        let parent = self.propagator.extract(&HeaderExtractor(request.headers()));
        let method = request.method().as_str().to_string();
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.path", request.uri().path().to_string()),
            KeyValue::new("url.scheme", if tls { "https" } else { "http" }),
            KeyValue::new(
                "network.protocol.version",
                match request.version() {
                    http::Version::HTTP_2 => "2",
                    http::Version::HTTP_10 => "1.0",
                    _ => "1.1",
                },
            ),
        ];
        if let Some(query) = request.uri().query() {
            attributes.push(KeyValue::new("url.query", query.to_string()));
        }
        if let Some(agent) = request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
        }
        let span = self
            .tracer
            .span_builder(method.clone())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        self.active
            .add(1, &[KeyValue::new("http.request.method", method.clone())]);
        RequestTrace {
            telemetry: Arc::clone(self),
            cx: parent.with_span(span),
            method,
            started: std::time::Instant::now(),
        }
    }

    /// Sends what is buffered and stops the exporters (at exit).
    pub fn shutdown(&self) {
        if let Err(e) = self.tracer_provider.shutdown() {
            tracing::warn!("OTLP traces: {e}");
        }
        if let Err(e) = self.meter_provider.shutdown() {
            tracing::warn!("OTLP metrics: {e}");
        }
    }
}

/// One request's trace: its server span's context, for children and for
/// outbound requests.
#[derive(Clone)]
pub struct RequestTrace {
    telemetry: Arc<Telemetry>,
    cx: Context,
    method: String,
    started: std::time::Instant,
}

impl std::fmt::Debug for RequestTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTrace")
            .field("span", self.cx.span().span_context())
            .finish()
    }
}

impl RequestTrace {
    /// Starts a child span `name` of this trace's span.
    pub fn child(&self, name: &'static str) -> RequestTrace {
        let span = self
            .telemetry
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .start_with_context(&self.telemetry.tracer, &self.cx);
        RequestTrace {
            telemetry: Arc::clone(&self.telemetry),
            cx: self.cx.with_span(span),
            method: self.method.clone(),
            started: std::time::Instant::now(),
        }
    }

    /// Ends a child span, marking it failed with `error`.
    pub fn end(&self, error: Option<String>) {
        let span = self.cx.span();
        if let Some(error) = error {
            span.set_status(Status::error(error));
        }
        span.end();
    }

    /// Starts a client span for an outbound request and writes its
    /// `traceparent` into the request's headers; end it with
    /// [`RequestTrace::end`].
    pub fn outbound<B>(&self, request: &mut http::Request<B>) -> RequestTrace {
        let method = request.method().as_str().to_string();
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.full", request.uri().to_string()),
        ];
        if let Some(host) = request.uri().host() {
            attributes.push(KeyValue::new("server.address", host.to_string()));
        }
        if let Some(port) = request.uri().port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let span = self
            .telemetry
            .tracer
            .span_builder(method.clone())
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.telemetry.tracer, &self.cx);
        let cx = self.cx.with_span(span);
        self.telemetry
            .propagator
            .inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
        RequestTrace {
            telemetry: Arc::clone(&self.telemetry),
            cx,
            method,
            started: std::time::Instant::now(),
        }
    }

    /// Records an attribute on this trace's span.
    pub fn set(&self, attribute: KeyValue) {
        self.cx.span().set_attribute(attribute);
    }

    /// Ends the server span with the response status, and records the
    /// request's duration.
    pub fn finish(self, status: u16) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
        let method = KeyValue::new("http.request.method", self.method.clone());
        self.telemetry.active.add(-1, std::slice::from_ref(&method));
        self.telemetry.duration.record(
            self.started.elapsed().as_secs_f64(),
            &[
                method,
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert!(Telemetry::from_env(&env(&[])).unwrap().is_none());
        assert!(Telemetry::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]))
        .unwrap()
        .is_none());
        let err = Telemetry::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: "),
            "{err}"
        );
    }

    #[test]
    fn header_variables_are_secret() {
        assert!(is_secret_var("OTEL_EXPORTER_OTLP_HEADERS"));
        assert!(is_secret_var("OTEL_EXPORTER_OTLP_TRACES_HEADERS"));
        assert!(!is_secret_var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        assert!(!is_secret_var("OTEL_SERVICE_NAME"));
    }
}
