//! The refund state machine, sans-IO like the purchase's. A client asks; an admin approves or denies (the client may
//! appeal a denial once); an approved refund debits the unused credits and is paid back through the provider, or
//! needs another method when the original cannot take money back (AC9.5.1–AC9.5.7).
use super::ids::ClientId;
use super::money::{Credits, Money};
use super::purchase::{Purchase, Status};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    PendingReview,
    Appealed,
    /// Approved; the provider refund is being made.
    Processing,
    Refunded,
    Denied,
    /// The original method cannot take the money back (expired card, closed account): the client is asked for
    /// another.
    NeedsAlternativeMethod,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::Appealed => "appealed",
            Self::Processing => "processing",
            Self::Refunded => "refunded",
            Self::Denied => "denied",
            Self::NeedsAlternativeMethod => "needs_alternative_method",
        }
    }

    /// Waiting for an admin or for the provider: a purchase has at most one open refund.
    pub fn is_open(self) -> bool {
        matches!(self, Self::PendingReview | Self::Appealed | Self::Processing)
    }
}

/// Operator-set refund policy, shown to clients before they ask (AC9.5.1).
#[derive(Clone, Copy, Debug)]
pub struct RefundPolicy {
    pub window: TimeDelta,
    pub appeals: u32,
    pub retry_base: TimeDelta,
}

/// What a purchase may still have refunded: its unused credits, and the money they are worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refundable {
    pub credits: Credits,
    pub amount: Money,
}

/// Credits still unused out of a purchase, and their proportional price (AC9.5.5). Spent credits are not refunded:
/// the client's balance caps what can come back. Rounding is down to the minor unit, so a refund never exceeds the
/// share paid, and the sum of a purchase's refunds never exceeds its price.
pub fn refundable(price: Money, bought: Credits, already_refunded: Credits, balance: i64) -> Option<Refundable> {
    let left = bought.0 - already_refunded.0;
    let credits = left.min(balance).max(0);
    if credits == 0 || bought.0 <= 0 {
        return None;
    }
    let minor = i64::try_from(i128::from(price.minor) * i128::from(credits) / i128::from(bought.0)).ok()?;
    let amount = Money::new(minor, price.currency).ok()?;
    Some(Refundable { credits: Credits(credits), amount })
}

/// What the ledger says when a refund is asked for or approved, read inside the transaction that acts on it, so two
/// concurrent decisions cannot both see credits that only one of them may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Books {
    /// The client's balance now: credits spent since the purchase are not refunded.
    pub balance: i64,
    /// What earlier refunds of the purchase took back.
    pub already_refunded: Credits,
}

/// The client's words on a refund request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAsk {
    pub reason: String,
    pub details: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestRejected {
    #[error("Only a paid purchase can be refunded.")]
    NotPaid,
    #[error("Refunds can be requested within 30 days of the purchase.")]
    WindowClosed,
    #[error("This purchase has already been refunded.")]
    AlreadyRefunded,
    #[error("There are no unused credits from this purchase to refund.")]
    NoUnusedCredits,
    #[error("A refund request for this purchase is already open.")]
    AlreadyOpen,
}

