//! Disputes, from PayPal and Stripe alike. A provider's report is one step in one transaction: the dispute row, a line
//! in the purchase's history and an admin alert when it moves, and when it is lost the credits taken back through the
//! ledger and the account flagged; with the inbox mark of the webhook that brought it, or the audit line of the
//! admin whose answer it is.
use super::events;
use super::{alerts, controls, fraud_flags, ledger, webhooks};
use crate::domain::dispute::{self, Move, Paid, Report, Standing};
use crate::domain::event::EventType;
use crate::domain::ids::TransactionId;
use crate::domain::purchase::Purchase;
use chrono::Utc;
use entities::{disputes, purchase_events, refund_requests};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

/// Who a report comes from, written with it.
#[derive(Clone)]
pub enum Source {
    /// A stored webhook: its inbox row is marked processed.
    Webhook(i64),
    /// An admin's answer (evidence, acceptance): audited.
    Admin { admin: String, action: &'static str, record: String },
    /// The reconciler's read of an open dispute.
    Sync,
}

/// What a report did.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    pub standing: Standing,
    pub moved: bool,
    pub credits_debited: i64,
}

/// Applies `report` about a dispute of the purchase `purchase` (when Purser knows it), in the caller's transaction.
pub async fn apply<C: ConnectionTrait>(
    txn: &C,
    report: &Report,
    purchase: Option<Uuid>,
    source: Source,
) -> Result<Applied, DbErr> {
    use disputes::Column as C;
    // Two nodes may apply two reports of one dispute at once; the second, refused the lock while the first holds it,
    // is tried again and reads what the first wrote.
    super::advisory_lock_now(txn, &format!("dispute:{}", report.id)).await?;
    // Under the lock its grant takes: a grant is either committed and read here, or refused the row until this step
    // commits and then finds the lost dispute (`debit_lost_before_grant`).
    let purchase = match purchase {
        Some(id) => Some(super::purchases::lock(txn, id).await?.purchase),
        None => None,
    };
    let purchase = purchase.as_ref();
    let known = disputes::Entity::find_by_id(report.id.clone()).one(txn).await?;
    let before = known.as_ref().map(|d| Standing::parse(&d.status).unwrap_or(Standing::UnderReview));
    let step = dispute::on(before, report.standing);
    let standing = match step {
        Move::Stale => before.unwrap_or(report.standing),
        _ => report.standing,
    };
    let lost_now = step == Move::To(Standing::Lost);
    let credits_debited = match (lost_now, purchase) {
        (true, Some(purchase)) if purchase.credits_granted => {
            credits_lost(txn, purchase, report.amount, report.currency.as_deref()).await?
        }
        _ => 0,
    };
    let now = Utc::now();
    let row = disputes::ActiveModel {
        id: Set(report.id.clone()),
        provider: Set(report.provider.to_owned()),
        purchase_id: Set(purchase.map(|p| p.id)),
        client_id: Set(purchase.map(|p| p.client.as_str().to_owned())),
        reason: Set(report.reason.clone()),
        status: Set(standing.as_str().to_owned()),
        provider_status: Set(report.provider_status.clone()),
        amount: Set(report.amount),
        currency: Set(report.currency.clone()),
        details: Set(report.details.clone()),
        evidence_due_by: Set(report.evidence_due_by),
        credits_debited: Set(credits_debited + known.as_ref().map_or(0, |d| d.credits_debited)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let mut refresh = vec![C::UpdatedAt];
    if step != Move::Stale {
        refresh.extend([C::Status, C::ProviderStatus, C::Reason, C::Details, C::EvidenceDueBy, C::CreditsDebited]);
    }
    let upsert = OnConflict::column(C::Id).update_columns(refresh).to_owned();
    disputes::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;

    if let (Move::To(standing), Some(purchase)) = (step, purchase) {
        let event = purchase_events::ActiveModel {
            purchase_id: Set(purchase.id),
            kind: Set(format!("dispute_{}", standing.as_str())),
            from_status: Set(purchase.status.as_str().to_owned()),
            to_status: Set(purchase.status.as_str().to_owned()),
            detail: Set(json!({ "disputeId": report.id, "reason": report.reason, "creditsDebited": credits_debited })),
            created_at: Set(now),
            ..Default::default()
        };
        super::purchases::insert_history(txn, event).await?;
    }
    if let Move::To(standing) = step {
        let opened = before.is_none().then_some(EventType::DisputeOpened);
        let closed = standing.is_closed().then_some(EventType::DisputeClosed);
        let data = json!({ "disputeId": report.id, "transactionId": purchase.map(|p| TransactionId(p.id)),
            "clientId": purchase.map(|p| &p.client), "status": standing.as_str(), "reason": report.reason,
            "amount": report.amount, "currency": report.currency, "creditsDebited": credits_debited });
        for kind in opened.into_iter().chain(closed) {
            let client = purchase.map(|p| p.client.as_str());
            events::record(txn, kind, format!("{}:{}", kind.as_str(), report.id), client, data.clone()).await?;
        }
    }
    if credits_debited > 0
        && let Some(purchase) = purchase
    {
        debit(txn, purchase, &report.id, credits_debited).await?;
    }
    if lost_now && let Some(purchase) = purchase {
        let why = format!("lost dispute {} ({credits_debited} credits taken back)", report.id);
        fraud_flags::flag(txn, purchase.client.as_str(), &why, "dispute").await?;
    }
    if let Move::To(standing) = step {
        let alert = json!({
            "alert": "dispute",
            "disputeId": report.id,
            "provider": report.provider,
            "status": standing.as_str(),
            "providerStatus": report.provider_status,
            "reason": report.reason,
            "purchaseId": purchase.map(|p| p.id),
            "clientId": purchase.map(|p| p.client.as_str()),
            "amount": report.amount,
            "currency": report.currency,
            "evidenceDueBy": report.evidence_due_by,
            "creditsDebited": credits_debited,
        });
        alerts::raise(txn, "dispute", format!("dispute:{}:{}", report.id, standing.as_str()), alert).await?;
    }
    match source {
        Source::Webhook(row) => webhooks::mark(txn, row, webhooks::InboxStatus::Processed, None).await?,
        Source::Admin { admin, action, record } => controls::audit(txn, &admin, action, &report.id, &record).await?,
        Source::Sync => {}
    }
    Ok(Applied { standing, moved: matches!(step, Move::To(_)), credits_debited })
}

/// The credits a lost dispute of `purchase` takes back, net of what its refunds already took.
async fn credits_lost<C: ConnectionTrait>(
    txn: &C,
    purchase: &Purchase,
    amount: Option<i64>,
    currency: Option<&str>,
) -> Result<i64, DbErr> {
    let refunds: Vec<String> = refund_requests::Entity::find()
        .filter(refund_requests::Column::PurchaseId.eq(purchase.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|r| format!("refund:{}", r.id))
        .collect();
    let returned = -ledger::sum_of_sources(txn, &purchase.client, &refunds).await?;
    let paid = Paid { credits: purchase.credits.0, price: purchase.price.minor, returned };
    let same_currency = currency == Some(purchase.price.currency.code());
    Ok(dispute::credits_lost(paid, amount.filter(|_| same_currency)))
}

/// Takes `credits` back from the purchase's client for dispute `id`: its ledger row is unique, so once.
async fn debit<C: ConnectionTrait>(txn: &C, purchase: &Purchase, id: &str, credits: i64) -> Result<(), DbErr> {
    ledger::lock_now(txn, &purchase.client).await?;
    ledger::append(txn, &purchase.client, &format!("dispute:{id}"), "dispute_debit", -credits).await
}

/// Takes back, in the grant's transaction, what a dispute lost before `purchase`'s credits were granted could not take
/// then: its news can come first, say while the node that confirmed the payment was down, and it took nothing.
/// In a batch's first run the check is held, for the batch's one `lost_undebited` (`writer::hold_grant`).
pub async fn debit_lost_before_grant<C: ConnectionTrait>(txn: &C, purchase: &Purchase) -> Result<(), DbErr> {
    use disputes::Column as C;
    if super::writer::hold_grant(purchase.id) {
        return Ok(());
    }
    let lost = disputes::Entity::find()
        .filter(C::PurchaseId.eq(purchase.id))
        .filter(C::Status.eq(Standing::Lost.as_str()))
        .filter(C::CreditsDebited.eq(0))
        .all(txn)
        .await?;
    for dispute in lost {
        let credits = credits_lost(txn, purchase, dispute.amount, dispute.currency.as_deref()).await?;
        if credits == 0 {
            continue;
        }
        debit(txn, purchase, &dispute.id, credits).await?;
        let debited = disputes::Entity::update_many()
            .col_expr(C::CreditsDebited, Expr::value(credits))
            .filter(C::Id.eq(dispute.id));
        debited.exec(txn).await?;
    }
    Ok(())
}

/// The id of a lost dispute of one of `purchases` that took nothing yet (`debit_lost_before_grant` has work to do), if
/// there is one: a query of the batch's held grants (`writer::hold_grant`).
pub fn lost_undebited(purchases: &[Uuid]) -> sea_orm::Select<disputes::Entity> {
    use disputes::Column as C;
    disputes::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::PurchaseId.is_in(purchases.iter().copied()))
        .filter(C::Status.eq(Standing::Lost.as_str()))
        .filter(C::CreditsDebited.eq(0))
        .limit(1)
}

/// Open disputes with no news since `before`, oldest first: the reconciler reads them back from their provider.
/// Claims up to `limit` open disputes with no news for `quiet` (`super::claim_due`): their time moves `claim` on, so
/// no other node's reconciler reads the same ones from the provider meanwhile; the sync's own step sets it to now.
pub async fn claim_stale_open(
    db: &DatabaseConnection,
    quiet: std::time::Duration,
    claim: std::time::Duration,
    limit: u64,
) -> Result<Vec<disputes::Model>, DbErr> {
    let open = format!("status IN ('{}', '{}')", Standing::NeedsResponse.as_str(), Standing::UnderReview.as_str());
    let statement = super::claim_due(db.get_database_backend(), ("disputes", "updated_at", &open), quiet, claim, limit);
    disputes::Entity::find().from_raw_sql(statement).all(db).await
}

/// Gives back a claim whose read of the provider failed: the dispute comes round again after `quiet`, not after the
/// claim's full length, which could keep a decision whose webhook was lost waiting minutes.
pub async fn release(db: &DatabaseConnection, id: &str) -> Result<(), DbErr> {
    use disputes::Column as C;
    let released = disputes::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(Utc::now())).filter(C::Id.eq(id));
    released.exec(db).await.map(|_| ())
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<disputes::Model>, DbErr> {
    disputes::Entity::find().order_by_desc(disputes::Column::CreatedAt).all(db).await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<disputes::Model>, DbErr> {
    disputes::Entity::find_by_id(id.to_owned()).one(db).await
}
