//! The application layer, between `api` and the actors and store: it decides which actor step takes an input, and
//! every write that touches money, a customer or the audit trail happens inside such a step's transaction. `api`
//! parses, calls here, renders.
pub mod api_keys;
pub mod credits;
pub mod disputes;
pub mod inbox;
pub mod inbox_sweep;
pub mod oversight;
pub mod payment_data;
pub mod receipts;
pub mod refunds;
