//! Purser: a payment orchestrator for credit packages. See README.md for the map of the modules.
pub mod actors;
pub mod api;
pub mod app;
pub mod auth;
pub mod documents;
pub mod domain;
pub mod guards;
pub mod harness;
pub mod html;
#[cfg(test)]
mod layers;
pub mod notify;
pub mod prometheus;
pub mod providers;
pub mod settings;
pub mod startup;
pub mod store;

/// `docs/platform.md`, whose Rust snippet runs as a doctest (its other snippets run in `tests/api/platform_events.rs`).
#[cfg(doctest)]
#[doc = include_str!("../docs/platform.md")]
pub struct PlatformGuide;
