//! Prometheus metrics on `/metrics`, kept by prometheus-client in a
//! registry each server owns (servers in one test process never share
//! counts): requests by route and status, latency histograms by route,
//! appends and events per append, and gauges read at scrape time.

use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::heap::HeapStats;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the events-per-append buckets.
pub const APPEND_EVENTS_BUCKETS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 64.0];

/// Labels of `ticketlog_http_requests_total`, in their exposition order.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The matched route template (a bounded set), never the raw path.
    route: String,
    status: u16,
}

/// Label of `ticketlog_http_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// The server's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram>,
    append_events: Histogram,
    commands_appended: Counter,
    events_appended: Counter,
    commands_duplicate: Counter,
    rate_limited: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let append_events = Histogram::new(APPEND_EVENTS_BUCKETS);
        let [commands_appended, events_appended, commands_duplicate, rate_limited] =
            std::array::from_fn(|_| Counter::default());
        // Names without `_total`: the encoder appends it to counters.
        registry.register(
            "ticketlog_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "ticketlog_http_request_duration_seconds",
            "Time to answer, by route",
            latency.clone(),
        );
        registry.register(
            "ticketlog_commands_appended",
            "Commands that appended events",
            commands_appended.clone(),
        );
        registry.register(
            "ticketlog_events_appended",
            "Events appended by commands",
            events_appended.clone(),
        );
        registry.register(
            "ticketlog_commands_duplicate",
            "Idempotent retries answered without appending",
            commands_duplicate.clone(),
        );
        registry.register(
            "ticketlog_rate_limited",
            "Requests refused with 429",
            rate_limited.clone(),
        );
        registry.register(
            "ticketlog_append_events",
            "Events per append request",
            append_events.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            append_events,
            commands_appended,
            events_appended,
            commands_duplicate,
            rate_limited,
        }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched route template
    /// (bounded set), never the raw path.
    pub fn record_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Counts one command's append (`duplicate`: an idempotent retry).
    pub fn record_append(&self, events: usize, duplicate: bool) {
        if duplicate {
            self.commands_duplicate.inc();
            return;
        }
        self.commands_appended.inc();
        self.events_appended.inc_by(events as u64);
        self.append_events.observe(events as f64);
    }

    /// Counts one request refused by the rate limiter.
    pub fn record_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Commands appended so far (not counting retries).
    pub fn commands_appended(&self) -> u64 {
        self.commands_appended.get()
    }

    /// The Prometheus text exposition (0.0.4); `head` is the log's head
    /// position, `memory` the process's memory figures where they could be
    /// read (a gauge that could not be read is left out).
    pub fn render(&self, head: Option<u64>, memory: &MemoryFigures) -> String {
        let mut scraped = Registry::default();
        let gauges = [
            (
                "ticketlog_log_head_position",
                "Position of the last durable event",
                head,
            ),
            (
                "process_resident_memory_bytes",
                "Resident set size of the process",
                memory.resident_bytes,
            ),
            (
                "ticketlog_heap_allocated_bytes",
                "Bytes of live allocations (jemalloc)",
                memory.heap.map(|h| h.allocated_bytes),
            ),
            (
                "ticketlog_heap_resident_bytes",
                "Bytes of pages the allocator holds resident (jemalloc)",
                memory.heap.map(|h| h.resident_bytes),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                scraped.register(name, help, ConstGauge::new(value));
            }
        }
        let mut out = String::new();
        // Writing into a `String` cannot fail; a metric that could not be
        // encoded would only shorten the scrape.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &scraped);
        out
    }
}

/// What the process's memory looks like from outside (RSS) and to its
/// allocator (heap), for the gauges of `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryFigures {
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// The allocator's counters.
    pub heap: Option<HeapStats>,
}

impl MemoryFigures {
    /// The figures of this process now.
    pub fn now() -> Self {
        MemoryFigures {
            resident_bytes: crate::procfs::rss_bytes(crate::procfs::Pid::This),
            heap: crate::heap::read(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_gauges_only_where_read() {
        let m = Metrics::default();
        let memory = MemoryFigures {
            resident_bytes: Some(5 << 20),
            heap: Some(HeapStats {
                allocated_bytes: 3 << 20,
                resident_bytes: 4 << 20,
            }),
        };
        let text = m.render(None, &memory);
        assert!(
            text.contains("\nprocess_resident_memory_bytes 5242880\n"),
            "{text}"
        );
        assert!(
            text.contains("\nticketlog_heap_allocated_bytes 3145728\n"),
            "{text}"
        );
        assert!(
            text.contains("\nticketlog_heap_resident_bytes 4194304\n"),
            "{text}"
        );
        let none = m.render(None, &MemoryFigures::default());
        assert!(!none.contains("process_resident_memory_bytes"), "{none}");
        assert!(!none.contains("ticketlog_heap_"), "{none}");
    }

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("POST", "/api/v1/tickets", 201, Duration::from_micros(800));
        m.record_request("POST", "/api/v1/tickets", 201, Duration::from_millis(30));
        m.record_append(2, false);
        m.record_append(2, true);
        let text = m.render(Some(7), &MemoryFigures::default());
        assert!(text.contains(
            "ticketlog_http_requests_total{method=\"POST\",route=\"/api/v1/tickets\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "ticketlog_http_request_duration_seconds_bucket{route=\"/api/v1/tickets\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "ticketlog_http_request_duration_seconds_bucket{route=\"/api/v1/tickets\",le=\"0.05\"} 2"
        ));
        assert!(text.contains("ticketlog_commands_appended_total 1"));
        assert!(text.contains("ticketlog_events_appended_total 2"));
        assert!(text.contains("ticketlog_commands_duplicate_total 1"));
        assert!(text.contains("ticketlog_append_events_bucket{le=\"2\"} 1"));
        assert!(text.contains("ticketlog_log_head_position 7"));
    }
}
