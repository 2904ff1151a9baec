//! Runs the projections benchmark and prints its JSON report.
//! `cargo run --release -p ticketlog-bench --example bench_projections [DIR] [EVENTS] [STATS_QUERIES]`

use ticketlog_bench::projections::{run, BenchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = BenchOptions::default();
    if let Some(dir) = args.first() {
        opts.dir = dir.into();
    }
    if let Some(events) = args.get(1) {
        opts.events = events.parse()?;
    }
    if let Some(queries) = args.get(2) {
        opts.stats_queries = queries.parse()?;
    }
    let progress: projections::Progress =
        std::sync::Arc::new(|done, total| eprint!("\rgenerating {done}/{total}"));
    let report = run(&opts, Some(progress)).await?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
