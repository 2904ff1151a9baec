//! The soak's outputs: `soak.json`, `soak.svg` and a summary on stdout.

use std::sync::atomic::Ordering;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::metrics::{Metrics, Percentiles};
use super::sample::Sample;
use super::server::ServerChild;
use super::verdict::{self, Verdict};
use super::{chart, BenchSoakArgs};

/// Totals over the measured run.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// Command latencies.
    pub commands: Percentiles,
    /// Query latencies.
    pub queries: Percentiles,
    /// WebSocket connect + subscribe latencies.
    pub ws_connects: Percentiles,
    /// Reconnections asked by the churn.
    pub ws_churned: u64,
    /// `event` frames received.
    pub ws_events: u64,
    /// Frames received.
    pub ws_frames: u64,
    /// Fewest clients connected at a sample after the warm-up.
    pub ws_connected_min: i64,
}

/// What the server logged.
#[derive(Debug, Serialize)]
pub struct ServerSummary {
    /// Warning lines.
    pub log_warnings: u64,
    /// Error lines.
    pub log_errors: u64,
    /// The first of them.
    pub log_first: Vec<String>,
}

/// Everything `soak.json` holds.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The flags.
    pub args: BenchSoakArgs,
    /// Reconnections per second used.
    pub churn_per_s: usize,
    /// Cores of the machine (server and load share them).
    pub cores: usize,
    /// Setup time (users, tickets, connecting the clients), seconds.
    pub setup_s: f64,
    /// The thresholds of the verdict.
    pub thresholds: serde_json::Value,
    /// Totals.
    pub totals: Totals,
    /// The server's log.
    pub server: ServerSummary,
    /// The first error messages of the load.
    pub first_errors: Vec<String>,
    /// The judgement.
    pub verdict: Verdict,
    /// Every sample.
    pub samples: Vec<Sample>,
}

impl Report {
    /// Gathers the run's figures and judges them.
    pub fn build(
        args: BenchSoakArgs,
        cores: usize,
        setup_s: f64,
        samples: Vec<Sample>,
        metrics: &Metrics,
        server: &ServerChild,
        baseline: verdict::Baseline,
    ) -> Self {
        let log_errors = server.log.errors.load(Ordering::Relaxed);
        let verdict = verdict::judge(&samples, metrics.errors() + log_errors, baseline);
        let t = metrics.totals();
        let totals = Totals {
            commands: t.commands,
            queries: t.queries,
            ws_connects: t.connects,
            ws_churned: metrics.ws_churned.load(Ordering::Relaxed),
            ws_events: samples.iter().map(|s| s.ws_events).sum(),
            ws_frames: samples.iter().map(|s| s.ws_frames).sum(),
            ws_connected_min: samples
                .iter()
                .skip(verdict.warmup_samples)
                .map(|s| s.ws_connected)
                .min()
                .unwrap_or(0),
        };
        Report {
            churn_per_s: args.churn(),
            args,
            cores,
            setup_s,
            thresholds: serde_json::json!({
                "warmup_fraction": verdict::WARMUP_FRACTION,
                "warmup_samples_min": verdict::WARMUP_SAMPLES_MIN,
                "rss_growth_fraction_max": verdict::RSS_GROWTH_FRACTION_MAX,
                "rss_growth_mib_max": verdict::RSS_GROWTH_MIB_MAX,
                "fds_slack_max": verdict::FDS_SLACK_MAX,
                "end_fraction": verdict::END_FRACTION,
                "unexplained_mib_max": verdict::UNEXPLAINED_MIB_MAX,
                "unexplained_fraction_max": verdict::UNEXPLAINED_FRACTION_MAX,
            }),
            totals,
            server: ServerSummary {
                log_warnings: server.log.warnings.load(Ordering::Relaxed),
                log_errors,
                log_first: server
                    .log
                    .first
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
            first_errors: metrics.first_errors(),
            verdict,
            samples,
        }
    }

    fn word(&self) -> &'static str {
        if self.verdict.pass {
            "PASS"
        } else {
            "FAIL"
        }
    }

