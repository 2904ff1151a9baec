//! Issue 15's findings, reproduced black-box against a real `ticketlog
//! serve` child (HTTP, WebSocket and raw sockets): one test target, one
//! module per topic under `tests/hardening/`.

mod support;

mod hardening {
    mod assignees;
    mod idempotency;
    mod tenants;
}
