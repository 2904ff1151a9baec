//! The figures: matches every event frame a client received with the
//! command acknowledged at that position, and counts what never arrived.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::clients::Received;
use super::writer::{Acked, Written};

/// Largest latency the histograms hold, microseconds (one minute).
const LATENCY_US_MAX: u64 = 60_000_000;
/// Delivery p99 the issue asks for, milliseconds.
pub const DELIVERY_P99_MS_TARGET: f64 = 50.0;
/// Server memory per idle connection the issue asks for, bytes.
pub const RSS_BYTES_PER_CONNECTION_TARGET: u64 = 16 * 1024;

/// Deliveries matched with their commands.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Event frames of acknowledged commands received by their room's clients.
    pub delivered: u64,
    /// (acknowledged command, subscribed client of its room) pairs.
    pub expected: u64,
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Frames whose position did not increase on their connection.
    pub out_of_order: u64,
    /// Frames at positions no acknowledged command of the room had.
    pub unmatched: u64,
    /// Frames that arrived before the command's acknowledgement.
    pub before_ack: u64,
    /// Receipt minus acknowledgement, microseconds.
    pub from_ack: Latency,
    /// Receipt minus sending of the command, microseconds.
    pub from_send: Latency,
    /// First command sent to last frame received.
    pub span: Duration,
}

/// Percentiles of one latency, milliseconds.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// A histogram of microseconds up to [`LATENCY_US_MAX`].
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)?)
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.clamp(1, LATENCY_US_MAX));
}

/// Matches `clients`' frames with `written`'s acknowledgements.
pub fn deliveries(
    written: &Written,
    clients: &[Received],
    rooms: usize,
) -> anyhow::Result<Deliveries> {
    let by_position: HashMap<u64, &Acked> = written.acked.iter().map(|a| (a.position, a)).collect();
    let mut per_room = vec![0u64; rooms];
    for a in &written.acked {
        per_room[a.room] += 1;
    }
    let first_sent = written.acked.iter().map(|a| a.sent).min();
    let mut last_receipt: Option<Instant> = None;
    let mut from_ack = histogram()?;
    let mut from_send = histogram()?;
    let mut d = Deliveries::default();
    for c in clients.iter().filter(|c| c.subscribed) {
        d.expected += per_room[c.room];
        let mut previous = 0;
        let mut matched = 0;
        for &(position, at) in &c.events {
            if position <= previous {
                d.out_of_order += 1;
                continue;
            }
            previous = position;
            let Some(a) = by_position.get(&position).filter(|a| a.room == c.room) else {
                d.unmatched += 1;
                continue;
            };
            matched += 1;
            last_receipt = last_receipt.max(Some(at));
            if at < a.acked {
                d.before_ack += 1;
            }
            record(&mut from_ack, at.saturating_duration_since(a.acked));
            record(&mut from_send, at.saturating_duration_since(a.sent));
        }
        d.delivered += matched;
        d.missing += per_room[c.room].saturating_sub(matched);
    }
    d.from_ack = Latency::of(&from_ack);
    d.from_send = Latency::of(&from_send);
    if let (Some(first), Some(last)) = (first_sent, last_receipt) {
        d.span = last.saturating_duration_since(first);
    }
    Ok(d)
}

/// Command round trips (send to 2xx), as a latency.
pub fn command_latency(written: &Written) -> anyhow::Result<Latency> {
    let mut h = histogram()?;
    for a in &written.acked {
        record(&mut h, a.acked.saturating_duration_since(a.sent));
    }
    Ok(Latency::of(&h))
}

/// The three targets.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Targets {
    /// Every client connected, subscribed and kept to the end.
    pub clients_held: bool,
    /// Delivery p99 (acknowledgement to receipt) under 50 ms.
    pub delivery_p99_under_50_ms: bool,
    /// Server RSS per idle connection under 16 KiB.
    pub rss_per_connection_under_16_kib: bool,
}

