//! A dispute (a chargeback at the payer's bank through Stripe, or a claim at PayPal) as one model for both providers:
//! where it stands, what a provider's report moves, and how many credits a lost one takes back. Pure: the store
//! writes what `Dispute::on` decides, in one transaction.
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Where a dispute stands, whichever provider reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The merchant's turn: evidence or acceptance is due (Stripe `needs_response`, PayPal
    /// `WAITING_FOR_SELLER_RESPONSE` or `OPEN`).
    NeedsResponse,
    /// Decided by the bank or PayPal, or waiting on the payer.
    UnderReview,
    /// Closed with the money kept (won, an inquiry closed, the payer withdrew, PayPal covered it).
    Won,
    /// Closed with the money back with the payer (lost, or accepted by the merchant).
    Lost,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeedsResponse => "needs_response",
            Self::UnderReview => "under_review",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::NeedsResponse, Self::UnderReview, Self::Won, Self::Lost].into_iter().find(|s| s.as_str() == stored)
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Self::Won | Self::Lost)
    }

    /// Stripe's dispute statuses, inquiries (`warning_*`) included.
    pub fn from_stripe(status: &str) -> Self {
        match status {
            "warning_needs_response" | "needs_response" => Self::NeedsResponse,
            "won" | "warning_closed" | "prevented" => Self::Won,
            "lost" => Self::Lost,
            _ => Self::UnderReview,
        }
    }

    /// PayPal's dispute status, and the outcome it reports once `RESOLVED`.
    pub fn from_paypal(status: &str, outcome: Option<&str>) -> Self {
        match (status, outcome) {
            ("RESOLVED", Some("RESOLVED_BUYER_FAVOUR" | "ACCEPTED")) => Self::Lost,
            ("RESOLVED", _) => Self::Won,
            ("OPEN" | "WAITING_FOR_SELLER_RESPONSE", _) => Self::NeedsResponse,
            _ => Self::UnderReview,
        }
    }
}

/// A provider's word on a dispute, read from its webhook or from the answer to a call.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub id: String,
    /// `stripe` or `paypal`: whose dispute it is, whichever gateway (the sandbox) plays it.
    pub provider: &'static str,
    /// The payment it disputes as the provider names it: Stripe's PaymentIntent, PayPal's capture.
    pub payment: Option<String>,
    pub reason: String,
    pub standing: Standing,
    /// The provider's own status, shown beside the standing.
    pub provider_status: String,
    /// Minor units of `currency`.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub details: Value,
}

/// What a report changes on a dispute already known (`None`: a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// New, or moved to another standing: recorded in the purchase's history and alerted.
    To(Standing),
    /// The same standing again: only the provider's details are refreshed.
    Same,
    /// A report about a closed dispute that says otherwise (late, or out of order): a closed dispute stays closed, so
    /// a lost one is debited once and a won one never.
    Stale,
}

pub fn on(before: Option<Standing>, report: Standing) -> Move {
    match before {
        Some(before) if before.is_closed() && before != report => Move::Stale,
        Some(before) if before == report => Move::Same,
        _ => Move::To(report),
    }
}

/// The purchase a lost dispute takes credits back from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paid {
    pub credits: i64,
    /// Minor units.
    pub price: i64,
    /// Credits already given back by refunds of this purchase.
    pub returned: i64,
}

/// The credits a lost dispute of `disputed` minor units takes back: the disputed share of the purchase's credits,
/// rounded up (the money is gone in full), never more than the credits not already given back. `None`: the whole
/// payment. The balance may go below zero: the credits may have been spent.
pub fn credits_lost(paid: Paid, disputed: Option<i64>) -> i64 {
    let left = (paid.credits - paid.returned).max(0);
    let share = match disputed {
        Some(disputed) if paid.price > 0 && disputed < paid.price => {
            let numerator = i128::from(paid.credits) * i128::from(disputed.max(0));
            i64::try_from((numerator + i128::from(paid.price) - 1) / i128::from(paid.price)).unwrap_or(paid.credits)
        }
        _ => paid.credits,
    };
    share.min(left)
}

/// The most evidence text a provider takes in one field (Stripe's `uncategorized_text`: 20,000 characters).
pub const MAX_EVIDENCE_TEXT: usize = 20_000;
/// The largest evidence file sent on: under Stripe's 5 MB for a dispute's evidence, under PayPal's 10 MB per file.
pub const MAX_EVIDENCE_FILE: usize = 4 * 1024 * 1024;

/// An admin's answer to a dispute, for the provider.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Contest it: the text (what was bought, when the credits were used) and a document, submitted for decision.
    Evidence { text: String, file: Option<EvidenceFile> },
    /// Concede it: the payer keeps the money back (Stripe's close, PayPal's accept-claim).
    Accept { note: String },
}

impl Answer {
    /// The audit trail's name for it.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Evidence { .. } => "dispute_evidence",
            Self::Accept { .. } => "dispute_accept",
        }
    }
}

