//! What the fraud monitor counts, in SQL: the checkouts it let through and the declines, per client, network and card,
//! over the last hour. Every node writes and reads the same rows, so a burst spread over nodes is counted as one, and
//! a restart forgets nothing.
use chrono::{DateTime, TimeDelta, Utc};
use entities::fraud_screenings as rows;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

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

/// How far each count need go: a count is only compared with its threshold, so past it the rest of the hour's rows
/// (a busy network's, a popular test card's) need not be read.
pub struct Caps {
    pub client_checkouts: usize,
    pub client_declines: usize,
    pub ip_checkouts: usize,
    pub card_checkouts: usize,
}

/// Every count of the window, each stopped at its cap, in one statement.
const TALLY: &str = "SELECT \
    (SELECT COUNT(*) FROM (SELECT 1 AS x FROM fraud_screenings \
        WHERE client_id = ? AND kind = 'checkout' AND at > ? LIMIT ?) AS a) AS client_checkouts, \
    (SELECT COUNT(*) FROM (SELECT 1 AS x FROM fraud_screenings \
        WHERE client_id = ? AND kind = 'decline' AND at > ? LIMIT ?) AS b) AS client_declines, \
    (SELECT COUNT(*) FROM (SELECT 1 AS x FROM fraud_screenings \
        WHERE ip = ? AND kind = 'checkout' AND at > ? LIMIT ?) AS c) AS ip_checkouts, \
    (SELECT COUNT(*) FROM (SELECT 1 AS x FROM fraud_screenings \
        WHERE card = ? AND kind = 'checkout' AND at > ? LIMIT ?) AS d) AS card_checkouts, \
    (SELECT COUNT(DISTINCT card) FROM fraud_screenings \
        WHERE client_id = ? AND kind = 'checkout' AND at > ?) AS client_cards, \
    (SELECT COUNT(*) FROM fraud_screenings \
        WHERE client_id = ? AND kind = 'checkout' AND card = ? AND at > ?) AS card_known";

pub async fn tally<C: ConnectionTrait>(
    db: &C,
    keys: &Keys<'_>,
    caps: &Caps,
    now: DateTime<Utc>,
) -> Result<Tally, DbErr> {
    let since = now - WINDOW;
    let cap = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let (client, ip, card) = (keys.client, keys.ip, keys.card);
    let values: Vec<sea_orm::Value> = vec![
        client.into(),
        since.into(),
        cap(caps.client_checkouts).into(),
        client.into(),
        since.into(),
        cap(caps.client_declines).into(),
        ip.into(),
        since.into(),
        cap(caps.ip_checkouts).into(),
        card.into(),
        since.into(),
        cap(caps.card_checkouts).into(),
        client.into(),
        since.into(),
        client.into(),
        card.into(),
        since.into(),
    ];
    let statement = super::numbered(db.get_database_backend(), TALLY, values);
    let row = db.query_one_raw(statement).await?.ok_or_else(|| DbErr::RecordNotFound("fraud tally".into()))?;
    let count = |column: &str| row.try_get::<i64>("", column).map(|n| n as usize);
    let new_card = keys.card.is_some() && count("card_known")? == 0;
    Ok(Tally {
        client_checkouts: count("client_checkouts")?,
        client_declines: count("client_declines")?,
        ip_checkouts: count("ip_checkouts")?,
        card_checkouts: count("card_checkouts")?,
        client_cards: count("client_cards")? + usize::from(new_card),
    })
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
