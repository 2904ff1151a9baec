//! Commands, the pure write model and the HTTP API.
pub mod auth;