/// A document sent as evidence: PDF, JPEG or PNG, which both providers take, and not empty or too large.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl EvidenceFile {
    pub fn parse(name: &str, bytes: Vec<u8>) -> Result<Self, String> {
        let allowed = name.rsplit_once('.').is_some_and(|(stem, extension)| {
            !stem.is_empty() && ["pdf", "jpg", "jpeg", "png"].contains(&extension.to_ascii_lowercase().as_str())
        });
        if !allowed || name.chars().count() > 200 || name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err("The evidence file must be a .pdf, .jpg, .jpeg or .png with a plain name.".into());
        }
        if bytes.is_empty() || bytes.len() > MAX_EVIDENCE_FILE {
            return Err(format!("The evidence file must hold between 1 byte and {MAX_EVIDENCE_FILE} bytes."));
        }
        Ok(Self { name: name.to_owned(), bytes })
    }

    /// The MIME type its extension names.
    pub fn content_type(&self) -> &'static str {
        match self.name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
            Some("pdf") => "application/pdf",
            Some("png") => "image/png",
            _ => "image/jpeg",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_providers_map_to_one_standing() {
        assert_eq!(Standing::from_stripe("warning_needs_response"), Standing::NeedsResponse);
        assert_eq!(Standing::from_stripe("under_review"), Standing::UnderReview);
        assert_eq!(Standing::from_stripe("warning_closed"), Standing::Won);
        assert_eq!(Standing::from_stripe("lost"), Standing::Lost);
        assert_eq!(Standing::from_paypal("WAITING_FOR_SELLER_RESPONSE", None), Standing::NeedsResponse);
        assert_eq!(Standing::from_paypal("UNDER_REVIEW", None), Standing::UnderReview);
        assert_eq!(Standing::from_paypal("RESOLVED", Some("RESOLVED_BUYER_FAVOUR")), Standing::Lost);
        assert_eq!(Standing::from_paypal("RESOLVED", Some("ACCEPTED")), Standing::Lost);
        assert_eq!(Standing::from_paypal("RESOLVED", Some("RESOLVED_SELLER_FAVOUR")), Standing::Won);
        assert_eq!(Standing::from_paypal("RESOLVED", Some("CANCELED_BY_BUYER")), Standing::Won);
    }

    #[test]
    fn a_closed_dispute_stays_closed() {
        assert_eq!(on(None, Standing::NeedsResponse), Move::To(Standing::NeedsResponse));
        assert_eq!(on(Some(Standing::NeedsResponse), Standing::Lost), Move::To(Standing::Lost));
        assert_eq!(on(Some(Standing::Lost), Standing::Lost), Move::Same);
        assert_eq!(on(Some(Standing::Lost), Standing::UnderReview), Move::Stale);
        assert_eq!(on(Some(Standing::Won), Standing::Lost), Move::Stale);
        // PayPal asks the merchant again after the payer answered.
        assert_eq!(on(Some(Standing::UnderReview), Standing::NeedsResponse), Move::To(Standing::NeedsResponse));
    }

    #[test]
    fn a_lost_dispute_takes_back_the_disputed_share() {
        let paid = Paid { credits: 200, price: 16000, returned: 0 };
        assert_eq!(credits_lost(paid, None), 200);
        assert_eq!(credits_lost(paid, Some(16000)), 200);
        assert_eq!(credits_lost(paid, Some(8000)), 100);
        assert_eq!(credits_lost(paid, Some(1)), 1, "a share is rounded up");
        assert_eq!(
            credits_lost(Paid { returned: 150, ..paid }, Some(16000)),
            50,
            "refunded credits are not taken twice"
        );
    }

    #[test]
    fn evidence_files_are_documents_of_a_sane_size() {
        assert!(EvidenceFile::parse("receipt.pdf", b"%PDF-1.4".to_vec()).is_ok());
        assert_eq!(EvidenceFile::parse("log.PNG", vec![1]).unwrap().content_type(), "image/png");
        assert!(EvidenceFile::parse("script.exe", vec![1]).is_err());
        assert!(EvidenceFile::parse(".pdf", vec![1]).is_err());
        assert!(EvidenceFile::parse("../etc.pdf", vec![1]).is_err());
        assert!(EvidenceFile::parse("empty.pdf", vec![]).is_err());
        assert!(EvidenceFile::parse("big.pdf", vec![0; MAX_EVIDENCE_FILE + 1]).is_err());
    }

    proptest! {
        #[test]
        fn never_more_than_was_granted(credits in 0i64..1_000_000, price in 0i64..100_000_000,
            returned in 0i64..1_000_000, disputed in proptest::option::of(-10i64..200_000_000)) {
            let lost = credits_lost(Paid { credits, price, returned }, disputed);
            prop_assert!(lost >= 0);
            prop_assert!(lost <= (credits - returned).max(0));
        }
    }
}
