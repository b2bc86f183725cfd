//! An admin's correction of a client's balance: bounded, never below zero, and audited (who, why) in the
//! transaction that moves the credits.
use crate::domain::ids::ClientId;
use crate::store::{controls, ledger};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
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
    db: &DatabaseConnection,
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
    let source = format!("adjustment:{}", Uuid::new_v4());
    let txn = db.begin().await?;
    if credits < 0 {
        if !ledger::take(&txn, client, &source, "adjustment", -credits).await? {
            return Err(AdjustError::Insufficient(ledger::balance(&txn, client).await?));
        }
    } else {
        ledger::append(&txn, client, &source, "adjustment", credits).await?;
    }
    let record = format!("{credits:+} credits ({source}): {reason}");
    controls::audit(&txn, admin.as_str(), "adjust_credits", client.as_str(), &record).await?;
    let balance = ledger::balance(&txn, client).await?;
    txn.commit().await?;
    Ok(balance)
}
