//! The `ticketlog` binary: `serve`, `user add`, `verify`, `bench`.

mod cli;

/// jemalloc, not glibc's malloc: under a server's many threads glibc kept
/// every arena's high-water mark (each argon2 verification takes 19 MiB; a
/// demo server grew from 129 to 207 MiB over 24 logins), jemalloc gives
/// freed pages back (15 MiB after the same logins).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
