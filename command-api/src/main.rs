//! The `ticketlog` binary.

fn main() {}