    /// Writes `soak.json` and `soak.svg` into `--out` and prints the summary.
    pub fn write_and_print(&self) -> anyhow::Result<()> {
        let json_path = self.args.out.join("soak.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", json_path.display()))?;
        let (svg, subtitle) = svg(
            &self.args,
            self.churn_per_s,
            self.cores,
            &self.verdict,
            &self.samples,
        );
        let svg_path = self.args.out.join("soak.svg");
        std::fs::write(&svg_path, svg)
            .with_context(|| format!("writing {}", svg_path.display()))?;
        let v = &self.verdict;
        let t = &self.totals;
        println!(
            "\nbench soak: {}\n  {subtitle}\n  \
             server RSS      {:.1} MiB after warm-up, {:.1} MiB at the end (median), peak {:.1} MiB, \
             slope {:+.3} MiB/min ({:+.1} MiB over the run after warm-up; allowed {:.1})\n  \
             live heap       {:.1} MiB at the end (median; a fresh serve on the same data {:.1}), \
             slope over the second half {:+.3} MiB/min\n  \
             baseline        a fresh serve on the same data {:.1} MiB, connections {:.1} MiB: \
             {:+.1} MiB unexplained (allowed {:.1})\n  \
             open fds        {} after warm-up, {:.0} at the end, slope {:+.2} fds/min\n  \
             commands        {} done, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms\n  \
             queries         {} done, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms\n  \
             WebSocket       {} connects (churn {}), connect p99 {:.2} ms, at least {} connected, {} events, {} frames\n  \
             errors          {} (server log: {} errors, {} warnings)\n  \
             wrote {} and {}",
            self.word(),
            v.rss_after_warmup_mib,
            v.rss_end_mib,
            v.rss_peak_mib,
            v.rss_slope_mib_per_min,
            v.rss_growth_mib,
            v.rss_growth_allowed_mib,
            v.heap_end_mib,
            v.baseline.heap_fresh_same_data_mib,
            v.heap_late_slope_mib_per_min,
            v.baseline.rss_fresh_same_data_mib,
            v.baseline.connections_mib(),
            v.rss_unexplained_mib,
            v.rss_unexplained_allowed_mib,
            v.fds_after_warmup,
            v.fds_end,
            v.fds_slope_per_min,
            t.commands.count,
            t.commands.p50_ms,
            t.commands.p99_ms,
            t.commands.max_ms,
            t.queries.count,
            t.queries.p50_ms,
            t.queries.p99_ms,
            t.queries.max_ms,
            t.ws_connects.count,
            t.ws_churned,
            t.ws_connects.p99_ms,
            t.ws_connected_min,
            t.ws_events,
            t.ws_frames,
            v.errors,
            self.server.log_errors,
            self.server.log_warnings,
            json_path.display(),
            svg_path.display()
        );
        for reason in &v.reasons {
            println!("  FAIL: {reason}");
        }
        for e in &self.first_errors {
            println!("  error: {e}");
        }
        Ok(())
    }
}

/// The chart and its subtitle.
fn svg(
    args: &BenchSoakArgs,
    churn_per_s: usize,
    cores: usize,
    verdict: &Verdict,
    samples: &[Sample],
) -> (String, String) {
    let title = format!(
        "ticketlog bench soak: {} ({} s, {} cores)",
        if verdict.pass { "PASS" } else { "FAIL" },
        args.duration_s,
        cores
    );
    let subtitle = format!(
        "{} commands/s by {} writers, {} queries/s, {} WebSocket clients, {} reconnecting/s; sample every {} s; {} errors",
        args.commands_per_s,
        args.writers,
        args.queries_per_s,
        args.ws_clients,
        churn_per_s,
        args.sample_s,
        verdict.errors
    );
    let svg = chart::render(&title, &subtitle, samples, args.duration_s as f64);
    (svg, subtitle)
}

/// The parts of `soak.json` the chart is drawn from.
#[derive(Deserialize)]
struct Saved {
    args: BenchSoakArgs,
    churn_per_s: usize,
    cores: usize,
    verdict: Verdict,
    samples: Vec<Sample>,
}

/// Redraws `<out>/soak.svg` from a saved `soak.json`.
pub fn replot(json: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let saved: Saved = serde_json::from_str(&text).context("parsing the soak report")?;
    let (svg, _) = svg(
        &saved.args,
        saved.churn_per_s,
        saved.cores,
        &saved.verdict,
        &saved.samples,
    );
    std::fs::create_dir_all(out)?;
    let path = out.join("soak.svg");
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
