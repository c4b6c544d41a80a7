//! What host-runner counts for the admin endpoint's `/metrics`: requests by
//! status, request latency, instantiation time, in-flight and queued
//! requests, rejections, traps and timeouts, and the memory budget's limit
//! and use (read when scraped).
//!
//! The metric types and the text encoding are the Prometheus project's
//! `prometheus-client` (OpenMetrics text, which Prometheus scrapes): this
//! module only names the metrics, keeps their handles, and turns durations
//! into seconds. Counters and gauges are atomics; a status code's counter is
//! found in a read-locked map.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram as Buckets;
use prometheus_client::registry::Registry;

/// Bucket upper bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A new histogram of [`BUCKETS`].
fn duration_buckets() -> Buckets {
    Buckets::new(BUCKETS)
}

/// A histogram of durations, in seconds.
#[derive(Clone)]
pub struct Histogram(Buckets);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(Buckets::new(BUCKETS))
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyValueLabel {
    backend: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyValueTimeLabel {
    backend: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

/// Everything host-runner counts.
pub struct Metrics {
    registry: Registry,
    by_status: Family<StatusLabel, Counter>,
    /// Time to response headers.
    pub latency: Histogram,
    /// Time to instantiate a component.
    pub instantiation: Histogram,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Requests waiting for admission.
    pub queued: Gauge,
    /// Requests answered 503 by admission control.
    pub rejected: Counter,
    /// Guest executions that ended in a trap or error.
    pub traps: Counter,
    /// Guest executions stopped by the request timeout.
    pub timeouts: Counter,
    /// The memory budget's size in bytes (0 without a budget).
    pub budget_limit: Gauge,
    /// Bytes of the memory budget reserved or grown into.
    pub budget_used: Gauge,
    /// TLS handshakes that failed or did not finish in time.
    pub tls_handshake_failures: Counter,
    outbound_requests: Family<OutcomeLabel, Counter>,
    /// Connections opened for guests' outbound requests.
    pub outbound_connections: Counter,
    keyvalue_operations: Family<KeyValueLabel, Counter>,
    keyvalue_durations: Family<KeyValueTimeLabel, Buckets>,
    keyvalue_conflicts: Family<BackendLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            by_status: Family::default(),
            latency: Histogram::default(),
            instantiation: Histogram::default(),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            rejected: Counter::default(),
            traps: Counter::default(),
            timeouts: Counter::default(),
            budget_limit: Gauge::default(),
            budget_used: Gauge::default(),
            tls_handshake_failures: Counter::default(),
            outbound_requests: Family::default(),
            outbound_connections: Counter::default(),
            keyvalue_operations: Family::default(),
            keyvalue_durations: Family::new_with_constructor(duration_buckets as fn() -> Buckets),
            keyvalue_conflicts: Family::default(),
        };
        let r = &mut m.registry;
        // Counter names get `_total` from the encoder.
        r.register(
            "host_runner_requests",
            "Responses sent, by status code",
            m.by_status.clone(),
        );
        r.register(
            "host_runner_request_duration_seconds",
            "Time from request to response headers",
            m.latency.0.clone(),
        );
        r.register(
            "host_runner_instantiation_duration_seconds",
            "Time to instantiate the component for a request",
            m.instantiation.0.clone(),
        );
        r.register(
            "host_runner_requests_in_flight",
            "Requests being handled",
            m.in_flight.clone(),
        );
        r.register(
            "host_runner_requests_queued",
            "Requests waiting for admission",
            m.queued.clone(),
        );
        r.register(
            "host_runner_requests_rejected",
            "Requests answered 503 by admission control",
            m.rejected.clone(),
        );
        r.register(
            "host_runner_guest_traps",
            "Guest executions that trapped or failed",
            m.traps.clone(),
        );
        r.register(
            "host_runner_guest_timeouts",
            "Guest executions stopped by the request timeout",
            m.timeouts.clone(),
        );
        r.register(
            "host_runner_memory_budget_bytes",
            "Size of the memory budget for guest linear memory (0: none)",
            m.budget_limit.clone(),
        );
        r.register(
            "host_runner_memory_budget_used_bytes",
            "Bytes of the memory budget reserved by admitted requests or grown into",
            m.budget_used.clone(),
        );
        r.register(
            "host_runner_tls_handshake_failures",
            "TLS handshakes that failed or did not finish within --tls-handshake-timeout",
            m.tls_handshake_failures.clone(),
        );
        r.register(
            "host_runner_outbound_requests",
            "Guests' outbound requests, by outcome: sent (response headers received), denied (no --outbound-allow rule), limited (--outbound-max-concurrent), timeout, error",
            m.outbound_requests.clone(),
        );
        r.register(
            "host_runner_outbound_connections",
            "Connections opened for guests' outbound requests (pooled connections are reused)",
            m.outbound_connections.clone(),
        );
        r.register(
            "host_runner_keyvalue_operations",
            "wasi:keyvalue store operations, by backend (embedded, redis), operation (get, set, delete, list, cas, increment) and outcome (ok, unavailable, invalid)",
            m.keyvalue_operations.clone(),
        );
        r.register(
            "host_runner_keyvalue_operation_duration_seconds",
            "Time of a wasi:keyvalue store operation, by backend and operation",
            m.keyvalue_durations.clone(),
        );
        r.register(
            "host_runner_keyvalue_cas_conflicts",
            "Compare-and-swaps that lost a race (the guest retries or answers 412), by backend",
            m.keyvalue_conflicts.clone(),
        );
        m
    }
}

