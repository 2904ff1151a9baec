//! Settings of the live feed; defaults follow the contract.

use std::time::Duration;

use crate::limits::{OUTBOUND_QUEUE_FRAMES, PING_INTERVAL_SECS};

/// Which `Origin` headers may open a WebSocket (protects browsers' cookies
/// and tokens from other sites; clients without an `Origin` are not browsers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// The Origin's host (and port) must equal the request's `Host`.
    #[default]
    SameOrigin,
    /// The Origin must equal one of these exactly (e.g. `https://app.example.com`),
    /// or be same-origin.
    AllowList(Vec<String>),
    /// Any Origin (development only).
    Any,
}

/// Configuration of [`crate::FeedState`].
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Which browser origins may connect.
    pub origins: OriginPolicy,
    /// Interval between server pings (the contract's 30 s; shorter in tests).
    pub ping_interval: Duration,
    /// Frames queued per connection before it is closed with 4008.
    pub outbound_queue_frames: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            origins: OriginPolicy::SameOrigin,
            ping_interval: Duration::from_secs(PING_INTERVAL_SECS),
            outbound_queue_frames: OUTBOUND_QUEUE_FRAMES,
        }
    }
}
