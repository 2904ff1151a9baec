//! The `ticketlog` binary: `serve`, `user add`, `verify`, `bench`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
