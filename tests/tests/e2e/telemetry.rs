//! host-runner's OpenTelemetry export, received by an OTLP/HTTP receiver on
//! loopback (`vecproc_tests::upstream`) and decoded with the protocol's own
//! messages (opentelemetry-proto): a request that carries a W3C
//! `traceparent` continues that trace through the server span, the
//! instantiation and guest-call spans and a client span for the guest's
//! outbound request, whose context reaches the upstream; the request
//! duration arrives as an OTLP histogram; the exporter's credentials reach
//! the receiver and nothing else. Without an endpoint, nothing is sent.
//! The Prometheus endpoint stays: Debian's `prometheus` scrapes it and its
//! HTTP API answers queries over host-runner's series.

use std::process::Command;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;

use vecproc_tests::upstream::{Mode, Upstream};
use vecproc_tests::{artifact, host_runner_bin, request, Server};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

/// Every span the receiver has been sent, with its resource's service name.
fn spans(receiver: &Upstream) -> Vec<(String, Span)> {
    let mut all = Vec::new();
    for r in receiver.requests() {
        if r.path != "/v1/traces" {
            continue;
        }
        let export = ExportTraceServiceRequest::decode(r.body.as_slice()).expect("OTLP traces");
        for resource_spans in export.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    all.push((service.clone(), span));
                }
            }
        }
    }
    all
}

fn host_runner(receiver: &Upstream, upstream: &Upstream) -> Server {
    let rule = format!("http://127.0.0.1:{}", upstream.port);
    let mut cmd = Command::new(host_runner_bin());
    cmd.args([
        "serve",
        "--addr=127.0.0.1:0",
        "-Sconfig",
        "--outbound-allow",
        &rule,
    ])
    .arg(artifact("fixtures/platform.wasm"))
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url(""))
    .env(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=Bearer otlp-secret-token",
    )
    .env("OTEL_SERVICE_NAME", "vecproc-test")
    .env("OTEL_BSP_SCHEDULE_DELAY", "100")
    .env("OTEL_METRIC_EXPORT_INTERVAL", "300");
    Server::start(cmd)
}

