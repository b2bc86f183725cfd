//! SeaORM entities: the tables Purser persists. Domain types live in the `purser` crate; these are rows only.
pub mod admin_actions;
pub mod alerts;
pub mod billing_profiles;
pub mod credit_ledger;
pub mod customers;
pub mod disputes;
pub mod idempotency_keys;
pub mod invoices;
pub mod outbox;
pub mod payment_methods;
pub mod platform_controls;
pub mod purchase_events;
pub mod purchases;
pub mod refund_requests;
pub mod sandbox_payment_intents;
pub mod sandbox_paypal_orders;
pub mod webhook_events;