/// The whole run, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// WebSocket clients asked for.
    pub clients: usize,
    /// Clients connected and subscribed.
    pub clients_connected: usize,
    /// Ticket rooms they were spread over.
    pub rooms: usize,
    /// Start of the ramp until every client was subscribed, seconds.
    pub connect_s: f64,
    /// `presence` frames the clients received while connecting (every
    /// join sends the room's users to every member).
    pub presence_frames: u64,
    /// Commands per second asked for.
    pub rate_per_s: u32,
    /// Length of the write phase asked for, seconds.
    pub duration_s: u64,
    /// Commands sent.
    pub commands_sent: u64,
    /// Commands acknowledged (2xx).
    pub commands_acked: u64,
    /// Commands per second achieved (acknowledged over the write phase).
    pub commands_per_s: f64,
    /// Command round trip (send to 2xx).
    pub command_latency: Latency,
    /// Times the writer found all its slots busy.
    pub commands_late: u64,
    /// Deliveries expected (acknowledged commands x their room's clients).
    pub events_expected: u64,
    /// Deliveries received.
    pub events_delivered: u64,
    /// Deliveries that never arrived.
    pub missing_deliveries: u64,
    /// Frames out of position order on their connection.
    pub out_of_order_deliveries: u64,
    /// Event frames that matched no acknowledged command of the room.
    pub unmatched_events: u64,
    /// Frames that arrived before their command's 2xx.
    pub delivered_before_ack: u64,
    /// Delivery latency (acknowledgement to receipt), median, ms.
    pub delivery_p50_ms: f64,
    /// Delivery latency, 99th percentile, ms.
    pub delivery_p99_ms: f64,
    /// Delivery latency, 99.9th percentile, ms.
    pub delivery_p999_ms: f64,
    /// Delivery latency, largest, ms.
    pub delivery_max_ms: f64,
    /// Sending of the command to receipt.
    pub send_to_receipt: Latency,
    /// Deliveries per second (first command sent to last frame received).
    pub events_delivered_per_s: f64,
    /// Server RSS before any client connected, bytes.
    pub rss_before_bytes: u64,
    /// Server RSS with every client connected and idle, bytes.
    pub rss_idle_bytes: u64,
    /// (idle - before) / connected clients, bytes.
    pub rss_bytes_per_connection: u64,
    /// Server RSS after the write phase, bytes.
    pub rss_after_bytes: u64,
    /// Server open descriptors with every client connected.
    pub server_fds_idle: u64,
    /// Server CPU during the write phase, in cores (1.0 = one core busy).
    pub server_cpu_share: f64,
    /// The bench's own CPU (clients, writer) during the write phase, in cores.
    pub bench_cpu_share: f64,
    /// The bench process's soft open-files limit.
    pub nofile_soft: Option<u64>,
    /// Warnings and errors the server logged.
    pub server_log_problems: u64,
    /// Errors: connects, error frames, lost connections, failed commands.
    pub errors: u64,
    /// The first of them, and of the server's log problems.
    pub first_errors: Vec<String>,
    /// Cores of this machine.
    pub cores: usize,
    /// Load average (1, 5, 15 min) when the run started.
    pub loadavg_start: String,
    /// Load average when it ended.
    pub loadavg_end: String,
    /// The targets.
    pub targets: Targets,
}

impl Report {
    /// Passed: nothing lost and no error (targets are reported, not enforced).
    pub fn passed(&self) -> bool {
        self.errors == 0
            && self.missing_deliveries == 0
            && self.out_of_order_deliveries == 0
            && self.clients_connected == self.clients
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let kib = |b: u64| b as f64 / 1024.0;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let yes = |b: bool| if b { "met" } else { "MISSED" };
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!(
            "fanout: {} of {} clients over {} rooms, connected in {:.2} s ({} presence frames received meanwhile)",
            self.clients_connected, self.clients, self.rooms, self.connect_s, self.presence_frames
        ));
        line(format!(
            "commands: {} acked of {} sent ({:.0}/s asked {}/s), round trip p50 {:.2} ms p99 {:.2} ms, {} late",
            self.commands_acked,
            self.commands_sent,
            self.commands_per_s,
            self.rate_per_s,
            self.command_latency.p50_ms,
            self.command_latency.p99_ms,
            self.commands_late
        ));
        line(format!(
            "deliveries: {} of {} ({} missing, {} out of order, {} unmatched), {:.0} events/s",
            self.events_delivered,
            self.events_expected,
            self.missing_deliveries,
            self.out_of_order_deliveries,
            self.unmatched_events,
            self.events_delivered_per_s
        ));
        line(format!(
            "delivery (ack -> receipt): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} before the ack)",
            self.delivery_p50_ms,
            self.delivery_p99_ms,
            self.delivery_p999_ms,
            self.delivery_max_ms,
            self.delivered_before_ack
        ));
        line(format!(
            "send -> receipt: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.send_to_receipt.p50_ms, self.send_to_receipt.p99_ms, self.send_to_receipt.max_ms
        ));
        line(format!(
            "server RSS: {:.1} MiB before, {:.1} MiB idle with clients, {:.1} MiB after the run; {:.2} KiB per idle connection; {} fds",
            mib(self.rss_before_bytes),
            mib(self.rss_idle_bytes),
            mib(self.rss_after_bytes),
            kib(self.rss_bytes_per_connection),
            self.server_fds_idle
        ));
        line(format!(
            "CPU during the writes: server {:.2} cores, bench (clients and writer) {:.2} cores",
            self.server_cpu_share, self.bench_cpu_share
        ));
        line(format!(
            "targets: clients held {}, delivery p99 < 50 ms {}, RSS < 16 KiB per connection {}",
            yes(self.targets.clients_held),
            yes(self.targets.delivery_p99_under_50_ms),
            yes(self.targets.rss_per_connection_under_16_kib)
        ));
        line(format!(
            "machine: {} cores, load {} -> {}; errors {}, server log problems {}",
            self.cores, self.loadavg_start, self.loadavg_end, self.errors, self.server_log_problems
        ));
        for e in &self.first_errors {
            line(format!("  {e}"));
        }
        s
    }
}
