//! What the fraud monitor counts, in SQL: the checkouts it let through and the declines, per client, network and card,
//! over the last hour. Every node writes and reads the same rows, so a burst spread over nodes is counted as one, and
//! a restart forgets nothing.
use chrono::{DateTime, TimeDelta, Utc};
use entities::fraud_screenings as rows;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Checkout,
    Decline,
}

impl Seen {
    fn as_str(self) -> &'static str {
        match self {
            Self::Checkout => "checkout",
            Self::Decline => "decline",
        }
    }
}

/// Who a screening is about: the keys its counts are kept under.
pub struct Keys<'a> {
    pub client: &'a str,
    pub ip: Option<&'a str>,
    pub card: Option<&'a str>,
}

/// The counts of the window (an hour) before `now`.
#[derive(Debug, Default)]
pub struct Tally {
    pub client_checkouts: usize,
    pub client_declines: usize,
    pub ip_checkouts: usize,
    pub card_checkouts: usize,
    /// Distinct cards the client used, this one included.
    pub client_cards: usize,
}

/// Holds the keys until the caller's transaction ends, so that two nodes screening checkouts of one client, network
/// or card count one after the other. Always in the same order (client, network, card), so two screenings never wait
/// on each other crosswise.
pub async fn lock<C: ConnectionTrait>(db: &C, keys: &Keys<'_>) -> Result<(), DbErr> {
    super::advisory_lock(db, &format!("fraud:client:{}", keys.client)).await?;
    if let Some(ip) = keys.ip {
        super::advisory_lock(db, &format!("fraud:ip:{ip}")).await?;
    }
    if let Some(card) = keys.card {
        super::advisory_lock(db, &format!("fraud:card:{card}")).await?;
    }
    Ok(())
}

/// How far back every count looks.
const WINDOW: TimeDelta = TimeDelta::hours(1);

/// The rows of the window before `now`.
fn recent(now: DateTime<Utc>) -> sea_orm::Select<rows::Entity> {
    rows::Entity::find().filter(rows::Column::At.gt(now - WINDOW))
}

pub async fn tally<C: ConnectionTrait>(db: &C, keys: &Keys<'_>, now: DateTime<Utc>) -> Result<Tally, DbErr> {
    let count_of = |seen: Seen| {
        let kind = seen.as_str();
        Expr::cust(format!("CAST(COALESCE(SUM(CASE WHEN kind = '{kind}' THEN 1 ELSE 0 END), 0) AS BIGINT)"))
    };
    let (client_checkouts, client_declines): (i64, i64) = recent(now)
        .select_only()
        .column_as(count_of(Seen::Checkout), "checkouts")
        .column_as(count_of(Seen::Decline), "declines")
        .filter(rows::Column::ClientId.eq(keys.client))
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or_default();
    let cards: Vec<String> = recent(now)
        .select_only()
        .distinct()
        .column(rows::Column::Card)
        .filter(rows::Column::ClientId.eq(keys.client))
        .filter(rows::Column::Kind.eq(Seen::Checkout.as_str()))
        .filter(rows::Column::Card.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let new_card = keys.card.is_some_and(|card| !cards.iter().any(|c| c == card));
    Ok(Tally {
        client_checkouts: client_checkouts as usize,
        client_declines: client_declines as usize,
        ip_checkouts: checkouts_by(db, rows::Column::Ip, keys.ip, now).await?,
        card_checkouts: checkouts_by(db, rows::Column::Card, keys.card, now).await?,
        client_cards: cards.len() + usize::from(new_card),
    })
}

/// Checkouts in the window under `key` in `column` (a network, a card), whoever made them.
async fn checkouts_by<C: ConnectionTrait>(
    db: &C,
    column: rows::Column,
    key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let Some(key) = key else { return Ok(0) };
    let query = recent(now).filter(rows::Column::Kind.eq(Seen::Checkout.as_str())).filter(column.eq(key));
    Ok(sea_orm::PaginatorTrait::count(query, db).await? as usize)
}

pub async fn record<C: ConnectionTrait>(db: &C, seen: Seen, keys: &Keys<'_>, at: DateTime<Utc>) -> Result<(), DbErr> {
    let row = rows::ActiveModel {
        kind: Set(seen.as_str().to_owned()),
        client_id: Set(keys.client.to_owned()),
        ip: Set(keys.ip.map(str::to_owned)),
        card: Set(keys.card.map(str::to_owned)),
        at: Set(at),
        ..Default::default()
    };
    rows::Entity::insert(row).exec_without_returning(db).await.map(|_| ())
}

/// Forgets what no count looks at any more (older than the window).
pub async fn purge<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let old = rows::Entity::delete_many().filter(rows::Column::At.lte(now - WINDOW)).exec(db).await?;
    Ok(old.rows_affected)
}
