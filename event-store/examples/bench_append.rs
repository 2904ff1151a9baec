//! Runs the append benchmark with its default sizes and prints the JSON report.
//! `cargo run --release -p event-store --example bench_append`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = event_store::bench::run_append_bench(event_store::bench::AppendBenchOptions::default())?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
