//! Runs the append benchmark and prints the JSON report.
//! `cargo run --release -p ticketlog-bench --example bench_append [w1 w16 w64 baseline passes]`

use ticketlog_bench::append::{run_append_bench, AppendBenchOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let mut opts = AppendBenchOptions::default();
    let fields = [
        &mut opts.w1_events,
        &mut opts.w16_events,
        &mut opts.w64_events,
        &mut opts.baseline_events,
    ];
    for (field, value) in fields.into_iter().zip(&args) {
        *field = *value;
    }
    if let Some(passes) = args.get(4) {
        opts.replay_passes = u32::try_from(*passes)?;
    }
    let report = run_append_bench(opts)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
