//! `cargo run --release -p ticketlog-bench --example dispatch_bench [technicians] [choices]`:
//! the dispatch choice benchmark, printed as JSON (what `ticketlog bench
//! dispatch --json` prints).

use ticketlog_bench::dispatch::{run_dispatch_bench, DispatchBenchOptions};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let defaults = DispatchBenchOptions::default();
    let opts = DispatchBenchOptions {
        technicians: args.next().flatten().unwrap_or(defaults.technicians),
        choices: args.next().flatten().unwrap_or(defaults.choices),
        ..defaults
    };
    let report = run_dispatch_bench(opts);
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot encode the report: {e}"),
    }
}
