//! "No growth trend, no error": after a warm-up, a least-squares slope of
//! the server's RSS and open descriptors over the rest of the run.

use serde::{Deserialize, Serialize};

use super::sample::Sample;

/// Share of the run (in samples) ignored as warm-up: caches, pools and
/// allocator arenas fill up then.
pub const WARMUP_FRACTION: f64 = 0.10;
/// Fewest warm-up samples.
pub const WARMUP_SAMPLES_MIN: usize = 1;
/// Fewest samples after the warm-up for a slope.
pub const TREND_SAMPLES_MIN: usize = 2;
/// RSS growth (slope × time after the warm-up) allowed as a share of the
/// mean RSS...
pub const RSS_GROWTH_FRACTION_MAX: f64 = 0.10;
/// ...and in MiB: growth fails only when above both.
pub const RSS_GROWTH_MIB_MAX: f64 = 16.0;
/// Descriptors the end of the run may hold above the warm-up's last
/// sample (clients in the middle of a reconnect, sled's files).
pub const FDS_SLACK_MAX: f64 = 64.0;
/// Share of the samples that make "the end": their mean for descriptors,
/// their median for RSS (a snapshot being written at the last sample
/// lifts RSS for a few seconds; that is a peak, reported apart, not a level).
pub const END_FRACTION: f64 = 0.10;
/// RSS the soaked server may hold beyond a fresh server on the same data
/// plus its connections, in MiB...
pub const UNEXPLAINED_MIB_MAX: f64 = 32.0;
/// ...and as a share of its final RSS: growth fails only above both.
pub const UNEXPLAINED_FRACTION_MAX: f64 = 0.15;

/// What the server's memory should be, measured around the run: the
/// read model lives in memory and grows with the log by design, so RSS
/// growth alone cannot tell a leak from data.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// RSS right after start, before any WebSocket client, MiB.
    pub rss_before_clients_mib: f64,
    /// RSS once every client connected and subscribed, MiB.
    pub rss_with_clients_mib: f64,
    /// RSS of a fresh `serve` on the run's final data, idle, settled, MiB.
    pub rss_fresh_same_data_mib: f64,
    /// That fresh server's live heap, MiB (0 when not reported).
    #[serde(default)]
    pub heap_fresh_same_data_mib: f64,
}

impl Baseline {
    /// Memory held for the connections.
    pub fn connections_mib(&self) -> f64 {
        (self.rss_with_clients_mib - self.rss_before_clients_mib).max(0.0)
    }
}

/// The judgement of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// PASS or FAIL.
    pub pass: bool,
    /// Why it failed (empty when it passed).
    pub reasons: Vec<String>,
    /// Samples ignored at the start.
    pub warmup_samples: usize,
    /// RSS at the last warm-up sample, MiB.
    pub rss_after_warmup_mib: f64,
    /// Median RSS of the last samples (`END_FRACTION`), MiB.
    pub rss_end_mib: f64,
    /// Highest RSS of any sample, MiB.
    #[serde(default)]
    pub rss_peak_mib: f64,
    /// Median live heap of the last samples, MiB (0 when not reported).
    #[serde(default)]
    pub heap_end_mib: f64,
    /// Least-squares slope of the live heap over the second half of the
    /// run, once caches have filled: data and leaks, MiB per minute.
    #[serde(default)]
    pub heap_late_slope_mib_per_min: f64,
    /// Mean RSS after the warm-up, MiB.
    pub rss_mean_mib: f64,
    /// Least-squares RSS slope after the warm-up, MiB per minute.
    pub rss_slope_mib_per_min: f64,
    /// The slope over the time after the warm-up, MiB.
    pub rss_growth_mib: f64,
    /// The growth allowed, MiB: the larger of the two thresholds.
    pub rss_growth_allowed_mib: f64,
    /// Descriptors at the last warm-up sample.
    pub fds_after_warmup: u64,
    /// Mean descriptors over the last samples.
    pub fds_end: f64,
    /// Least-squares descriptor slope after the warm-up, per minute.
    pub fds_slope_per_min: f64,
    /// Errors of the load and error lines of the server's log.
    pub errors: u64,
    /// The memory expected from data and connections (absent in old reports).
    #[serde(default)]
    pub baseline: Baseline,
    /// Final RSS minus a fresh server on the same data and the connections, MiB.
    #[serde(default)]
    pub rss_unexplained_mib: f64,
    /// The unexplained RSS allowed, MiB.
    #[serde(default)]
    pub rss_unexplained_allowed_mib: f64,
}