/// One unit of a gauge, held while something lasts (a request in the
/// queue, a guest running) and taken back when dropped, however the holder
/// ends: completed, failed, or its future dropped by a departing client.
#[must_use = "dropping it takes the unit back at once"]
pub struct GaugeUnit(Gauge);

impl GaugeUnit {
    /// Adds one to `gauge` until the unit is dropped.
    pub fn hold(gauge: &Gauge) -> Self {
        gauge.inc();
        GaugeUnit(gauge.clone())
    }
}

impl Drop for GaugeUnit {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Counts a response with this status.
    pub fn count_status(&self, status: u16) {
        self.by_status.get_or_create(&StatusLabel { status }).inc();
    }

    /// Counts an outbound request's outcome.
    pub fn outbound(&self, outcome: &'static str) {
        self.outbound_requests
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts and times one key-value store operation.
    pub fn keyvalue(
        &self,
        backend: &'static str,
        operation: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        self.keyvalue_operations
            .get_or_create(&KeyValueLabel {
                backend,
                operation,
                outcome,
            })
            .inc();
        self.keyvalue_durations
            .get_or_create(&KeyValueTimeLabel { backend, operation })
            .observe(took.as_secs_f64());
    }

    /// Counts a compare-and-swap that lost its race.
    pub fn keyvalue_cas_conflict(&self, backend: &'static str) {
        self.keyvalue_conflicts
            .get_or_create(&BackendLabel { backend })
            .inc();
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::default();
        m.count_status(200);
        m.count_status(200);
        m.count_status(503);
        m.latency.observe(Duration::from_millis(3));
        m.rejected.inc();
        m.in_flight.inc();
        let text = m.render();
        for needle in [
            "# TYPE host_runner_requests counter",
            "host_runner_requests_total{status=\"200\"} 2",
            "host_runner_requests_total{status=\"503\"} 1",
            "host_runner_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "host_runner_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "host_runner_request_duration_seconds_count 1",
            "host_runner_requests_rejected_total 1",
            "host_runner_requests_in_flight 1",
            "host_runner_guest_traps_total 0",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[tokio::test]
    async fn a_held_unit_is_taken_back_when_its_future_is_dropped() {
        let m = Metrics::default();
        let task = tokio::spawn({
            let queued = m.queued.clone();
            async move {
                let _unit = GaugeUnit::hold(&queued);
                std::future::pending::<()>().await;
            }
        });
        tokio::task::yield_now().await;
        while m.queued.get() == 0 {
            tokio::task::yield_now().await;
        }
        task.abort();
        let _ = task.await;
        assert_eq!(m.queued.get(), 0);
    }
}
