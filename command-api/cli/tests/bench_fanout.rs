//! A short `ticketlog bench fanout` (issue 5): 200 WebSocket clients over
//! 100 ticket rooms of a `serve` child, 3 s of comments; every client gets
//! every event of its room, and the JSON has the keys.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ticketlog");
/// The whole run (setup, 3 s of comments, shutdown) on a busy 2-core machine.
const RUN_TIME_MAX: Duration = Duration::from_secs(30);
/// Keys the issue asks for in the JSON report.
const KEYS: [&str; 7] = [
    "clients",
    "connect_s",
    "delivery_p50_ms",
    "delivery_p99_ms",
    "delivery_max_ms",
    "events_delivered_per_s",
    "rss_bytes_per_connection",
];

#[test]
fn short_fanout_delivers_every_event_to_every_client() {
    let started = Instant::now();
    let run = Command::new(BIN)
        .args(["bench", "fanout", "--clients", "200", "--duration-s", "3"])
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ticketlog bench fanout");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "bench fanout exited {:?}:\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        elapsed < RUN_TIME_MAX,
        "the run took {elapsed:?}:\n{stdout}"
    );

    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    for key in KEYS {
        assert!(report[key].is_number(), "{key} missing: {stdout}");
    }
    assert_eq!(report["clients"], 200, "{stdout}");
    assert_eq!(report["clients_connected"], 200, "{stdout}");
    assert_eq!(report["missing_deliveries"], 0, "{stdout}");
    assert_eq!(report["out_of_order_deliveries"], 0, "{stdout}");
    assert_eq!(report["errors"], 0, "{stdout}");
    let acked = report["commands_acked"].as_u64().expect("commands_acked");
    assert!(acked > 0, "{stdout}");
    // Two clients per room: each acknowledged comment reaches both.
    assert_eq!(
        report["events_expected"].as_u64(),
        Some(2 * acked),
        "{stdout}"
    );
    assert_eq!(
        report["events_delivered"].as_u64(),
        Some(2 * acked),
        "{stdout}"
    );
    assert!(
        report["events_delivered_per_s"].as_f64() > Some(0.0),
        "{stdout}"
    );
    assert!(report["rss_idle_bytes"].as_u64() > Some(0), "{stdout}");
}
