//! What the load tasks record: latency histograms per sampling window,
//! counters, and every error with the first few messages kept.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Slowest latency the histograms hold, in microseconds.
const LATENCY_MAX_MICROS: u64 = 120_000_000;
/// Error messages kept for the report (the count is always complete).
pub const FIRST_ERRORS_KEPT: usize = 20;
/// Longest error message kept, in characters.
const ERROR_CHARS_MAX: usize = 300;

/// Latencies of one kind of operation: the current window and the whole run.
struct Latencies {
    window: Histogram<u64>,
    total: Histogram<u64>,
}

/// Shared by every load task.
pub struct Metrics {
    commands: Mutex<Latencies>,
    queries: Mutex<Latencies>,
    connects: Mutex<Latencies>,
    /// WebSocket clients connected and subscribed right now.
    pub ws_connected: AtomicI64,
    /// Frames received by WebSocket clients.
    pub ws_frames: AtomicU64,
    /// `event` frames received by WebSocket clients.
    pub ws_events: AtomicU64,
    /// Disconnections asked by the churn.
    pub ws_churned: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

/// Latency percentiles of one window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    /// Operations in the window.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// One window's latencies, taken (and reset) at a sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Commands.
    pub commands: Percentiles,
    /// Queries.
    pub queries: Percentiles,
    /// WebSocket connect + subscribe.
    pub connects: Percentiles,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Latencies {
    fn new() -> anyhow::Result<Self> {
        Ok(Latencies {
            window: histogram()?,
            total: histogram()?,
        })
    }

    fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.window.saturating_record(micros);
        self.total.saturating_record(micros);
    }

    fn take(&mut self) -> Percentiles {
        let p = Percentiles::of(&self.window);
        self.window.reset();
        p
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Metrics {
            commands: Mutex::new(Latencies::new()?),
            queries: Mutex::new(Latencies::new()?),
            connects: Mutex::new(Latencies::new()?),
            ws_connected: AtomicI64::new(0),
            ws_frames: AtomicU64::new(0),
            ws_events: AtomicU64::new(0),
            ws_churned: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_errors: Mutex::new(Vec::new()),
        })
    }

    /// A command answered with a 2xx.
    pub fn command(&self, d: Duration) {
        lock(&self.commands).record(d);
    }

    /// A query answered with a 2xx.
    pub fn query(&self, d: Duration) {
        lock(&self.queries).record(d);
    }

    /// A WebSocket client connected and subscribed.
    pub fn connect(&self, d: Duration) {
        lock(&self.connects).record(d);
    }

    /// Counts an error and keeps its message if it is among the first.
    pub fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = lock(&self.first_errors);
        if first.len() < FIRST_ERRORS_KEPT {
            first.push(message.chars().take(ERROR_CHARS_MAX).collect());
        }
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The first error messages.
    pub fn first_errors(&self) -> Vec<String> {
        lock(&self.first_errors).clone()
    }

    /// This window's latencies; starts the next window.
    pub fn take_window(&self) -> Window {
        Window {
            commands: lock(&self.commands).take(),
            queries: lock(&self.queries).take(),
            connects: lock(&self.connects).take(),
        }
    }

    /// Latencies over the whole run (setup excluded).
    pub fn totals(&self) -> Window {
        Window {
            commands: Percentiles::of(&lock(&self.commands).total),
            queries: Percentiles::of(&lock(&self.queries).total),
            connects: Percentiles::of(&lock(&self.connects).total),
        }
    }

    /// Resets the whole-run histograms (after the setup).
    pub fn reset_totals(&self) {
        for l in [&self.commands, &self.queries, &self.connects] {
            let mut l = lock(l);
            l.window.reset();
            l.total.reset();
        }
    }
}
