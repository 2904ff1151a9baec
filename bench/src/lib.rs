//! Ticketlog's benchmarks, apart from the product: `ticketlog bench …`
//! ([`cli`]) and the `ticketlog serve` child-process harness
//! ([`serve_child`]) that the benchmarks and the binary's tests share.
//! Everything here uses the product crates as libraries, through their
//! public API.

pub mod append;
pub mod cli;
pub mod dispatch;
pub mod fanout;
pub mod http;
pub mod projections;
pub mod serve_child;
pub mod soak;
pub mod ws_client;
