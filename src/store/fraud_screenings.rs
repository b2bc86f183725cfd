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
    /// The client's account is flagged for confirmed fraud (`fraud_flags`).
    pub flagged: bool,
}

/// Takes the keys until the caller's transaction ends, so that two nodes screening checkouts of one client, network
/// or card count one after the other; fails busy when another transaction holds one of them (nothing is waited for:
/// a screening is a step of a batch, `store::advisory_locks_now`, all in one round trip), and the step is tried again.
/// The locks are the screening step's first statement, so a busy one refuses it before it wrote anything
/// (`writer::refused`).
pub async fn lock_now<C: ConnectionTrait>(db: &C, keys: &Keys<'_>) -> Result<(), DbErr> {
    let ip = keys.ip.map(|ip| format!("fraud:ip:{ip}"));
    let card = keys.card.map(|card| format!("fraud:card:{card}"));
    let keys: Vec<String> = std::iter::once(format!("fraud:client:{}", keys.client)).chain(ip).chain(card).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    super::advisory_locks_now(db, &keys).await.map_err(super::writer::refused)
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

/// A count of the window's rows matching `filter`, stopped at a bound cap.
fn capped(filter: &str, column: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM (SELECT 1 AS x FROM fraud_screenings WHERE {filter} AND at > ? LIMIT ?) AS n) AS {column}"
    )
}

/// Every count of the window, each stopped at its cap, in one statement.
pub async fn tally<C: ConnectionTrait>(
    db: &C,
    keys: &Keys<'_>,
    caps: &Caps,
    now: DateTime<Utc>,
) -> Result<Tally, DbErr> {
    let since = now - WINDOW;
    let cap = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let client = keys.client;
    // The client's cards other than this one, plus this one: found among the client's own rows, never by walking a
    // popular card's.
    let other_cards = if keys.card.is_some() { " AND card <> ?" } else { "" };
    let mut counts = vec![
        capped("client_id = ? AND kind = 'checkout'", "client_checkouts"),
        capped("client_id = ? AND kind = 'decline'", "client_declines"),
        format!(
            "(SELECT COUNT(DISTINCT card) FROM fraud_screenings \
                WHERE client_id = ? AND kind = 'checkout' AND at > ?{other_cards}) AS client_cards"
        ),
    ];
    let mut values: Vec<sea_orm::Value> = vec![
        client.into(),
        since.into(),
        cap(caps.client_checkouts).into(),
        client.into(),
        since.into(),
        cap(caps.client_declines).into(),
        client.into(),
        since.into(),
    ];
    if let Some(card) = keys.card {
        values.push(card.into());
    }
    // A network's or a card's count only for a checkout that has one (no PayPal checkout has a card): `= NULL` would
    // match no row anyway.
    if let Some(ip) = keys.ip {
        counts.push(capped("ip = ? AND kind = 'checkout'", "ip_checkouts"));
        values.extend([ip.into(), since.into(), cap(caps.ip_checkouts).into()]);
    }
    if let Some(card) = keys.card {
        counts.push(capped("card = ? AND kind = 'checkout'", "card_checkouts"));
        values.extend([card.into(), since.into(), cap(caps.card_checkouts).into()]);
    }
    counts.push("(SELECT COUNT(*) FROM fraud_flags WHERE client_id = ?) AS flagged".into());
    values.push(client.into());
    let sql = format!("SELECT {}", counts.join(", "));
    let statement = super::numbered(db.get_database_backend(), &sql, values);
    let row = db.query_one_raw(statement).await?.ok_or_else(|| DbErr::RecordNotFound("fraud tally".into()))?;
    let count = |column: &str| row.try_get::<i64>("", column).map(|n| n as usize);
    let count_if = |kept: bool, column: &str| if kept { count(column) } else { Ok(0) };
    Ok(Tally {
        client_checkouts: count("client_checkouts")?,
        client_declines: count("client_declines")?,
        ip_checkouts: count_if(keys.ip.is_some(), "ip_checkouts")?,
        card_checkouts: count_if(keys.card.is_some(), "card_checkouts")?,
        client_cards: count("client_cards")? + usize::from(keys.card.is_some()),
        flagged: count("flagged")? > 0,
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