/// Least-squares slope of `y` over `x`; 0 for fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// Judges the samples of a run with `errors` errors.
pub fn judge(samples: &[Sample], errors: u64, baseline: Baseline) -> Verdict {
    let warmup = ((samples.len() as f64 * WARMUP_FRACTION).ceil() as usize).max(WARMUP_SAMPLES_MIN);
    let mut reasons = vec![];
    if errors > 0 {
        reasons.push(format!("{errors} errors"));
    }
    let trend = samples.get(warmup..).unwrap_or_default();
    if trend.len() < TREND_SAMPLES_MIN {
        reasons.push(format!(
            "{} samples after a warm-up of {warmup}: at least {TREND_SAMPLES_MIN} are needed",
            trend.len()
        ));
    }
    let last_warmup = warmup.checked_sub(1).and_then(|i| samples.get(i));
    let rss: Vec<(f64, f64)> = trend.iter().map(|s| (s.t_s, s.rss_mib)).collect();
    let fds: Vec<(f64, f64)> = trend.iter().map(|s| (s.t_s, s.fds as f64)).collect();
    let rss_slope = slope(&rss);
    let span_s = match (trend.first(), trend.last()) {
        (Some(a), Some(b)) => b.t_s - a.t_s,
        _ => 0.0,
    };
    let rss_mean = mean(rss.iter().map(|p| p.1));
    let rss_growth = rss_slope * span_s;
    let allowed = (rss_mean * RSS_GROWTH_FRACTION_MAX).max(RSS_GROWTH_MIB_MAX);
    let end_n = ((samples.len() as f64 * END_FRACTION).ceil() as usize).max(1);
    let end = &samples[samples.len().saturating_sub(end_n)..];
    let rss_end = median(end.iter().map(|s| s.rss_mib));
    let unexplained = rss_end - baseline.rss_fresh_same_data_mib - baseline.connections_mib();
    let unexplained_allowed = (rss_end * UNEXPLAINED_FRACTION_MAX).max(UNEXPLAINED_MIB_MAX);
    // Growth is a leak only if a fresh server on the same data, with the
    // same connections, would not hold it too.
    if rss_growth > allowed
        && (baseline.rss_fresh_same_data_mib <= 0.0 || unexplained > unexplained_allowed)
    {
        reasons.push(format!(
            "RSS grows {rss_growth:.1} MiB over {span_s:.0} s ({:.2} MiB/min), more than {allowed:.1} MiB, \
             and ends {unexplained:.1} MiB above a fresh server on the same data plus its connections \
             (allowed {unexplained_allowed:.1})",
            rss_slope * 60.0
        ));
    }
    let fds_end = mean(trend.iter().rev().take(end_n).map(|s| s.fds as f64));
    let late: Vec<(f64, f64)> = samples[samples.len() / 2..]
        .iter()
        .map(|s| (s.t_s, s.heap_mib))
        .collect();
    let fds_after_warmup = last_warmup.map_or(0, |s| s.fds);
    if fds_end > fds_after_warmup as f64 + FDS_SLACK_MAX {
        reasons.push(format!(
            "open descriptors end at {fds_end:.0}, more than {FDS_SLACK_MAX} above {fds_after_warmup} after the warm-up"
        ));
    }
    Verdict {
        pass: reasons.is_empty(),
        reasons,
        warmup_samples: warmup,
        rss_after_warmup_mib: last_warmup.map_or(0.0, |s| s.rss_mib),
        rss_end_mib: rss_end,
        rss_peak_mib: samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
        heap_end_mib: median(end.iter().map(|s| s.heap_mib)),
        heap_late_slope_mib_per_min: slope(&late) * 60.0,
        rss_mean_mib: rss_mean,
        rss_slope_mib_per_min: rss_slope * 60.0,
        rss_growth_mib: rss_growth,
        rss_growth_allowed_mib: allowed,
        fds_after_warmup,
        fds_end,
        fds_slope_per_min: slope(&fds) * 60.0,
        errors,
        baseline,
        rss_unexplained_mib: unexplained,
        rss_unexplained_allowed_mib: unexplained_allowed,
    }
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: impl Fn(f64) -> f64, fds: impl Fn(f64) -> u64) -> Vec<Sample> {
        (1..=60)
            .map(|i| {
                let t = i as f64 * 10.0;
                Sample {
                    t_s: t,
                    rss_mib: rss(t),
                    heap_mib: 0.0,
                    fds: fds(t),
                    threads: 8,
                    ws_connected: 2000,
                    commands: 2000,
                    commands_per_s: 200.0,
                    command_p50_ms: 1.0,
                    command_p99_ms: 5.0,
                    command_max_ms: 9.0,
                    queries: 1000,
                    queries_per_s: 100.0,
                    query_p50_ms: 1.0,
                    query_p99_ms: 4.0,
                    ws_connects: 400,
                    ws_connect_p99_ms: 3.0,
                    ws_events: 100,
                    ws_frames: 200,
                    errors: 0,
                }
            })
            .collect()
    }

    #[test]
    fn slope_of_a_line_is_its_gradient() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 1.0)).collect();
        assert!((slope(&pts) - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 2.0)]), 0.0);
    }

    #[test]
    fn flat_after_a_warm_up_passes() {
        // Growth during the first 10% only, noise afterwards.
        let s = samples(
            |t| {
                if t <= 60.0 {
                    t
                } else {
                    60.0 + (t / 10.0) % 3.0
                }
            },
            |t| 2100 + (t as u64 / 10) % 5,
        );
        let v = judge(&s, 0, Baseline::default());
        assert!(v.pass, "{v:?}");
        assert!(v.rss_slope_mib_per_min.abs() < 0.5);
    }

    #[test]
    fn a_leak_an_fd_leak_and_an_error_each_fail() {
        let leak = judge(
            &samples(|t| 100.0 + t / 10.0, |_| 2100),
            0,
            Baseline::default(),
        );
        assert!(!leak.pass);
        assert!(leak.reasons[0].contains("RSS grows"), "{leak:?}");
        let fd_leak = judge(
            &samples(|_| 100.0, |t| 2100 + t as u64 / 2),
            0,
            Baseline::default(),
        );
        assert!(!fd_leak.pass);
        assert!(fd_leak.reasons[0].contains("descriptors"), "{fd_leak:?}");
        let errors = judge(&samples(|_| 100.0, |_| 2100), 1, Baseline::default());
        assert_eq!(errors.reasons, vec!["1 errors".to_string()]);
    }

    #[test]
    fn growth_that_a_fresh_server_on_the_same_data_holds_too_passes() {
        // 100 → 160 MiB over the run; 40 MiB of connections.
        let growing = samples(|t| 100.0 + t / 10.0, |_| 2100);
        let data = Baseline {
            rss_before_clients_mib: 20.0,
            rss_with_clients_mib: 60.0,
            rss_fresh_same_data_mib: 115.0,
            ..Baseline::default()
        };
        let v = judge(&growing, 0, data);
        assert!(v.pass, "{v:?}");
        // The end is the median of the last 6 samples (155..=160 MiB).
        assert!((v.rss_unexplained_mib - 2.5).abs() < 1e-9, "{v:?}");
        // The same growth with a fresh server needing far less: a leak.
        let leak = judge(
            &growing,
            0,
            Baseline {
                rss_fresh_same_data_mib: 40.0,
                ..data
            },
        );
        assert!(!leak.pass);
        assert!(leak.reasons[0].contains("fresh server"), "{leak:?}");
    }

    #[test]
    fn a_spike_at_the_last_sample_is_a_peak_not_the_end() {
        let mut s = samples(|_| 100.0, |_| 2100);
        if let Some(last) = s.last_mut() {
            last.rss_mib = 150.0;
        }
        let data = Baseline {
            rss_before_clients_mib: 20.0,
            rss_with_clients_mib: 40.0,
            rss_fresh_same_data_mib: 60.0,
            ..Baseline::default()
        };
        let v = judge(&s, 0, data);
        assert_eq!(v.rss_end_mib, 100.0);
        assert_eq!(v.rss_peak_mib, 150.0);
        assert!((v.rss_unexplained_mib - 20.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn the_late_heap_slope_ignores_the_first_half() {
        // Caches fill during the first half, then the heap is flat.
        let mut s = samples(|_| 100.0, |_| 2100);
        for x in &mut s {
            x.heap_mib = if x.t_s < 300.0 { x.t_s / 5.0 } else { 60.0 };
        }
        let v = judge(&s, 0, Baseline::default());
        assert!(v.heap_late_slope_mib_per_min.abs() < 1e-9, "{v:?}");
        assert_eq!(v.heap_end_mib, 60.0);
    }

    #[test]
    fn too_few_samples_fail() {
        let s = samples(|_| 100.0, |_| 2100);
        assert!(!judge(&s[..2], 0, Baseline::default()).pass);
    }
}