impl RequestRejected {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotPaid => "not_refundable",
            Self::WindowClosed => "refund_window_closed",
            Self::AlreadyRefunded => "already_refunded",
            Self::NoUnusedCredits => "no_unused_credits",
            Self::AlreadyOpen => "refund_already_requested",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: Uuid,
    pub purchase_id: Uuid,
    pub client: ClientId,
    pub reason: String,
    pub details: String,
    /// What the purchase cost and granted: the base of the proportional amount.
    pub price: Money,
    pub bought: Credits,
    pub credits: Credits,
    pub amount: Money,
    pub status: RefundStatus,
    pub decided_by: Option<String>,
    pub denial_reason: Option<String>,
    pub appeal: Option<String>,
    pub appeals_used: u32,
    pub provider_refund: Option<String>,
    pub failure: Option<String>,
    pub attempt: u32,
    pub retry_at: Option<DateTime<Utc>>,
    /// A confirmed fraud's payment given back in full: no credits to debit (none were granted), no emails (the
    /// purchase sends its own notice), and the purchase is told once the money is back.
    #[serde(default)]
    pub reversal: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RefundInput {
    /// An admin approves: re-priced on the books read in the approving transaction.
    Approve {
        admin: String,
    },
    Deny {
        admin: String,
        reason: String,
    },
    Appeal {
        message: String,
    },
    /// The provider paid the money back.
    Refunded {
        provider_refund: String,
    },
    /// The provider accepted the refund but has not paid it yet; its webhook will say how it ended.
    Pending {
        provider_refund: String,
    },
    /// The provider refused, at once or later (a pending or even a paid refund that failed): the original method
    /// cannot receive money.
    MethodRefused {
        code: String,
    },
    ProviderUnreachable,
    RetryDue,
    Recovered,
}

impl RefundInput {
    /// Whether the step needs the client's books, read (under the ledger lock) in its transaction.
    pub fn reads_books(&self) -> bool {
        matches!(self, Self::Approve { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approved",
            Self::Deny { .. } => "denied",
            Self::Appeal { .. } => "appealed",
            Self::Refunded { .. } => "refunded",
            Self::Pending { .. } => "pending",
            Self::MethodRefused { .. } => "method_refused",
            Self::ProviderUnreachable => "provider_unreachable",
            Self::RetryDue => "retry_due",
            Self::Recovered => "recovered",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Approved,
    Denied,
    Refunded,
    NeedsAlternativeMethod,
}

/// What a refund step writes in its own transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum RefundRecord {
    /// Take the refunded credits back through the ledger.
    DebitCredits { credits: Credits },
    /// Give them back: the money did not go back after all.
    CreditBack { credits: Credits },
    /// An email to the client.
    Notify(Notice),
    /// The provider refused the refund for good: the admins are told, whoever asked for it.
    AlertRefused { code: String },
}

/// What the refund actor does after the step's transaction has committed.
#[derive(Clone, Debug, PartialEq)]
pub enum RefundEffect {
    /// After the commit: pay the money back, under an idempotency key per refund and attempt.
    RefundAtProvider {
        idempotency_key: String,
    },
    ArmRetry {
        at: DateTime<Utc>,
    },
    /// After the commit: a reversal's money is back; the purchase becomes `reversed`.
    ReversalDone {
        purchase: Uuid,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundRejected {
    #[error("this refund request is {0}, so it cannot be {1}")]
    WrongState(&'static str, &'static str),
    #[error("the appeal was already used; the denial stands")]
    NoAppealLeft,
    #[error("a denial needs a reason for the client")]
    ReasonRequired,
    #[error("the client has no unused credits left from this purchase")]
    NothingLeft,
    /// A defect, not a decision: an approval reached the state machine without the books it is priced on.
    #[error("the ledger was not read for this approval; try again")]
    BooksUnread,
}

pub struct RefundStep {
    pub refund: Refund,
    /// Written in the step's transaction.
    pub records: Vec<RefundRecord>,
    /// Run after it commits.
    pub effects: Vec<RefundEffect>,
}

impl Refund {
    /// A client's request, judged on the books as they stand in the transaction that records it: only a paid
    /// purchase, within the window, with credits from it still unused.
    pub fn request(
        id: Uuid,
        purchase: &Purchase,
        ask: RefundAsk,
        books: Books,
        now: DateTime<Utc>,
        policy: &RefundPolicy,
    ) -> Result<Self, RequestRejected> {
        if purchase.status != Status::Succeeded {
            return Err(RequestRejected::NotPaid);
        }
        if now - purchase.created_at > policy.window {
            return Err(RequestRejected::WindowClosed);
        }
        let Some(refundable) = refundable(purchase.price, purchase.credits, books.already_refunded, books.balance)
        else {
            return Err(if books.already_refunded >= purchase.credits {
                RequestRejected::AlreadyRefunded
            } else {
                RequestRejected::NoUnusedCredits
            });
        };
        let ask_for = (refundable.credits, refundable.amount);
        Ok(Refund::pending(id, purchase, ask, ask_for, now))
    }

    /// A refund of `credits` for `amount` of `purchase`, waiting for an admin.
    fn pending(
        id: Uuid,
        purchase: &Purchase,
        ask: RefundAsk,
        (credits, amount): (Credits, Money),
        now: DateTime<Utc>,
    ) -> Self {
        Refund {
            id,
            purchase_id: purchase.id,
            client: purchase.client.clone(),
            reason: ask.reason,
            details: ask.details,
            price: purchase.price,
            bought: purchase.credits,
            credits,
            amount,
            status: RefundStatus::PendingReview,
            decided_by: None,
            denial_reason: None,
            appeal: None,
            appeals_used: 0,
            provider_refund: None,
            failure: None,
            attempt: 0,
            retry_at: None,
            reversal: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// The refund of a payment confirmed as fraud: the whole price, approved by `by` as it is made, paid back by the
    /// refund's actor like any other.
    pub fn reversal(id: Uuid, purchase: &Purchase, by: &str, reason: &str, now: DateTime<Utc>) -> Self {
        let ask = RefundAsk { reason: format!("confirmed fraud: {reason}"), details: String::new() };
        Refund {
            status: RefundStatus::Processing,
            decided_by: Some(by.to_owned()),
            reversal: true,
            ..Refund::pending(id, purchase, ask, (Credits(0), purchase.price), now)
        }
    }

    fn refund_call(&mut self) -> RefundEffect {
        self.attempt += 1;
        RefundEffect::RefundAtProvider { idempotency_key: format!("refund-{}", self.id) }
    }

    /// `books` are read for the inputs that `reads_books`, and only for those (an approval), since reading them
    /// holds the client's ledger.
    pub fn on(
        &self,
        input: RefundInput,
        books: Option<Books>,
        now: DateTime<Utc>,
        policy: &RefundPolicy,
    ) -> Result<RefundStep, RefundRejected> {
        use RefundStatus::*;
        let mut next = self.clone();
        next.updated_at = now;
        let (records, effects) = match (self.status, input) {
            (PendingReview | Appealed, RefundInput::Approve { admin }) => {
                let books = books.ok_or(RefundRejected::BooksUnread)?;
                // Re-priced at approval: what was spent since the request stays spent.
                let now =
                    refundable(self.price, self.bought, books.already_refunded, books.balance.min(self.credits.0))
                        .ok_or(RefundRejected::NothingLeft)?;
                next.credits = now.credits;
                next.amount = now.amount;
                next.status = Processing;
                next.decided_by = Some(admin);
                let debit = RefundRecord::DebitCredits { credits: next.credits };
                (vec![debit, RefundRecord::Notify(Notice::Approved)], vec![next.refund_call()])
            }
            (PendingReview | Appealed, RefundInput::Deny { admin, reason }) => {
                if reason.trim().is_empty() {
                    return Err(RefundRejected::ReasonRequired);
                }
                next.status = Denied;
                next.decided_by = Some(admin);
                next.denial_reason = Some(reason);
                (vec![RefundRecord::Notify(Notice::Denied)], vec![])
            }
            (Denied, RefundInput::Appeal { message }) => {
                if self.appeals_used >= policy.appeals {
                    return Err(RefundRejected::NoAppealLeft);
                }
                next.status = Appealed;
                next.appeal = Some(message);
                next.appeals_used += 1;
                (vec![], vec![])
            }
            (Processing, RefundInput::Refunded { provider_refund }) => {
                next.status = Refunded;
                next.provider_refund = Some(provider_refund);
                next.retry_at = None;
                // A reversal tells its purchase rather than the client, whose notice the purchase sent.
                match self.reversal {
                    true => (vec![], vec![RefundEffect::ReversalDone { purchase: self.purchase_id }]),
                    false => (vec![RefundRecord::Notify(Notice::Refunded)], vec![]),
                }
            }
            (Processing, RefundInput::Pending { provider_refund }) => {
                next.provider_refund = Some(provider_refund);
                next.retry_at = None;
                (vec![], vec![])
            }
            // Refused when asked, or failed later (Stripe's `refund.failed`, even after `succeeded`): no money went
            // back, so the credits debited at approval go back to the client, who is asked for another method.
            (Processing | Refunded, RefundInput::MethodRefused { code }) => {
                next.status = NeedsAlternativeMethod;
                next.failure = Some(code.clone());
                next.retry_at = None;
                // A reversal the method cannot take stays with the admin, who sees it in the refund queue.
                let alert = RefundRecord::AlertRefused { code };
                match self.reversal {
                    true => (vec![alert], vec![]),
                    false => (
                        vec![
                            RefundRecord::CreditBack { credits: self.credits },
                            alert,
                            RefundRecord::Notify(Notice::NeedsAlternativeMethod),
                        ],
                        vec![],
                    ),
                }
            }
            (Processing, RefundInput::ProviderUnreachable) => {
                let at = now + policy.retry_base * 2_i32.saturating_pow(self.attempt.min(10));
                next.retry_at = Some(at);
                (vec![], vec![RefundEffect::ArmRetry { at }])
            }
            (Processing, RefundInput::RetryDue) if self.retry_at.is_some_and(|at| now >= at) => {
                next.retry_at = None;
                (vec![], vec![next.refund_call()])
            }
            // After a restart, an approved refund whose provider call may not have happened is made again: the
            // idempotency key makes a second call harmless.
            (Processing, RefundInput::Recovered) if self.retry_at.is_none() => (vec![], vec![next.refund_call()]),
            (status, RefundInput::Approve { .. }) => {
                return Err(RefundRejected::WrongState(status.as_str(), "approved"));
            }
            (status, RefundInput::Deny { .. }) => return Err(RefundRejected::WrongState(status.as_str(), "denied")),
            (status, RefundInput::Appeal { .. }) => {
                return Err(RefundRejected::WrongState(status.as_str(), "appealed"));
            }
            // Late or repeated provider news (a webhook after the call's answer) changes nothing.
            _ => return Ok(RefundStep { refund: self.clone(), records: vec![], effects: vec![] }),
        };
        Ok(RefundStep { refund: next, records, effects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap()).unwrap()
    }

    #[test]
    fn unused_credits_are_refunded_in_proportion_rounded_down() {
        let r = refundable(usd(16000), Credits(240), Credits(0), 100).unwrap();
        assert_eq!((r.credits, r.amount.minor), (Credits(100), 6666)); // 16000 × 100 / 240 = 6666.67 → 6666
        assert_eq!(refundable(usd(16000), Credits(240), Credits(0), 1000).unwrap().amount.minor, 16000);
        assert_eq!(refundable(usd(16000), Credits(240), Credits(240), 500), None);
        assert_eq!(refundable(usd(16000), Credits(240), Credits(0), 0), None);
    }

    proptest! {
        // Whatever the order of partial refunds, together they never take back more money or credits than the
        // purchase paid and granted.
        #[test]
        fn refunds_never_exceed_what_was_paid(price in 1i64..10_000_000, bought in 1i64..100_000, balances in proptest::collection::vec(0i64..200_000, 1..6)) {
            let mut refunded_credits = 0;
            let mut refunded_money = 0;
            for balance in balances {
                if let Some(r) = refundable(usd(price), Credits(bought), Credits(refunded_credits), balance) {
                    refunded_credits += r.credits.0;
                    refunded_money += r.amount.minor;
                }
            }
            prop_assert!(refunded_credits <= bought);
            prop_assert!(refunded_money <= price);
        }
    }
}
