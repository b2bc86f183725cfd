//! The pure core: money, the catalogue, identifiers parsed at the boundary, and the purchase state machine.
//! Nothing in here does IO or reads a clock.
pub mod api_key;
pub mod circuit;
pub mod dispute;
pub mod event;
pub mod failure;
pub mod fraud;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod package;
pub mod purchase;
pub mod refund;
pub mod saved_method;
pub mod signature;
