//! Documents Purser issues: the invoice as a PDF (its numbering and content live in `domain::invoice`).
pub mod invoice_pdf;
