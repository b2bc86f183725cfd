//! The reconciler's schedule (`reconcile_schedule`): which purchases waiting on a provider are due for a sync, the
//! longest-unsynced first, and when each is due again. It is the reconciler's own table: purchases' rows stay their
//! actors'.
use super::alerts;
use chrono::{DateTime, Utc};
use entities::{purchases, reconcile_schedule as schedule};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, JoinType, OnConflict, Order, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait};
use serde_json::json;
use uuid::Uuid;

/// Purchases waiting on a provider (3-D Secure, processing) with no news since `stale_before` whose backoff has
/// passed at `now`, those synced longest ago (or never) first.
pub async fn due(
    db: &DatabaseConnection,
    waiting: &[&str],
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let (p, s) = (Alias::new("p"), Alias::new("s"));
    let last_news = Func::coalesce([
        Expr::col((s.clone(), schedule::Column::LastSyncedAt)),
        Expr::col((p.clone(), purchases::Column::UpdatedAt)),
    ]);
    let query = Query::select()
        .column((p.clone(), purchases::Column::Id))
        .from_as(purchases::Entity, p.clone())
        .join_as(
            JoinType::LeftJoin,
            schedule::Entity,
            s.clone(),
            Expr::col((s.clone(), schedule::Column::PurchaseId)).equals((p.clone(), purchases::Column::Id)),
        )
        .and_where(Expr::col((p.clone(), purchases::Column::Status)).is_in(waiting.iter().copied()))
        .and_where(Expr::col((p.clone(), purchases::Column::UpdatedAt)).lt(stale_before))
        .and_where(
            Expr::col((s.clone(), schedule::Column::NextAt)).is_null().or(Expr::col((
                s.clone(),
                schedule::Column::NextAt,
            ))
            .lte(now)),
        )
        .order_by_expr(last_news.into(), Order::Asc)
        .limit(limit)
        .to_owned();
    let rows = db.query_all_raw(db.get_database_backend().build(&query)).await?;
    rows.iter().map(|row| row.try_get::<Uuid>("", "id")).collect()
}

/// Claims for this node's reconciler the `due` purchases no other node has claimed since it read them: their next sync
/// moves to `until`, so other nodes pass them by; should this node die mid-sync, they fall due again then. Returns the
/// purchases this node now holds. One statement, atomic per row (`ON CONFLICT … DO UPDATE … WHERE`).
pub async fn claim(
    db: &DatabaseConnection,
    due: &[Uuid],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    if due.is_empty() {
        return Ok(vec![]);
    }
    use schedule::Column as C;
    let mut insert = Query::insert();
    insert.into_table(schedule::Entity).columns([C::PurchaseId, C::Syncs, C::LastSyncedAt, C::NextAt]);
    for id in due {
        insert.values_panic([(*id).into(), 0.into(), now.into(), until.into()]);
    }
    let unclaimed = Expr::col((schedule::Entity, C::NextAt)).lte(now);
    insert
        .on_conflict(OnConflict::column(C::PurchaseId).update_column(C::NextAt).action_and_where(unclaimed).to_owned());
    insert.returning_col(C::PurchaseId);
    let rows = db.query_all_raw(db.get_database_backend().build(&insert)).await?;
    rows.iter().map(|row| row.try_get::<Uuid>("", "purchase_id")).collect()
}

/// Records a sync made at `now` and the next one due at `next_at`; with `alert`, raises the one admin alert for a
/// purchase whose webhook is missing, in the same transaction. Returns how many syncs the purchase has had.
pub async fn synced(
    db: &DatabaseConnection,
    purchase: Uuid,
    now: DateTime<Utc>,
    next_at: impl FnOnce(i32) -> DateTime<Utc>,
    alert: bool,
) -> Result<i32, DbErr> {
    let txn = crate::store::begin(db).await?;
    let syncs = schedule::Entity::find_by_id(purchase).one(&txn).await?.map_or(0, |row| row.syncs) + 1;
    let row = schedule::ActiveModel {
        purchase_id: Set(purchase),
        syncs: Set(syncs),
        last_synced_at: Set(now),
        next_at: Set(next_at(syncs)),
    };
    let columns = [schedule::Column::Syncs, schedule::Column::LastSyncedAt, schedule::Column::NextAt];
    let upsert = OnConflict::column(schedule::Column::PurchaseId).update_columns(columns).to_owned();
    schedule::Entity::insert(row).on_conflict(upsert).exec_without_returning(&txn).await?;
    if alert {
        let details = json!({ "purchaseId": purchase, "message":
            "No webhook arrived for this purchase within the reconcile window; it was synced with the provider." });
        alerts::raise(&txn, "missed_webhook", format!("missed_webhook:{purchase}"), details).await?;
    }
    txn.commit().await?;
    Ok(syncs)
}
