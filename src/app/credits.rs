//! Moving credits outside purchases: an admin's correction of a client's balance (bounded, never below zero, and
//! audited in the transaction that moves the credits), and the platform's spends and their reversals (issue 18).
use crate::domain::ids::{ClientId, new_key};
use crate::store::controls;
use crate::store::idempotency::{self, Claim};
use crate::store::ledger::{self, Taken};
use crate::store::spends::{self, NewSpend, Reversed, Spent};
use crate::store::writer::{self, Busy, Writer};
use sea_orm::DbErr;
use uuid::Uuid;

/// The largest correction in one go, either way: far above any package, far below where sums could overflow.
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;
pub const MAX_REASON: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("Give a number of credits between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}, not zero.")]
    OutOfBounds,
    #[error("Give a reason of at most {MAX_REASON} characters: it is recorded in the audit trail.")]
    Reason,
    #[error("The balance is {0} credits.")]
    Insufficient(i64),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Adds (positive) or takes (negative) `credits`, and returns the balance after.
pub async fn adjust(
    writer: &Writer,
    admin: &ClientId,
    client: &ClientId,
    credits: i64,
    reason: &str,
) -> Result<i64, AdjustError> {
    if credits == 0 || !(-MAX_ADJUSTMENT..=MAX_ADJUSTMENT).contains(&credits) {
        return Err(AdjustError::OutOfBounds);
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(AdjustError::Reason);
    }
    let source = format!("adjustment:{}", new_key());
    let record = format!("{credits:+} credits ({source}): {reason}");
    let step = || {
        let (admin, client, source, record) = (admin.clone(), client.clone(), source.clone(), record.clone());
        writer::step(move |txn| {
            Box::pin(async move {
                let balance = if credits < 0 {
                    match ledger::take(txn, &client, &source, "adjustment", -credits).await? {
                        Taken::After(balance) => balance,
                        Taken::Short(balance) => return Err(AdjustError::Insufficient(balance)),
                    }
                } else {
                    ledger::append(txn, &client, &source, "adjustment", credits).await?;
                    ledger::balance(txn, &client).await?
                };
                controls::audit(txn, admin.as_str(), "adjust_credits", client.as_str(), &record).await?;
                Ok(balance)
            })
        })
    };
    writer.write_when_free(step).await
}

impl Busy for AdjustError {
    fn busy(&self) -> bool {
        matches!(self, Self::Db(e) if e.busy())
    }
}

/// The most one spend may take: as for an adjustment.
pub const MAX_SPEND: i64 = MAX_ADJUSTMENT;

#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    #[error("Give a number of credits between 1 and {MAX_SPEND}.")]
    OutOfBounds,
    #[error("Give a reference of 1 to 200 characters (what the credits bought) and a description of at most 500.")]
    Reference,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The `Idempotency-Key` a spend is sent under, claimed and answered in the spend's own step.
#[derive(Clone)]
pub struct SpendKey {
    pub key: String,
    /// What identifies the request, so the same key with another request is refused.
    pub request_hash: String,
    pub lease: chrono::TimeDelta,
}

/// A spend made now: the spend and the balance after, or the balance that was too small.
pub type Spending = Result<(entities::spends::Model, i64), i64>;

/// What a keyed spend did: spent now (or found the balance short), with its answer stored under the key in the same
/// step; or the key's earlier answer; or why the key cannot be used.
pub enum KeyedSpend {
    Done(Spending),
    Replay { status: u16, body: String },
    DifferentRequest,
    InProgress,
}

/// Spends `credits` of `client`'s balance for the platform (issue 18), never below zero, once per key: the key's
/// claim, the spend and the key's answer (`answer` renders it) are one step of the writer, so one commit.
#[allow(clippy::too_many_arguments)]
pub async fn spend(
    writer: &Writer,
    by: &ClientId,
    client: &ClientId,
    credits: i64,
    reference: &str,
    description: &str,
    key: SpendKey,
    answer: impl Fn(&Spending) -> (u16, String) + Send + Sync + 'static,
) -> Result<KeyedSpend, SpendError> {
    if !(1..=MAX_SPEND).contains(&credits) {
        return Err(SpendError::OutOfBounds);
    }
    // The lengths as sent, as the API's schema counts them; the text as meant.
    if reference.trim().is_empty() || reference.chars().count() > 200 || description.chars().count() > 500 {
        return Err(SpendError::Reference);
    }
    let (reference, description) = (reference.trim(), description.trim());
    let spend = NewSpend {
        id: new_key(),
        client: client.clone(),
        credits,
        reference: reference.to_owned(),
        description: description.to_owned(),
        spent_by: by.as_str().to_owned(),
    };
    let owner = by.as_str().to_owned();
    // A spend refused its client's ledger lock is tried again, so `answer` is shared by the tries: the one that
    // commits is the one that answered.
    let answer = std::sync::Arc::new(answer);
    let step = || {
        let (owner, key, spend, answer) = (owner.clone(), key.clone(), spend.clone(), answer.clone());
        writer::step(move |txn| {
            Box::pin(async move {
                match idempotency::claim(txn, &owner, &key.key, &key.request_hash, key.lease).await? {
                    Claim::Fresh => {}
                    Claim::Replay { status, body } => return Ok(KeyedSpend::Replay { status, body }),
                    Claim::DifferentRequest => return Ok(KeyedSpend::DifferentRequest),
                    Claim::InProgress => return Ok(KeyedSpend::InProgress),
                }
                let spending = match spends::spend(txn, spend).await? {
                    Spent::Done(spend, balance) => Ok((spend, balance)),
                    Spent::Insufficient(balance) => Err(balance),
                };
                let (status, body) = answer(&spending);
                idempotency::complete(txn, &owner, &key.key, status, body).await?;
                Ok::<_, DbErr>(KeyedSpend::Done(spending))
            })
        })
    };
    Ok(writer.write_when_free(step).await?)
}

/// Gives a spend back, once (a job that failed).
pub async fn reverse(writer: &Writer, id: Uuid, reason: &str) -> Result<Reversed, DbErr> {
    let reason = reason.trim().to_owned();
    let step = || {
        let reason = reason.clone();
        writer::step(move |txn| Box::pin(async move { spends::reverse(txn, id, &reason).await }))
    };
    writer.write_when_free(step).await
}
