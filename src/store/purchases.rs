//! Purchases: the actor's state, its audit trail, and everything a transition writes, in one transaction per step.
use super::events;
use super::{fraud_flags, fraud_screenings, invoices, ledger, outbox, refunds, webhooks};
use crate::domain::event::EventType;
use crate::domain::ids::TransactionId;
use crate::domain::invoice::Issuer;
use crate::domain::purchase::{Input, Policy, Purchase, Record, Rejected, Status, Step};
use crate::domain::refund::Refund;
use chrono::Utc;
use entities::{purchase_events, purchases};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, Iterable,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("purchase {0} was changed by someone else (version conflict)")]
    Conflict(Uuid),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// An admin's command, recorded in the audit trail with the step it causes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminAction {
    pub admin: String,
    pub action: &'static str,
    pub reason: String,
}

/// What sent an input, recorded in the transaction of the step it causes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// The client through the API, a timer, a provider's answer: the step's history row says enough.
    #[default]
    Internal,
    /// A webhook: its inbox row is marked processed with the step.
    Webhook(i64),
    /// An admin's command: its audit row commits with the step.
    Admin(AdminAction),
}

impl Cause {
    async fn record<C: ConnectionTrait>(&self, txn: &C, purchase: Uuid) -> Result<(), DbErr> {
        match self {
            Cause::Internal => Ok(()),
            Cause::Webhook(row) => webhooks::mark(txn, *row, webhooks::InboxStatus::Processed, None).await,
            Cause::Admin(a) => super::controls::audit(txn, &a.admin, a.action, &purchase.to_string(), &a.reason).await,
        }
    }
}

/// A purchase as last persisted, with the version the next save must match.
#[derive(Clone, Debug)]
pub struct Stored {
    pub purchase: Purchase,
    pub version: i64,
}

fn row(purchase: &Purchase, provider: &str, version: i64) -> Result<purchases::ActiveModel, DbErr> {
    let state = serde_json::to_value(purchase).map_err(|e| DbErr::Custom(format!("purchase state: {e}")))?;
    Ok(purchases::ActiveModel { state: Set(state), ..columns(purchase, provider, version) })
}

/// The row but its state: the columns that are read or indexed on their own.
fn columns(purchase: &Purchase, provider: &str, version: i64) -> purchases::ActiveModel {
    purchases::ActiveModel {
        id: Set(purchase.id),
        client_id: Set(purchase.client.as_str().to_owned()),
        package_id: Set(purchase.package.as_str().to_owned()),
        amount: Set(purchase.price.minor),
        currency: Set(purchase.price.currency.code().to_owned()),
        credits: Set(purchase.credits.0),
        provider: Set(provider.to_owned()),
        provider_ref: Set(purchase.intent_id.clone()),
        payment_method: Set(purchase.payment_method.as_ref().map(|m| m.as_str().to_owned())),
        charge_ref: Set(purchase.charge.clone()),
        status: Set(purchase.status.as_str().to_owned()),
        failure_code: Set(purchase.failure.as_ref().map(|f| f.code().to_owned())),
        state: NotSet,
        version: Set(version),
        next_due_at: Set(purchase.next_deadline()),
        created_at: Set(purchase.created_at),
        updated_at: Set(purchase.updated_at),
    }
}

/// What a step changes in the row: the state, the version, and of the other columns only those whose value moved.
/// SQLite rewrites the entries of every index on a column an `UPDATE` sets, changed or not, and a purchase's row has
/// seven indexes while a step moves one or two of their columns.
fn changes(before: &Stored, next: &Purchase, provider: &str, version: i64) -> Result<purchases::ActiveModel, DbErr> {
    let mut changes = row(next, provider, version)?;
    let unchanged = columns(&before.purchase, provider, before.version);
    // The state is always written (`columns` leaves it out), so it is not compared: that would copy it whole.
    for column in purchases::Column::iter().filter(|column| !matches!(column, purchases::Column::State)) {
        if changes.get(column) == unchanged.get(column) {
            changes.not_set(column);
        }
    }
    Ok(changes)
}

