//! Live feed over WebSocket.
