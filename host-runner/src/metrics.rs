//! Counters and histograms for the admin endpoint, in Prometheus' text
//! format: requests by status, request latency, instantiation time,
//! in-flight and queued requests, rejections, traps and timeouts.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// Everything host-runner counts.
pub struct Metrics {
    /// Responses by status, indexed by `status - 100` (100..=599): a lock-free
    /// counter on the request path.
    by_status: [AtomicU64; 500],
    /// Time to response headers.
    pub latency: Histogram,
    /// Time to instantiate a component.
    pub instantiation: Histogram,
    /// Requests being handled.
    pub in_flight: AtomicI64,
    /// Requests waiting for admission.
    pub queued: AtomicI64,
    /// Requests answered 503 by admission control.
    pub rejected: AtomicU64,
    /// Guest executions that ended in a trap or error.
    pub traps: AtomicU64,
    /// Guest executions stopped by the request timeout.
    pub timeouts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::default(),
            instantiation: Histogram::default(),
            in_flight: AtomicI64::new(0),
            queued: AtomicI64::new(0),
            rejected: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a response with this status (hyper only sends 100..=599).
    pub fn count_status(&self, status: u16) {
        if let Some(counter) = status
            .checked_sub(100)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP host_runner_requests_total Responses sent, by status code.\n# TYPE host_runner_requests_total counter"
        );
        for (i, counter) in self.by_status.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let status = i + 100;
                let _ = writeln!(out, "host_runner_requests_total{{status=\"{status}\"}} {n}");
            }
        }
        self.latency.render(
            &mut out,
            "host_runner_request_duration_seconds",
            "Time from request to response headers.",
        );
        self.instantiation.render(
            &mut out,
            "host_runner_instantiation_duration_seconds",
            "Time to instantiate the component for a request.",
        );
        let gauges = [
            (
                "host_runner_requests_in_flight",
                "Requests being handled.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "host_runner_requests_queued",
                "Requests waiting for admission.",
                self.queued.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            (
                "host_runner_requests_rejected_total",
                "Requests answered 503 by admission control.",
                self.rejected.load(Ordering::Relaxed),
            ),
            (
                "host_runner_guest_traps_total",
                "Guest executions that trapped or failed.",
                self.traps.load(Ordering::Relaxed),
            ),
            (
                "host_runner_guest_timeouts_total",
                "Guest executions stopped by the request timeout.",
                self.timeouts.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.count_status(200);
        m.count_status(200);
        m.count_status(503);
        m.latency.observe(Duration::from_millis(3));
        m.rejected.fetch_add(1, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("host_runner_requests_total{status=\"200\"} 2"));
        assert!(text.contains("host_runner_requests_total{status=\"503\"} 1"));
        assert!(text.contains("host_runner_request_duration_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("host_runner_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("host_runner_request_duration_seconds_count 1"));
        assert!(text.contains("host_runner_requests_rejected_total 1"));
    }
}