fn event(purchase_id: Uuid, kind: &str, from: Status, to: &Purchase) -> purchase_events::ActiveModel {
    let detail = json!({
        "attempt": to.attempt,
        "failure": to.failure.as_ref().map(|f| f.code().to_owned()),
        "retryAt": to.next_retry.map(|r| r.at),
    });
    purchase_events::ActiveModel {
        purchase_id: Set(purchase_id),
        kind: Set(kind.to_owned()),
        from_status: Set(from.as_str().to_owned()),
        to_status: Set(to.status.as_str().to_owned()),
        detail: Set(detail),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

/// Inserts a new purchase, or holds it for its batch's one `INSERT` (`writer::hold_opened`) when there is one.
pub async fn insert_opened(txn: &DatabaseTransaction, purchase: &Purchase, provider: &str) -> Result<(), DbErr> {
    if let Some(opened) = super::writer::hold_opened(row(purchase, provider, 0)?) {
        purchases::Entity::insert(opened).exec_without_returning(txn).await?;
    }
    insert_history(txn, event(purchase.id, "opened", Status::Created, purchase)).await
}

/// A line of the purchase's history, held for its batch's one `INSERT` (`writer::hold_history`) when there is one.
pub(super) async fn insert_history<C: ConnectionTrait>(
    txn: &C,
    line: purchase_events::ActiveModel,
) -> Result<(), DbErr> {
    match super::writer::hold_history(line) {
        None => Ok(()),
        Some(line) => purchase_events::Entity::insert(line).exec_without_returning(txn).await.map(|_| ()),
    }
}

/// Persists one step: the new state (checked against `version`), its history row, its records (the credit grant,
/// outbox rows, alerts, a reversal) and its cause (the inbox mark, the audit row), all or nothing: `txn` is the step's
/// own savepoint in the writer's batch (`store::writer`). Returns the new version.
pub async fn save_step(
    txn: &DatabaseTransaction,
    before: &Stored,
    step: &Step,
    input: &str,
    provider: &str,
    cause: &Cause,
    issuer: &Arc<Issuer>,
) -> Result<i64, SaveError> {
    let next = &step.purchase;
    let version = before.version + 1;
    let mut update = purchases::Entity::update_many()
        .set(changes(before, next, provider, version)?)
        .filter(purchases::Column::Id.eq(next.id))
        .filter(purchases::Column::Version.eq(before.version));
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The row is taken by the `UPDATE` itself, unless another transaction holds it: then it is skipped, as when
        // its version moved, and `apply` tells the two apart.
        update = update.filter(purchases::Column::Id.in_subquery(free_row(next.id)));
    }
    let updated = update.exec(txn).await?;
    if updated.rows_affected != 1 {
        return Err(SaveError::Conflict(next.id));
    }
    insert_history(txn, event(next.id, input, before.purchase.status, next)).await?;
    if next.status == Status::Failed && before.purchase.status != Status::Failed {
        let data = json!({ "transactionId": TransactionId(next.id), "clientId": next.client, "packageId": next.package,
            "failure": next.failure.as_ref().map(|f| f.code()) });
        let cause = format!("purchase.failed:{}:{version}", next.id);
        events::record(txn, EventType::PurchaseFailed, cause, Some(next.client.as_str()), data).await?;
    }
    if step.is_decline(&before.purchase) {
        let keys = fraud_screenings::Keys { client: next.client.as_str(), ip: None, card: None };
        fraud_screenings::record(txn, fraud_screenings::Seen::Decline, &keys, next.updated_at).await?;
    }
    for record in &step.records {
        match record {
            Record::GrantCredits { credits } => {
                ledger::append(txn, &next.client, &format!("purchase:{}", next.id), "purchase_grant", credits.0)
                    .await?;
                super::disputes::debit_lost_before_grant(txn, next).await?;
                invoices::issue(txn, issuer, next).await?;
            }
            Record::QueueReceipt => queue_receipt(txn, next).await?,
            Record::OpenReversal { refund, by, reason } => {
                fraud_flags::flag(txn, next.client.as_str(), reason, by).await?;
                let notice = json!({ "purchaseId": next.id, "clientId": next.client });
                outbox::enqueue(txn, outbox::Kind::FraudNotice, format!("fraud:{}", next.id), notice).await?;
                refunds::insert(txn, &Refund::reversal(*refund, next, by, reason, next.updated_at)).await?;
            }
            Record::AlertAmountMismatch { paid } => {
                let details = json!({ "purchaseId": next.id, "paidMinor": paid.minor, "paidCurrency": paid.currency.code(),
                    "priceMinor": next.price.minor, "priceCurrency": next.price.currency.code(), "message":
                    "The provider reports a payment of another amount or currency than the price: nothing was granted; the payment is held for review." });
                super::alerts::raise(txn, "amount_mismatch", format!("amount_mismatch:{}", next.id), details).await?;
            }
            Record::AlertProviderRefused { code } => {
                let details = json!({ "purchaseId": next.id, "providerCode": code, "message":
                    "The provider refused a request about this payment for good; it was stopped. Check the provider's dashboard and the API keys." });
                let key = format!("provider_refused:{}:{}", next.id, next.attempt);
                super::alerts::raise(txn, "provider_refused", key, details).await?;
            }
        }
    }
    cause.record(txn, next.id).await?;
    Ok(version)
}

/// What one input did to a purchase, decided on the row as the step's transaction holds it.
// Each value is built, moved once into its handler and consumed there: boxing the large variant would add an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Applied {
    /// The input moved the purchase; the step is saved.
    Stepped { before: Purchase, step: Step, version: i64 },
    /// Nothing changed: a no-op, or a refusal (`rejected`). `stored` is the purchase as it is.
    Unchanged { stored: Stored, rejected: Option<Rejected> },
}

