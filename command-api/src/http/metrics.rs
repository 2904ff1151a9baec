//! Prometheus metrics kept in memory and rendered as text on `/metrics`:
//! requests by route and status, latency histograms by route, appends and
//! events per append.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::heap::HeapStats;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the events-per-append buckets.
pub const APPEND_EVENTS_BUCKETS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 64.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.len() != bounds.len() {
            self.buckets = vec![0; bounds.len()];
        }
        for (i, bound) in bounds.iter().enumerate() {
            if value <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in bounds.iter().enumerate() {
            let n = self.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct RouteStats {
    /// (method, status) → count; a handful per route, so a small vector.
    by_status: Vec<((String, u16), u64)>,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Requests {
    /// Keyed by route template, looked up without allocating.
    routes: BTreeMap<String, RouteStats>,
}

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    append_events: Mutex<Histogram>,
    commands_appended: AtomicU64,
    events_appended: AtomicU64,
    commands_duplicate: AtomicU64,
    rate_limited: AtomicU64,
}

impl Metrics {
    /// Counts one answered request. `route` is the matched route template
    /// (bounded set), never the raw path.
    pub fn record_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if !r.routes.contains_key(route) {
            r.routes.insert(route.to_string(), RouteStats::default());
        }
        let Some(stats) = r.routes.get_mut(route) else {
            return;
        };
        match stats
            .by_status
            .iter_mut()
            .find(|((m, s), _)| m == method && *s == status)
        {
            Some((_, n)) => *n += 1,
            None => stats.by_status.push(((method.to_string(), status), 1)),
        }
        stats
            .latency
            .observe(&LATENCY_BUCKETS_S, latency.as_secs_f64());
    }

    /// Counts one command's append (`duplicate`: an idempotent retry).
    pub fn record_append(&self, events: usize, duplicate: bool) {
        if duplicate {
            self.commands_duplicate.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.commands_appended.fetch_add(1, Ordering::Relaxed);
        self.events_appended
            .fetch_add(events as u64, Ordering::Relaxed);
        self.append_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(&APPEND_EVENTS_BUCKETS, events as f64);
    }

    /// Counts one request refused by the rate limiter.
    pub fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands appended so far (not counting retries).
    pub fn commands_appended(&self) -> u64 {
        self.commands_appended.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition; `head` is the log's head position,
    /// `memory` the process's memory figures where they could be read.
    pub fn render(&self, head: Option<u64>, memory: &MemoryFigures) -> String {
        let mut out = String::new();
        {
            let r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            out.push_str("# HELP ticketlog_http_requests_total HTTP requests answered.\n");
            out.push_str("# TYPE ticketlog_http_requests_total counter\n");
            for (route, stats) in &r.routes {
                let mut rows = stats.by_status.clone();
                rows.sort();
                for ((method, status), n) in rows {
                    let _ = writeln!(
                        out,
                        "ticketlog_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                        escape(route)
                    );
                }
            }
            out.push_str(
                "# HELP ticketlog_http_request_duration_seconds Time to answer, by route.\n",
            );
            out.push_str("# TYPE ticketlog_http_request_duration_seconds histogram\n");
            for (route, stats) in &r.routes {
                let labels = format!("route=\"{}\"", escape(route));
                stats.latency.render(
                    &mut out,
                    "ticketlog_http_request_duration_seconds",
                    &labels,
                    &LATENCY_BUCKETS_S,
                );
            }
        }
        let counters = [
            (
                "ticketlog_commands_appended_total",
                "Commands that appended events.",
                &self.commands_appended,
            ),
            (
                "ticketlog_events_appended_total",
                "Events appended by commands.",
                &self.events_appended,
            ),
            (
                "ticketlog_commands_duplicate_total",
                "Idempotent retries answered without appending.",
                &self.commands_duplicate,
            ),
            (
                "ticketlog_rate_limited_total",
                "Requests refused with 429.",
                &self.rate_limited,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP ticketlog_append_events Events per append request.\n");
        out.push_str("# TYPE ticketlog_append_events histogram\n");
        self.append_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(
                &mut out,
                "ticketlog_append_events",
                "",
                &APPEND_EVENTS_BUCKETS,
            );
        if let Some(head) = head {
            out.push_str(
                "# HELP ticketlog_log_head_position Position of the last durable event.\n",
            );
            let _ = writeln!(
                out,
                "# TYPE ticketlog_log_head_position gauge\nticketlog_log_head_position {head}"
            );
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident set size of the process.",
                memory.resident_bytes,
            ),
            (
                "ticketlog_heap_allocated_bytes",
                "Bytes of live allocations (jemalloc).",
                memory.heap.map(|h| h.allocated_bytes),
            ),
            (
                "ticketlog_heap_resident_bytes",
                "Bytes of pages the allocator holds resident (jemalloc).",
                memory.heap.map(|h| h.resident_bytes),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
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

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
