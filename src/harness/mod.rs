//! Tools that run Purser as a subprocess and drive it through its public HTTP API, the way a platform would:
//! `purser bench` measures it, `purser chaos` breaks it and checks the money. Neither is part of the test suite.
pub mod bench;
pub mod chaos;
pub mod driver;
pub mod receiver;
pub mod service;
pub mod smtp;
pub mod stats;
pub mod workers;
pub mod workspace;
