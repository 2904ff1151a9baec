//! Black-box hardening tests (issue 15): each reproduces a finding of the
//! outside tester against a real `ticketlog serve` child process.

mod support;

mod hardening {
    mod login_throttle;
    mod sessions;
}
