//! A short `ticketlog bench soak` (issue 8): 20 s of mixed load with 200
//! WebSocket clients on a `serve` child passes its own verdict, and leaves
//! a readable `soak.json` and a chart with a line per series.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ticketlog");
/// The whole run (setup, 20 s of load, shutdown) on a busy 2-core machine.
const RUN_TIME_MAX: Duration = Duration::from_secs(40);
/// Series in the chart: RSS and live heap, fds, command p99 and p50,
/// WebSocket clients.
const SERIES: usize = 6;

#[test]
fn short_soak_passes_and_writes_json_and_chart() {
    let out = tempfile::tempdir().expect("out dir");
    let started = Instant::now();
    let run = Command::new(BIN)
        .args(["bench", "soak", "--duration-s", "20", "--sample-s", "2"])
        .args(["--ws-clients", "200", "--out"])
        .arg(out.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run ticketlog bench soak");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "bench soak exited {:?}:\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        elapsed < RUN_TIME_MAX,
        "the short soak took {elapsed:?}:\n{stdout}"
    );

    let report: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("soak.json")).expect("soak.json written"),
    )
    .expect("soak.json is JSON");
    let samples = report["samples"].as_array().expect("samples");
    assert!(samples.len() >= 8, "{} samples", samples.len());
    assert_eq!(report["verdict"]["pass"], true, "{stdout}");
    assert_eq!(report["verdict"]["errors"], 0, "{stdout}");
    assert!(samples.iter().all(|s| s["errors"] == 0), "{stdout}");
    assert!(
        samples.iter().all(|s| s["rss_mib"].as_f64() > Some(0.0)
            && s["heap_mib"].as_f64() > Some(0.0)
            && s["fds"].as_u64() > Some(0)
            && s["commands"].as_u64() > Some(0)),
        "every sample saw the server, its heap and commands: {stdout}"
    );
    assert!(
        samples.iter().any(|s| s["ws_connected"].as_i64() > Some(0)),
        "no WebSocket client connected: {stdout}"
    );
    assert!(
        report["totals"]["ws_events"].as_u64() > Some(0),
        "no event reached a WebSocket client: {stdout}"
    );
    assert!(
        report["totals"]["ws_churned"].as_u64() > Some(0),
        "{stdout}"
    );

    let svg = std::fs::read_to_string(out.path().join("soak.svg")).expect("soak.svg written");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), SERIES);
    assert_eq!(
        svg.matches('<').count(),
        svg.matches('>').count(),
        "balanced tags"
    );
    for title in [
        "Server memory (MiB)",
        "open file descriptors",
        "Command latency",
    ] {
        assert!(svg.contains(title), "chart without {title:?}");
    }
}
