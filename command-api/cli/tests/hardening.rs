//! Black-box hardening tests (issue 15): a real `ticketlog serve` child,
//! driven over HTTP, WebSocket and raw sockets as an outside tester would.

mod support;

mod hardening {
    mod assignees;
    mod idempotency;
    mod login_throttle;
    mod metrics;
    mod sessions;
    mod small_findings;
    mod tenants;
    mod timeouts;
    mod ws_flood;
}