/// Applies `input` to a purchase in `txn`, any node's actor being free to do so: the row is the owner. The step is
/// decided on `cached` (the actor's copy) and saved against its version, whose `UPDATE` takes the row's lock; should
/// another node have moved the purchase meanwhile, the row is read under `SELECT … FOR UPDATE` and the input decided
/// again on it. An input that changes nothing checks the version the same way, so a refusal is never decided on a
/// stale copy. The lock lasts until the batch commits and is never held across a provider call.
///
/// The row is never waited for (PostgreSQL): a batch that waited for a row while holding the invoice counter could
/// deadlock with the batch holding the row and waiting for the counter. Each statement that takes it skips it when
/// another batch (another node's, or another lane's) holds it, and the step is then refused busy, to be tried again
/// (`store::is_busy`), before its first write (`writer::refused`): skipping raises no error, which on PostgreSQL would
/// abort the batch's transaction. SQLite's one writer serializes steps, so there is nothing to take.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    txn: &DatabaseTransaction,
    cached: Stored,
    input: Input,
    policy: &Policy,
    provider: &str,
    cause: &Cause,
    issuer: &Arc<Issuer>,
) -> Result<Applied, SaveError> {
    let mut current = cached;
    for locked in [false, true] {
        let decided = current.purchase.on(input.clone(), Utc::now(), policy);
        match decided {
            Ok(step) if !step.is_noop(&current.purchase) => {
                match save_step(txn, &current, &step, input.name(), provider, cause, issuer).await {
                    Ok(version) => return Ok(Applied::Stepped { before: current.purchase, step, version }),
                    Err(SaveError::Conflict(_)) if !locked => current = lock(txn, current.purchase.id).await?,
                    Err(e) => return Err(e),
                }
            }
            unchanged => {
                if !locked && locked_version(txn, current.purchase.id).await? != current.version {
                    current = lock(txn, current.purchase.id).await?;
                    continue;
                }
                let rejected = unchanged.err();
                if leaves_trace(rejected.as_ref(), cause) {
                    record_unchanged(txn, &current.purchase, input.name(), cause).await?;
                }
                return Ok(Applied::Unchanged { stored: current, rejected });
            }
        }
    }
    Err(SaveError::Conflict(current.purchase.id))
}

/// The purchase's row as a subquery that takes it `FOR UPDATE`, or finds nothing when another transaction holds it.
fn free_row(id: Uuid) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(purchases::Column::Id)
        .from(purchases::Entity)
        .and_where(purchases::Column::Id.eq(id))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned()
}

impl crate::store::writer::Busy for SaveError {
    fn busy(&self) -> bool {
        matches!(self, Self::Db(e) if super::is_busy(e))
    }
}

/// What a read of the purchase's row that takes it found missing means: on PostgreSQL, where the read skips a row
/// another transaction holds, that the row is busy (a purchase is never deleted); on SQLite, that it is not there.
fn not_free<C: ConnectionTrait>(txn: &C, id: Uuid) -> DbErr {
    match txn.get_database_backend() {
        sea_orm::DbBackend::Postgres => super::writer::refused(super::busy(&format!("purchase {id}"))),
        _ => DbErr::RecordNotFound(format!("purchase {id}")),
    }
}

