//! Messages that leave Purser: the mailer actor draining the outbox, and what the emails say.
pub mod events;
pub mod mailer;
pub mod receipt;
