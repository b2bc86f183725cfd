//! The events Purser sends the platform (issue 18, `docs/platform.md`): what each is called, and which one each kind
//! of ledger row is.

/// What happened, as the platform subscribes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    PurchaseSucceeded,
    PurchaseFailed,
    RefundRequested,
    RefundApproved,
    RefundDenied,
    RefundRefunded,
    RefundFailed,
    DisputeOpened,
    DisputeDebited,
    DisputeClosed,
    CreditsSpent,
    CreditsReversed,
    CreditsAdjusted,
    AccountFlagged,
    PaymentsPaused,
    PaymentsResumed,
}

impl EventType {
    pub const ALL: [Self; 16] = [
        Self::PurchaseSucceeded,
        Self::PurchaseFailed,
        Self::RefundRequested,
        Self::RefundApproved,
        Self::RefundDenied,
        Self::RefundRefunded,
        Self::RefundFailed,
        Self::DisputeOpened,
        Self::DisputeDebited,
        Self::DisputeClosed,
        Self::CreditsSpent,
        Self::CreditsReversed,
        Self::CreditsAdjusted,
        Self::AccountFlagged,
        Self::PaymentsPaused,
        Self::PaymentsResumed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PurchaseSucceeded => "purchase.succeeded",
            Self::PurchaseFailed => "purchase.failed",
            Self::RefundRequested => "refund.requested",
            Self::RefundApproved => "refund.approved",
            Self::RefundDenied => "refund.denied",
            Self::RefundRefunded => "refund.refunded",
            Self::RefundFailed => "refund.failed",
            Self::DisputeOpened => "dispute.opened",
            Self::DisputeDebited => "dispute.debited",
            Self::DisputeClosed => "dispute.closed",
            Self::CreditsSpent => "credits.spent",
            Self::CreditsReversed => "credits.reversed",
            Self::CreditsAdjusted => "credits.adjusted",
            Self::AccountFlagged => "account.flagged",
            Self::PaymentsPaused => "payments.paused",
            Self::PaymentsResumed => "payments.resumed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The event a ledger row is: every row is exactly one event, which carries it as `ledgerEntry`.
    pub fn of_ledger_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "purchase_grant" => Self::PurchaseSucceeded,
            "spend" => Self::CreditsSpent,
            "spend_reversal" => Self::CreditsReversed,
            "adjustment" => Self::CreditsAdjusted,
            "refund_debit" => Self::RefundApproved,
            "refund_credit_back" => Self::RefundFailed,
            "dispute_debit" => Self::DisputeDebited,
            _ => return None,
        })
    }
}
