//! The `ticketlog` binary: `serve`, `user add`, `verify`, `bench`.

mod cli;

/// jemalloc, not glibc's malloc: under a server's many threads glibc kept
/// every arena's high-water mark (188 MiB after 24 logins, each argon2
/// verification takes 19 MiB), jemalloc gives freed pages back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
