//! Commands, the pure write model and the HTTP API.
pub mod auth;
pub mod config;
pub mod demo;
pub mod domain;
pub mod fd_limit;
pub mod heap;
pub mod http;
pub mod logging;
pub mod procfs;
pub mod progress;
pub mod request;
pub mod service;
pub mod ui;