/// The purchase's row, locked until the transaction ends (SQLite, whose one writer serializes steps, has no row
/// locks); busy when another transaction holds it. A step about the purchase that is not its own (a dispute's
/// report) reads it this way too, so it sees what the purchase's steps have committed and none commits beside it.
pub async fn lock<C: ConnectionTrait>(txn: &C, id: Uuid) -> Result<Stored, DbErr> {
    let row = purchases::Entity::find_by_id(id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(txn)
        .await?;
    decode(row.ok_or_else(|| not_free(txn, id))?)
}

/// The version of the purchase's row, locked like `lock` does: all a step that changes nothing needs to know that the
/// copy it decided on is current, without decoding the row.
async fn locked_version(txn: &DatabaseTransaction, id: Uuid) -> Result<i64, SaveError> {
    let version = purchases::Entity::find_by_id(id)
        .select_only()
        .column(purchases::Column::Version)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple::<i64>()
        .one(txn)
        .await?;
    version.ok_or_else(|| not_free(txn, id).into())
}

/// Whether an input that changed nothing is written down: a webhook always (it is consumed, applied or not), an
/// admin's command when it was accepted (a refused one changes nothing), the client's and the timers' never.
pub fn leaves_trace(rejected: Option<&Rejected>, cause: &Cause) -> bool {
    match cause {
        Cause::Internal => false,
        Cause::Webhook(_) => true,
        Cause::Admin(_) => rejected.is_none(),
    }
}

/// An input that changed nothing still leaves a trace when a webhook or an admin sent it: a line in the purchase's
/// history (as Stripe's dashboard lists every event of a payment), the inbox mark or the audit row.
pub async fn record_unchanged(
    txn: &DatabaseTransaction,
    purchase: &Purchase,
    input: &str,
    cause: &Cause,
) -> Result<(), DbErr> {
    insert_history(txn, event(purchase.id, &format!("{input}_unchanged"), purchase.status, purchase)).await?;
    cause.record(txn, purchase.id).await
}

async fn queue_receipt<C: ConnectionTrait>(db: &C, purchase: &Purchase) -> Result<(), DbErr> {
    let payload = json!({ "purchaseId": purchase.id, "clientId": purchase.client });
    outbox::enqueue(db, outbox::Kind::Receipt, format!("receipt:{}", purchase.id), payload).await
}

pub fn decode(model: purchases::Model) -> Result<Stored, DbErr> {
    let purchase = serde_json::from_value(model.state)
        .map_err(|e| DbErr::Custom(format!("purchase {} has unreadable state: {e}", model.id)))?;
    Ok(Stored { purchase, version: model.version })
}

pub async fn load(db: &DatabaseConnection, id: Uuid) -> Result<Option<Stored>, DbErr> {
    purchases::Entity::find_by_id(id).one(db).await?.map(decode).transpose()
}

pub async fn find_by_intent(db: &DatabaseConnection, intent_id: &str) -> Result<Option<Stored>, DbErr> {
    purchases::Entity::find()
        .filter(purchases::Column::ProviderRef.eq(intent_id))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Purchases not yet in a terminal state: after a restart each needs its deadlines back, and an actor if a
/// provider holds it.
pub async fn unfinished(db: &DatabaseConnection) -> Result<Vec<Stored>, DbErr> {
    let terminal = [Status::Succeeded.as_str(), Status::Expired.as_str(), Status::Reversed.as_str()];
    let rows = purchases::Entity::find().filter(purchases::Column::Status.is_not_in(terminal)).all(db).await?;
    rows.into_iter().map(decode).collect()
}

/// Claims, for this node, up to `limit` purchases whose next deadline fell due more than `grace` ago and that no live
/// node has fired: the ones a dead node had armed, or claimed and never fired. The claim moves the deadline `claim`
/// into the future on the database's clock, so no other node takes them meanwhile, and should this node die too the
/// next sweep after it takes them again; the step the deadline causes writes the purchase's real next deadline.
pub async fn claim_due(
    db: &DatabaseConnection,
    grace: std::time::Duration,
    claim: std::time::Duration,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let columns = ("purchases", "next_due_at", "next_due_at IS NOT NULL");
    let statement = super::claim_due(db.get_database_backend(), columns, grace, claim, limit);
    purchases::Entity::find().from_raw_sql(statement).all(db).await?.into_iter().map(decode).collect()
}

/// Puts back a claimed purchase's real next deadline when nothing was due after all, unless a step moved it first.
pub async fn reschedule(db: &DatabaseConnection, stored: &Stored) -> Result<(), DbErr> {
    purchases::Entity::update_many()
        .col_expr(purchases::Column::NextDueAt, sea_orm::sea_query::Expr::value(stored.purchase.next_deadline()))
        .filter(purchases::Column::Id.eq(stored.purchase.id))
        .filter(purchases::Column::Version.eq(stored.version))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn history(db: &DatabaseConnection, id: Uuid) -> Result<Vec<purchase_events::Model>, DbErr> {
    purchase_events::Entity::find()
        .filter(purchase_events::Column::PurchaseId.eq(id))
        .order_by_asc(purchase_events::Column::Id)
        .all(db)
        .await
}

pub async fn find_by_charge(db: &DatabaseConnection, charge: &str) -> Result<Option<Stored>, DbErr> {
    purchases::Entity::find().filter(purchases::Column::ChargeRef.eq(charge)).one(db).await?.map(decode).transpose()
}

/// A client's purchases, newest first, a page at a time; `year` keeps those of one calendar year.
pub async fn for_client(
    db: &DatabaseConnection,
    client: &str,
    year: Option<i32>,
    page: u64,
    per_page: u64,
) -> Result<Vec<Purchase>, DbErr> {
    use chrono::{NaiveDate, TimeZone};
    let mut query = purchases::Entity::find().filter(purchases::Column::ClientId.eq(client));
    if let Some(year) = year {
        let start = |y| {
            NaiveDate::from_ymd_opt(y, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| Utc.from_utc_datetime(&d))
        };
        if let (Some(from), Some(to)) = (start(year), start(year + 1)) {
            query = query.filter(purchases::Column::CreatedAt.gte(from)).filter(purchases::Column::CreatedAt.lt(to));
        }
    }
    query
        .order_by_desc(purchases::Column::CreatedAt)
        .paginate(db, per_page)
        .fetch_page(page)
        .await?
        .into_iter()
        .map(|m| decode(m).map(|s| s.purchase))
        .collect()
}

/// What the admin transaction list filters on.
#[derive(Default)]
pub struct Filter {
    pub status: Option<String>,
    pub provider: Option<String>,
    pub client: Option<String>,
    pub from: Option<chrono::DateTime<Utc>>,
    pub to: Option<chrono::DateTime<Utc>>,
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    /// Continue after this (created_at, id), newest first.
    pub after: Option<(chrono::DateTime<Utc>, Uuid)>,
}

/// All purchases matching `filter`, newest first, `limit` at a time (keyset pagination: as fast on the last page of
/// 100k rows as on the first).
pub async fn search(db: &DatabaseConnection, filter: &Filter, limit: u64) -> Result<Vec<purchases::Model>, DbErr> {
    use purchases::Column as C;
    use sea_orm::Condition;
    let mut query = purchases::Entity::find();
    if let Some(status) = &filter.status {
        query = query.filter(C::Status.eq(status.as_str()));
    }
    if let Some(provider) = &filter.provider {
        query = query.filter(C::Provider.eq(provider.as_str()));
    }
    if let Some(client) = &filter.client {
        query = query.filter(C::ClientId.eq(client.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(C::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(C::CreatedAt.lt(to));
    }
    if let Some(min) = filter.min_amount {
        query = query.filter(C::Amount.gte(min));
    }
    if let Some(max) = filter.max_amount {
        query = query.filter(C::Amount.lte(max));
    }
    if let Some((at, id)) = filter.after {
        query = query.filter(
            Condition::any().add(C::CreatedAt.lt(at)).add(Condition::all().add(C::CreatedAt.eq(at)).add(C::Id.lt(id))),
        );
    }
    query.order_by_desc(C::CreatedAt).order_by_desc(C::Id).limit(limit).all(db).await
}

/// The checkouts opened since `since`, oldest first, as the fraud monitor counts them: who, when, and, for the failed
/// ones, why and when they failed.
pub async fn opened_since(
    db: &DatabaseConnection,
    since: chrono::DateTime<Utc>,
) -> Result<Vec<(String, chrono::DateTime<Utc>, Option<String>, chrono::DateTime<Utc>)>, DbErr> {
    purchases::Entity::find()
        .select_only()
        .columns([
            purchases::Column::ClientId,
            purchases::Column::CreatedAt,
            purchases::Column::FailureCode,
            purchases::Column::UpdatedAt,
        ])
        .filter(purchases::Column::CreatedAt.gte(since))
        .order_by_asc(purchases::Column::CreatedAt)
        .into_tuple()
        .all(db)
        .await
}
