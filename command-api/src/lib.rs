//! Commands, the pure write model and the HTTP API.
pub mod auth;
pub mod config;
pub mod demo;
pub mod dispatch_bench;
pub mod domain;
pub mod heap;
pub mod http;
pub mod procfs;
pub mod request;
pub mod service;
pub mod ui;
