//! Guards that can stop payments: pauses (platform-wide or per rail) and rate limits.
pub mod circuit;
pub mod fraud;
pub mod pause;
pub mod rate_limit;
