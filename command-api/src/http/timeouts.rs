//! How long a client may take over each part of a connection (issue 15:
//! slow clients held connections open for minutes). The server enforces
//! them in `http/server.rs` (header read, idle keep-alive, WebSocket
//! handshake) and `http/body_deadline.rs` (body read).

use std::time::Duration;

/// Time from a request's first byte (or the accept, for a connection's
/// first request) to its last header line, seconds.
pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Time from a request's headers to the last byte of its body, seconds.
pub const BODY_READ_TIMEOUT_SECS: u64 = 30;
/// Time a keep-alive connection may wait, after an answer, for the first
/// byte of its next request, seconds.
pub const IDLE_TIMEOUT_SECS: u64 = 60;
/// Time from a WebSocket upgrade request's first byte (or the accept) to
/// the socket's hand-over to the live feed, seconds.
pub const WS_HANDSHAKE_TIMEOUT_SECS: u64 = 10;

/// The connection timeouts of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// See [`HEADER_READ_TIMEOUT_SECS`].
    pub header_read: Duration,
    /// See [`BODY_READ_TIMEOUT_SECS`].
    pub body_read: Duration,
    /// See [`IDLE_TIMEOUT_SECS`].
    pub idle: Duration,
    /// See [`WS_HANDSHAKE_TIMEOUT_SECS`].
    pub ws_handshake: Duration,
}

impl Timeouts {
    /// The shortest of the client-facing timeouts: how often an idle
    /// connection's clock looks at its phase at most.
    pub fn shortest(&self) -> Duration {
        self.header_read.min(self.idle).min(self.ws_handshake)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(HEADER_READ_TIMEOUT_SECS),
            body_read: Duration::from_secs(BODY_READ_TIMEOUT_SECS),
            idle: Duration::from_secs(IDLE_TIMEOUT_SECS),
            ws_handshake: Duration::from_secs(WS_HANDSHAKE_TIMEOUT_SECS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_issues_values() {
        let t = Timeouts::default();
        assert_eq!(t.header_read, Duration::from_secs(10));
        assert_eq!(t.body_read, Duration::from_secs(30));
        assert_eq!(t.idle, Duration::from_secs(60));
        assert_eq!(t.ws_handshake, Duration::from_secs(10));
    }
}
