//! Messages that leave Purser: the mailer actor draining the outbox, and what the emails say.
pub mod invoice_pdf;
pub mod mailer;
pub mod receipt;
