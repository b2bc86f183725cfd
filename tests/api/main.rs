//! Integration tests: the real service on 127.0.0.1 (port 0), spoken to over HTTP, on SQLite and on PostgreSQL.
mod admin;
mod bad_input;
mod billing;
mod browser;
mod guards;
mod helpers;
mod idempotency;
mod paypal;
mod paypal_fake;
mod purchases;
mod receipts;
mod recovery;
mod refunds;
mod saved_methods;
mod stripe;
mod stripe_proxy;
mod webhooks;
