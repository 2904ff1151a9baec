//! One sample every `--sample-s`: the server process as Linux sees it
//! (`/proc/<pid>`), and the load's window of latencies and counters.

use std::sync::atomic::Ordering;
use std::time::Duration;

use command_api::procfs::{status_field, Pid};
use serde::{Deserialize, Serialize};

use super::metrics::{Metrics, Window};

/// The server at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Process {
    rss_kib: u64,
    threads: u64,
    fds: u64,
}

impl Process {
    /// Reads `/proc/<pid>`; zeros for what cannot be read (the process ended).
    fn read(pid: u32) -> Self {
        let field = |name: &str| status_field(Pid::Of(pid), name).unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Process {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            fds,
        }
    }
}

/// One sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the measured run started.
    pub t_s: f64,
    /// Server resident set size, MiB.
    pub rss_mib: f64,
    /// Server heap in live allocations (jemalloc's count, from `/metrics`),
    /// MiB; 0 where it could not be read (and in reports from before it).
    #[serde(default)]
    pub heap_mib: f64,
    /// Server open file descriptors.
    pub fds: u64,
    /// Server threads.
    pub threads: u64,
    /// WebSocket clients connected and subscribed.
    pub ws_connected: i64,
    /// Commands answered in the window.
    pub commands: u64,
    /// Commands per second in the window.
    pub commands_per_s: f64,
    /// Command latency, median, ms.
    pub command_p50_ms: f64,
    /// Command latency, 99th percentile, ms.
    pub command_p99_ms: f64,
    /// Slowest command, ms.
    pub command_max_ms: f64,
    /// Queries answered in the window.
    pub queries: u64,
    /// Queries per second in the window.
    pub queries_per_s: f64,
    /// Query latency, median, ms.
    pub query_p50_ms: f64,
    /// Query latency, 99th percentile, ms.
    pub query_p99_ms: f64,
    /// WebSocket (re)connections in the window.
    pub ws_connects: u64,
    /// Connect + subscribe latency, 99th percentile, ms.
    pub ws_connect_p99_ms: f64,
    /// `event` frames received by the clients in the window.
    pub ws_events: u64,
    /// All frames received by the clients in the window.
    pub ws_frames: u64,
    /// Errors since the start (setup included).
    pub errors: u64,
}

/// Takes the samples; remembers the counters of the previous one.
pub struct Sampler {
    pid: u32,
    last_t: Duration,
    last_events: u64,
    last_frames: u64,
}

impl Sampler {
    /// Starts counting now (the setup's frames are not the run's).
    pub fn new(pid: u32, metrics: &Metrics) -> Self {
        Sampler {
            pid,
            last_t: Duration::ZERO,
            last_events: metrics.ws_events.load(Ordering::Relaxed),
            last_frames: metrics.ws_frames.load(Ordering::Relaxed),
        }
    }

    /// A sample at `t` into the run, closing the latency window;
    /// `heap_bytes` is what the server's allocator last reported.
    pub fn take(&mut self, t: Duration, metrics: &Metrics, heap_bytes: Option<u64>) -> Sample {
        let p = Process::read(self.pid);
        let w: Window = metrics.take_window();
        let events = metrics.ws_events.load(Ordering::Relaxed);
        let frames = metrics.ws_frames.load(Ordering::Relaxed);
        let window_s = (t - self.last_t).as_secs_f64().max(1e-3);
        let s = Sample {
            t_s: t.as_secs_f64(),
            rss_mib: p.rss_kib as f64 / 1024.0,
            heap_mib: heap_bytes.map_or(0.0, super::mib),
            fds: p.fds,
            threads: p.threads,
            ws_connected: metrics.ws_connected.load(Ordering::Relaxed),
            commands: w.commands.count,
            commands_per_s: w.commands.count as f64 / window_s,
            command_p50_ms: w.commands.p50_ms,
            command_p99_ms: w.commands.p99_ms,
            command_max_ms: w.commands.max_ms,
            queries: w.queries.count,
            queries_per_s: w.queries.count as f64 / window_s,
            query_p50_ms: w.queries.p50_ms,
            query_p99_ms: w.queries.p99_ms,
            ws_connects: w.connects.count,
            ws_connect_p99_ms: w.connects.p99_ms,
            ws_events: events - self.last_events,
            ws_frames: frames - self.last_frames,
            errors: metrics.errors(),
        };
        self.last_t = t;
        self.last_events = events;
        self.last_frames = frames;
        s
    }
}

impl Sample {
    /// Column names of [`Sample::row`].
    pub fn header() -> String {
        format!(
            "{:>6} {:>8} {:>8} {:>6} {:>4} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7}",
            "t s",
            "RSS MiB",
            "heap MiB",
            "fds",
            "thr",
            "ws",
            "cmd/s",
            "p50 ms",
            "p99 ms",
            "q/s",
            "q p99",
            "events",
            "errors"
        )
    }

    /// One line of the table printed while running.
    pub fn row(&self) -> String {
        format!(
            "{:>6.0} {:>8.1} {:>8.1} {:>6} {:>4} {:>6} {:>7.0} {:>7.2} {:>7.2} {:>7.0} {:>7.2} {:>8} {:>7}",
            self.t_s,
            self.rss_mib,
            self.heap_mib,
            self.fds,
            self.threads,
            self.ws_connected,
            self.commands_per_s,
            self.command_p50_ms,
            self.command_p99_ms,
            self.queries_per_s,
            self.query_p99_ms,
            self.ws_events,
            self.errors
        )
    }
}