#[test]
fn a_traced_request_reaches_the_collector_with_its_children_and_the_upstream() {
    let receiver = Upstream::start(Mode::Empty);
    let upstream = Upstream::start(Mode::Hello);
    let server = host_runner(&receiver, &upstream);
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let reply = request(
        "GET",
        &server.url(&format!("/fetch?url={}", upstream.url("/traced"))),
        &[("traceparent", &traceparent), ("user-agent", "vecproc-e2e")],
        None,
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    assert!(
        receiver.wait_for(Duration::from_secs(15), |_| spans(&receiver).len() >= 4),
        "spans received: {:?}",
        spans(&receiver)
    );
    let spans = spans(&receiver);
    let find = |name: &str, kind: SpanKind| {
        spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.name == name && s.kind == kind as i32)
            .unwrap_or_else(|| panic!("no {kind:?} span {name:?} in {spans:#?}"))
    };
    let server_span = find("GET", SpanKind::Server);
    let instantiate = find("instantiate", SpanKind::Internal);
    let handle = find("guest handle", SpanKind::Internal);
    let client = find("GET", SpanKind::Client);
    for span in [server_span, instantiate, handle, client] {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
    }
    assert!(spans.iter().all(|(service, _)| service == "vecproc-test"));
    // The caller's span is the server span's parent; the rest nest under it.
    assert_eq!(hex(&server_span.parent_span_id), CALLER_SPAN);
    assert_eq!(instantiate.parent_span_id, server_span.span_id);
    assert_eq!(handle.parent_span_id, server_span.span_id);
    assert_eq!(client.parent_span_id, handle.span_id);
    let attr = |span: &Span, key| attribute(&span.attributes, key);
    assert_eq!(
        attr(server_span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(attr(server_span, "url.path").as_deref(), Some("/fetch"));
    assert_eq!(attr(server_span, "url.scheme").as_deref(), Some("http"));
    assert_eq!(
        attr(server_span, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr(server_span, "user_agent.original").as_deref(),
        Some("vecproc-e2e")
    );
    assert_eq!(
        attr(server_span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(client, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(client, "server.port"), Some(upstream.port.to_string()));

    // The upstream saw the client span's context.
    let seen = upstream.requests();
    assert_eq!(
        seen[0].header("traceparent"),
        Some(format!("00-{TRACE_ID}-{}-01", hex(&client.span_id)).as_str())
    );

    // The duration histogram, by method and status.
    assert!(
        receiver.wait_for(Duration::from_secs(15), |requests| requests.iter().any(|r| {
            r.path == "/v1/metrics"
                && ExportMetricsServiceRequest::decode(r.body.as_slice())
                    .expect("OTLP metrics")
                    .resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                    .any(|m| {
                        m.name == "http.server.request.duration"
                            && matches!(&m.data, Some(Data::Histogram(h))
                                if h.data_points.iter().any(|p| p.count >= 1
                                    && attribute(&p.attributes, "http.response.status_code").as_deref() == Some("200")))
                    })
        })),
        "no http.server.request.duration histogram among {:?}",
        receiver.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    // The exporter's headers go to the receiver, and nowhere into the log.
    assert!(receiver
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer otlp-secret-token")));
    assert!(!server.stderr().contains("otlp-secret-token"));
}

/// Without an OTLP endpoint nothing is exported and no traceparent is
/// added to outbound requests.
#[test]
fn without_an_endpoint_nothing_is_exported() {
    let upstream = Upstream::start(Mode::Hello);
    let rule = format!("http://127.0.0.1:{}", upstream.port);
    let server = Server::host_runner(
        &artifact("fixtures/platform.wasm"),
        &["-Sconfig", "--outbound-allow", &rule],
    );
    let reply = request(
        "GET",
        &server.url(&format!("/fetch?url={}", upstream.url("/plain"))),
        &[],
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.requests()[0].header("traceparent"), None);
    assert!(!server.stderr().contains("telemetry:"));
}

/// Debian's Prometheus, on a free loopback port with its storage in a
/// temporary directory, scraping `targets` every second; killed when dropped.
struct Prometheus {
    _child: vecproc_harness::process::Child,
    port: u16,
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        let binary = std::env::var_os("VECPROC_PROMETHEUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/usr/bin/prometheus".into());
        assert!(
            binary.exists(),
            "{} is missing: `cargo xtask test` installs Debian's prometheus",
            binary.display()
        );
        let dir = vecproc_tests::registry::temp_dir("prometheus");
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: host-runner\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let port = vecproc_tests::free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting prometheus");
        let prometheus = Prometheus {
            _child: vecproc_harness::process::Child::new(child),
            port,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let ready = || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && vecproc_tests::get(&prometheus.url("/-/ready")).status == 200
        };
        while !ready() {
            assert!(
                std::time::Instant::now() < deadline,
                "prometheus not ready on 127.0.0.1:{port} after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The instant vector for `query`, as Prometheus's HTTP API answers it.
    fn query(&self, query: &str) -> Vec<serde_json::Value> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let reply = vecproc_tests::get(&self.url(&format!("/api/v1/query?query={encoded}")));
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The Prometheus endpoint stays: Debian's Prometheus scrapes
/// `--admin-addr`'s `/metrics` (OpenMetrics text) and answers queries over
/// the series host-runner counts.
#[test]
fn prometheus_scrapes_the_admin_endpoint() {
    let server = Server::host_runner(
        &artifact("vector-service.wasm"),
        &["--admin-addr=127.0.0.1:0"],
    );
    for _ in 0..3 {
        assert_eq!(vecproc_tests::get(&server.url("/health")).status, 200);
    }
    let prometheus = Prometheus::start(&[server.admin_authority()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let value = |result: &[serde_json::Value]| {
        result
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
    };
    loop {
        let up = prometheus.query("up{job=\"host-runner\"}");
        let requests = prometheus.query("host_runner_requests_total{status=\"200\"}");
        if value(&up) == Some(1.0) && value(&requests) == Some(3.0) {
            let histogram = prometheus.query("host_runner_request_duration_seconds_count");
            assert_eq!(value(&histogram), Some(3.0), "{histogram:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after 30 s: up {up:?}, requests {requests:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
