//! Group commit: the steps of many actors, written in one transaction and made durable by one commit.
//!
//! A caller hands `write` its step as a function of a transaction. A lane takes every step waiting (up to
//! `max_batch`), opens one transaction, runs the steps, commits once, and only then answers each caller: nothing is
//! answered before it is durable. A failing step rolls back alone and the others stay: steps rarely fail, so a batch
//! first runs them straight in its transaction, and only when one fails is that run rolled back and the batch run
//! again with a savepoint per step (`commit_held`). On SQLite one lane owns the one write connection; on PostgreSQL
//! several lanes let batches overlap on the pool, and a lane lets steps gather while another writes its batch
//! (`GATHER`), so batches stay large at any load. Every step still carries its own optimistic `version` check, so
//! batching assumes nothing about which process owns a row.
//!
//! Rows that a step only appends (a new purchase, a purchase's history line, an event to the platform, an outbox
//! message) and the webhook inbox's "processed" marks are held instead and written for the whole batch before the
//! commit, one statement per table (`hold_opened`, `hold_history`, `hold_event`, `hold_message`, `hold_processed`).
//! So are the invoices the batch issues (`hold_invoice`): their clients' billing profiles read in one statement, then
//! numbered last, so the one counter every grant takes is held only from there to the commit. A batch's first run
//! also holds its ledger rows and its grants' dispute checks (`hold_credit`, `hold_grant`; see `Held`). On PostgreSQL
//! all but the invoices go to the server as one statement (`Appends::joined`), one round trip.
use crate::store::invoices::Unnumbered;
use entities::{credit_ledger, outbox, platform_events, purchase_events, purchases, webhook_events};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryTrait, Statement, TransactionTrait,
};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use uuid::Uuid;

pub type StepFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// A step as `write` takes it: wrapping a closure in it gives the closure that signature where nothing else would (a
/// closure that makes steps, for `write_when_free`).
pub fn step<T, E, F>(step: F) -> F
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> StepFuture<'t, Result<T, E>>,
{
    step
}

/// A step as a lane sees it: run it (again, when its batch is run a second time with savepoints), then answer.
trait Job: Send {
    /// Runs the step in `txn` and keeps its result; whether it succeeded.
    fn run<'t>(&'t mut self, txn: &'t DatabaseTransaction) -> StepFuture<'t, bool>;
    /// Answers the caller once the batch's commit is known: the step's last result if it committed, else the error.
    fn finish(self: Box<Self>, commit: Result<(), DbErr>);
}

/// A caller's step, its last result, and where the answer goes.
struct Pending<F, T, E> {
    step: F,
    result: Option<Result<T, E>>,
    answer: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> StepFuture<'t, Result<T, E>> + Clone + Send,
    T: Send,
    E: From<DbErr> + Send,
{
    fn run<'t>(&'t mut self, txn: &'t DatabaseTransaction) -> StepFuture<'t, bool> {
        let ran = (self.step.clone())(txn);
        Box::pin(async move {
            let ran = ran.await;
            let succeeded = ran.is_ok();
            self.result = Some(ran);
            succeeded
        })
    }

    fn finish(self: Box<Self>, commit: Result<(), DbErr>) {
        let result = self.result.unwrap_or_else(|| Err(E::from(DbErr::Custom("the step did not run".into()))));
        let _ = self.answer.send(commit.map_err(E::from).and(result));
    }
}

/// Batches and steps committed, for `/metrics` and `purser bench`.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub steps: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Batches run a second time, with a savepoint per step, because a step failed in the first run.
    pub replayed: AtomicU64,
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
    pub stats: Arc<WriterStats>,
}

impl WriterStats {
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let (batches, steps) = (self.batches.load(Ordering::Relaxed), self.steps.load(Ordering::Relaxed));
        let (largest, replayed) = (self.largest_batch.load(Ordering::Relaxed), self.replayed.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP purser_writer_batches_total Group commits: transactions the writer committed.\n\
             # TYPE purser_writer_batches_total counter\npurser_writer_batches_total {batches}\n\
             # HELP purser_writer_steps_total Steps committed in the writer's batches.\n\
             # TYPE purser_writer_steps_total counter\npurser_writer_steps_total {steps}\n\
             # HELP purser_writer_largest_batch The most steps one batch committed.\n\
             # TYPE purser_writer_largest_batch gauge\npurser_writer_largest_batch {largest}\n\
             # HELP purser_writer_replayed_batches_total Batches run again with a savepoint per step after a step failed.\n\
             # TYPE purser_writer_replayed_batches_total counter\npurser_writer_replayed_batches_total {replayed}"
        );
    }
}

impl Writer {
    /// Starts `lanes` lanes on `db`; they stop when the last `Writer` handle is dropped.
    pub fn start(db: DatabaseConnection, lanes: usize, max_batch: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let writing = Arc::new(Writing::default());
        let stats = Arc::new(WriterStats::default());
        // On SQLite the lane calls its connection itself (`store::direct`), the lane's thread blocked while SQLite
        // works, so it gets a thread and runtime of its own. PostgreSQL's connections are driven by the shared
        // runtime's reactor, so there the lanes stay on it.
        let own_thread = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
        // SQLite's own writer connection holds one transaction at a time.
        let lanes = if crate::store::direct::transaction_statements(&db) { 1 } else { lanes.max(1) };
        for n in 0..lanes {
            let lane = lane(db.clone(), queue.clone(), writing.clone(), max_batch.max(1), stats.clone());
            if !own_thread {
                tokio::spawn(lane);
                continue;
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("purser-writer-{n}")).spawn(move || runtime.block_on(lane))?;
        }
        Ok(Self { jobs, stats })
    }

    /// Runs `step` in the next batch and answers once that batch is durable. An `Err` from `step` rolls back its
    /// writes alone; a failed commit fails every step of the batch. The step may run twice (the first run rolled back
    /// when another step of its batch failed), so it is cloned for each run and does nothing outside its transaction.
    pub async fn write<T, E, F>(&self, step: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> StepFuture<'t, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job = Box::new(Pending { step, result: None, answer });
        let stopped = || DbErr::Custom("the store's writer has stopped".into());
        self.jobs.send(job).map_err(|_| E::from(stopped()))?;
        answered.await.unwrap_or_else(|_| Err(E::from(stopped())))
    }

    /// Runs the step `make` makes, and makes and runs it again while its error is busy (`Busy`): another
    /// transaction, on this node or another, held a row or a lock it needs, which a step never waits for (its batch
    /// keeps what its earlier steps took, so two batches waiting on each other would deadlock). The holder's batch
    /// commits within milliseconds; tries follow after 5 ms, 10 ms… then every 100 ms, about four seconds in all,
    /// longer than a batch holds anything under load. Past that the busy error is the answer.
    pub async fn write_when_free<T, E, F>(&self, mut make: impl FnMut() -> F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> StepFuture<'t, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Busy + Send + 'static,
    {
        const TRIES: u64 = 50;
        let mut tries = 0;
        loop {
            match self.write(make()).await {
                Err(e) if e.busy() && tries < TRIES => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis((5 * tries).min(100))).await;
                }
                other => return other,
            }
        }
    }
}

/// An error that may say its step was refused a row or a lock another transaction held (`store::is_busy`).
pub trait Busy {
    fn busy(&self) -> bool;
}

impl Busy for DbErr {
    fn busy(&self) -> bool {
        crate::store::is_busy(self)
    }
}

/// The lanes writing a batch's steps, which have not reached its commit yet.
#[derive(Default)]
struct Writing {
    lanes: AtomicUsize,
    done: Notify,
}

/// While another lane writes its batch, a lane lets the arriving steps gather, up to this many, rather than take
/// them one or two at a time. With several lanes (PostgreSQL), an idle lane took each step as it came and batches
/// held 1.6–2.8 steps: a node made two to three commits per purchase, three nodes on one database eight or nine,
/// and PostgreSQL's CPU per commit made it the machine's busiest process. Past this many waiting, a lane starts
/// anyway, so batches still overlap under load.
const GATHER: usize = 16;
/// How often a lane letting steps gather looks at how many have: their arrival wakes no one.
const GATHER_LOOK: std::time::Duration = std::time::Duration::from_millis(1);
/// The longest a lane lets steps gather. A step of the lane ahead may wait for another node's transaction (a row that
/// transaction inserted under the same key): under a light load, fewer than `GATHER` steps arrive meanwhile, and the
/// node's writes must not all wait with it.
const GATHER_AT_MOST: std::time::Duration = std::time::Duration::from_millis(10);

async fn lane(
    db: DatabaseConnection,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Box<dyn Job>>>>,
    writing: Arc<Writing>,
    max_batch: usize,
    stats: Arc<WriterStats>,
) {
    loop {
        let mut batch = Vec::new();
        let mut waiting = queue.lock().await;
        let Some(first) = waiting.recv().await else { return };
        batch.push(first);
        let gathering = tokio::time::Instant::now();
        loop {
            let done = writing.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let gathered = waiting.len() + 1 >= GATHER || gathering.elapsed() >= GATHER_AT_MOST;
            if writing.lanes.load(Ordering::SeqCst) == 0 || gathered {
                break;
            }
            tokio::select! {
                _ = done => {}
                _ = tokio::time::sleep(GATHER_LOOK) => {}
            }
        }
        while batch.len() < max_batch {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        writing.lanes.fetch_add(1, Ordering::SeqCst);
        drop(waiting);
        // A step that panics takes its batch down (its callers hear that the writer stopped), never the lane.
        let (written, all_written) = oneshot::channel();
        let committing = tokio::spawn(commit(db.clone(), batch, stats.clone(), written));
        let _ = all_written.await;
        writing.lanes.fetch_sub(1, Ordering::SeqCst);
        writing.done.notify_waiters();
        let _ = committing.await;
    }
}

/// Rows a batch's steps appended, and the inbox rows they consumed, written together before its commit. Nothing in a
/// batch reads them back and no key refuses them (a new purchase's key is made for it, and its row is read only by
/// its own actor's later steps, which wait for this batch's commit; an event's `cause` and an outbox message's dedupe
/// key are `ON CONFLICT DO NOTHING`; an invoice is held after its purchase's grant, whose ledger key refuses a second
/// one), so writing them last changes no step's outcome, and a batch of forty steps writes its history in one
/// statement instead of forty.
///
/// A batch's first run, without savepoints, holds two things more (`keyed`): ledger rows, whose unique key may refuse
/// one, and the grants whose purchase may have a dispute lost before them. Should a key refuse a held ledger row, or a
/// grant find such a dispute, the run fails like a failing step and the batch is run again with savepoints, where each
/// step writes its ledger rows and checks its disputes itself: the refusal fails that step alone, and the dispute is
/// debited in its grant's step. A step that sums a ledger counts the rows held before it (`held_credits`).
#[derive(Default)]
struct Held {
    /// A batch's first run: ledger rows and grant checks are held too.
    keyed: bool,
    /// The running step failed before its first write (`refused`).
    refused: bool,
    opened: Vec<purchases::ActiveModel>,
    history: Vec<purchase_events::ActiveModel>,
    events: Vec<platform_events::ActiveModel>,
    processed: Vec<i64>,
    messages: Vec<outbox::ActiveModel>,
    invoices: Vec<Unnumbered>,
    credits: Vec<credit_ledger::ActiveModel>,
    grants: Vec<Uuid>,
}

impl Held {
    fn lengths(&self) -> [usize; 8] {
        let Held { keyed: _, refused: _, opened, history, events, processed, messages, invoices, credits, grants } =
            self;
        [
            opened.len(),
            history.len(),
            events.len(),
            processed.len(),
            messages.len(),
            invoices.len(),
            credits.len(),
            grants.len(),
        ]
    }

    fn truncate(&mut self, [o, h, e, p, m, i, c, g]: [usize; 8]) {
        self.opened.truncate(o);
        self.history.truncate(h);
        self.events.truncate(e);
        self.processed.truncate(p);
        self.messages.truncate(m);
        self.invoices.truncate(i);
        self.credits.truncate(c);
        self.grants.truncate(g);
    }
}

tokio::task_local! {
    /// The held rows of the batch a lane is committing. Every write on a lane's task is its batch's, so a step finds
    /// them here without each step function passing them down.
    static HELD: RefCell<Held>;
}

/// Rows per multi-row `INSERT`: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const ROWS_PER_INSERT: usize = 1000;

/// Holds `row` in `rows` when the batch holds rows of its kind (`keyed` ones only in a first run); else hands it back.
fn hold<R>(row: R, keyed: bool, rows: impl FnOnce(&mut Held) -> &mut Vec<R>) -> Option<R> {
    let mut row = Some(row);
    let _ = HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        if held.keyed || !keyed {
            rows(&mut held).extend(row.take());
        }
    });
    row
}

/// Holds a new purchase's row for its batch's one `INSERT`; outside a batch, hands it back to be inserted now.
pub fn hold_opened(row: purchases::ActiveModel) -> Option<purchases::ActiveModel> {
    hold(row, false, |held| &mut held.opened)
}

/// Holds a purchase's history line for its batch's one `INSERT`; outside a batch, hands it back to be inserted now.
pub fn hold_history(row: purchase_events::ActiveModel) -> Option<purchase_events::ActiveModel> {
    hold(row, false, |held| &mut held.history)
}

/// Holds an event to the platform like `hold_history`.
pub fn hold_event(row: platform_events::ActiveModel) -> Option<platform_events::ActiveModel> {
    hold(row, false, |held| &mut held.events)
}

/// Holds the "processed" mark of the inbox row `id` like `hold_history`.
pub fn hold_processed(id: i64) -> Option<i64> {
    hold(id, false, |held| &mut held.processed)
}

/// Holds an outbox message like `hold_history`.
pub fn hold_message(row: outbox::ActiveModel) -> Option<outbox::ActiveModel> {
    hold(row, false, |held| &mut held.messages)
}

/// Holds an invoice to be numbered with the batch's others, last, like `hold_history`.
pub fn hold_invoice(invoice: Unnumbered) -> Option<Unnumbered> {
    hold(invoice, false, |held| &mut held.invoices)
}

/// Holds a ledger row in a batch's first run; in a run with savepoints, or outside a batch, hands it back.
pub fn hold_credit(row: credit_ledger::ActiveModel) -> Option<credit_ledger::ActiveModel> {
    hold(row, true, |held| &mut held.credits)
}

/// Holds the check for disputes lost before `purchase`'s grant like `hold_credit`; whether it is held.
pub fn hold_grant(purchase: Uuid) -> bool {
    hold(purchase, true, |held| &mut held.grants).is_none()
}

/// What `count` makes of the ledger rows the batch holds so far (0 outside a batch).
pub fn held_credits(count: impl FnOnce(&[credit_ledger::ActiveModel]) -> i64) -> i64 {
    HELD.try_with(|held| count(&held.borrow().credits)).unwrap_or(0)
}

/// Marks the running step's failure, `error`, as a refusal before its first write in this run: a row or lock it
/// asked for first was busy, and asking changed nothing (no aborted transaction, no row written or held). The batch
/// then goes on without it, instead of being rolled back and run again with savepoints; the step is answered `error`.
/// Outside a batch, or for a step that held a row, it changes nothing.
pub fn refused<E>(error: E) -> E {
    let _ = HELD.try_with(|held| held.borrow_mut().refused = true);
    error
}

async fn write_held(txn: &DatabaseTransaction) -> Result<(), Failure> {
    let mut held = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
    // Held keyed rows refused, or a grant's lost dispute found: the batch is run again with savepoints.
    let first_run = held.keyed;
    let keyed = |e: DbErr| if first_run { Failure::Held } else { Failure::Store(e) };
    let backend = txn.get_database_backend();
    let appends = Appends::of(backend, &mut held);
    let grants = held.grants.chunks(ROWS_PER_INSERT).map(crate::store::disputes::lost_undebited);
    let checks: Vec<Statement> = grants.map(|check| check.build(backend)).collect();
    let joined = (backend == DbBackend::Postgres).then(|| appends.joined(&checks)).flatten();
    if let Some(joined) = joined {
        let refused = |e: DbErr| if appends.ledger.is_empty() { Failure::Store(e) } else { keyed(e) };
        let row = txn.query_one_raw(joined).await.map_err(refused)?;
        let lost: Option<String> =
            row.map(|row| row.try_get("", "lost")).transpose().map_err(Failure::Store)?.flatten();
        if lost.is_some() {
            return Err(Failure::Held);
        }
    } else {
        for statement in appends.plain {
            txn.execute_raw(statement).await.map_err(Failure::Store)?;
        }
        for statement in appends.ledger {
            txn.execute_raw(statement).await.map_err(keyed)?;
        }
        for check in checks {
            if txn.query_one_raw(check).await.map_err(Failure::Store)?.is_some() {
                return Err(Failure::Held);
            }
        }
    }
    // Last: no lock is waited for while the invoice counter is held.
    let invoices = crate::store::invoices::number(txn, held.invoices).await.map_err(Failure::Store)?;
    for statement in inserts(backend, invoices, None) {
        txn.execute_raw(statement).await.map_err(Failure::Store)?;
    }
    Ok(())
}

/// The writes of a batch's held rows, one statement per table (more past `ROWS_PER_INSERT` rows): the `plain` ones,
/// which no key refuses, and the `ledger` rows, which a key may.
struct Appends {
    plain: Vec<Statement>,
    ledger: Vec<Statement>,
}

/// The most values one joined statement binds, well under PostgreSQL's 65,535; a batch with more (hundreds of steps)
/// writes its rows one statement per table.
const JOINED_VALUES: usize = 30_000;

impl Appends {
    fn of(backend: DbBackend, held: &mut Held) -> Self {
        use crate::store::webhooks::{InboxStatus, marked};
        use std::mem::take;
        let mut plain = inserts(backend, take(&mut held.opened), None);
        plain.extend(inserts(backend, take(&mut held.history), None));
        plain.extend(inserts(backend, take(&mut held.events), Some(crate::store::events::once_per_cause())));
        plain.extend(held.processed.chunks(ROWS_PER_INSERT).map(|ids| {
            webhook_events::Entity::update_many()
                .set(marked(InboxStatus::Processed, None, chrono::Utc::now()))
                .filter(webhook_events::Column::Id.is_in(ids.iter().copied()))
                .build(backend)
        }));
        plain.extend(inserts(backend, take(&mut held.messages), Some(crate::store::outbox::once_per_dedupe_key())));
        Self { plain, ledger: inserts(backend, take(&mut held.credits), None) }
    }

    /// On PostgreSQL, every write and the grants' dispute `checks` (each finding a lost dispute's id, or nothing) as
    /// one statement, one round trip instead of one per table: the writes as data-modifying `WITH` queries, which
    /// PostgreSQL runs whether or not the query reads them, and the checks' first finding as its one value, `lost`.
    /// None when there is nothing to write or check, or too many values for one statement.
    fn joined(&self, checks: &[Statement]) -> Option<Statement> {
        let writes: Vec<&Statement> = self.plain.iter().chain(&self.ledger).collect();
        let values = |s: &Statement| s.values.as_ref().map_or(0, |v| v.0.len());
        let bound = writes.iter().copied().chain(checks).map(values).sum::<usize>();
        if (writes.is_empty() && checks.is_empty()) || bound > JOINED_VALUES {
            return None;
        }
        let mut sql = String::new();
        let mut bound = Vec::with_capacity(bound);
        let mut append = |sql: &mut String, statement: &Statement| {
            sql.push_str(&shifted(&statement.sql, bound.len()));
            bound.extend(statement.values.iter().flat_map(|v| v.0.iter().cloned()));
        };
        for (n, write) in writes.iter().enumerate() {
            sql.push_str(if n == 0 { "WITH " } else { ", " });
            sql.push_str(&format!("w{n} AS ("));
            append(&mut sql, write);
            sql.push(')');
        }
        sql.push_str(" SELECT COALESCE(");
        for check in checks {
            sql.push('(');
            append(&mut sql, check);
            sql.push_str("), ");
        }
        sql.push_str("NULL) AS lost");
        Some(Statement::from_sql_and_values(DbBackend::Postgres, sql, bound))
    }
}

/// PostgreSQL's `sql` with its placeholders `$1`, `$2`… numbered on from `after`, to follow a statement binding that
/// many values. sea-query binds every value, so a `$` followed by digits is never anything but a placeholder.
fn shifted(sql: &str, after: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + after).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// `rows` as multi-row `INSERT`s of up to `ROWS_PER_INSERT` rows each.
fn inserts<A>(backend: DbBackend, rows: Vec<A>, on_conflict: Option<OnConflict>) -> Vec<Statement>
where
    A: ActiveModelTrait,
{
    let mut rows = rows.into_iter().peekable();
    let mut statements = Vec::new();
    while rows.peek().is_some() {
        let insert = A::Entity::insert_many(rows.by_ref().take(ROWS_PER_INSERT));
        let insert = match &on_conflict {
            Some(on_conflict) => insert.on_conflict(on_conflict.clone()),
            None => insert,
        };
        statements.push(insert.build(backend));
    }
    statements
}

/// One batch: its steps, the held rows (then `written` hears that the batch is written), one commit, then the batch
/// counted in `stats` and the answers (so a caller that has its answer finds its batch counted).
async fn commit(
    db: DatabaseConnection,
    batch: Vec<Box<dyn Job>>,
    stats: Arc<WriterStats>,
    written: oneshot::Sender<()>,
) {
    HELD.scope(RefCell::default(), commit_held(db, batch, stats, written)).await
}

/// Why a run of a batch did not commit.
enum Failure {
    /// A step failed outside a savepoint: the batch is run again with one per step.
    Step,
    /// The rows or checks held from a first run (`Held::keyed`) failed: the batch is run again with savepoints, where
    /// each step writes and checks its own.
    Held,
    Store(DbErr),
}

async fn commit_held(
    db: DatabaseConnection,
    mut batch: Vec<Box<dyn Job>>,
    stats: Arc<WriterStats>,
    written: oneshot::Sender<()>,
) {
    // A savepoint costs each step a round trip to its connection (sqlx's thread on SQLite, the server on
    // PostgreSQL), a third of a purchase's. Steps rarely fail, so the batch first runs without them; when one fails,
    // that run is rolled back and the batch run again with a savepoint per step, so that step fails alone. A step
    // alone in its batch needs no second run: its rolled-back failure is its answer. Held keyed rows refused (`Held`)
    // are no step's failure yet, so their batch, lone step or not, is run again.
    let mut written = Some(written);
    let mut outcome = run(&db, &mut batch, false, &mut written).await;
    let mut committed = outcome.is_ok();
    let again = match outcome {
        Err(Failure::Step) => batch.len() > 1,
        Err(Failure::Held) => true,
        _ => false,
    };
    if again {
        stats.replayed.fetch_add(1, Ordering::Relaxed);
        outcome = run(&db, &mut batch, true, &mut written).await;
        committed = outcome.is_ok();
    } else if matches!(outcome, Err(Failure::Step)) {
        outcome = Ok(());
    }
    drop(written);
    if committed {
        let size = batch.len() as u64;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.steps.fetch_add(size, Ordering::Relaxed);
        stats.largest_batch.fetch_max(size, Ordering::Relaxed);
    }
    let message = match outcome {
        Ok(()) => None,
        Err(Failure::Store(e)) => Some(e.to_string()),
        Err(Failure::Step) => Some("a step failed with no savepoint to undo it".to_owned()),
        Err(Failure::Held) => Some("the batch's held rows were refused".to_owned()),
    };
    for job in batch {
        job.finish(message.as_ref().map_or(Ok(()), |m| Err(DbErr::Custom(m.clone()))));
    }
}

/// Runs every step of the batch in one transaction, each in a savepoint of its own when `savepoints`, writes the held
/// rows, tells `written`, and commits.
async fn run(
    db: &DatabaseConnection,
    batch: &mut [Box<dyn Job>],
    savepoints: bool,
    written: &mut Option<oneshot::Sender<()>>,
) -> Result<(), Failure> {
    HELD.with(|held| *held.borrow_mut() = Held { keyed: !savepoints, ..Held::default() });
    // SQLite's writer connection (`store::direct`) takes its transaction's ends as statements, so their errors reach
    // the batch; `IMMEDIATE` takes the write lock at once, waiting for a writer outside the batch if there is one.
    let statements = crate::store::direct::transaction_statements(db);
    let txn = db.begin().await.map_err(Failure::Store)?;
    if statements {
        txn.execute_unprepared("BEGIN IMMEDIATE").await.map_err(Failure::Store)?;
    }
    match run_in(&txn, batch, savepoints).await {
        Ok(()) => {
            written.take();
            if statements {
                txn.execute_unprepared("COMMIT").await.map_err(Failure::Store)?;
            }
            txn.commit().await.map_err(Failure::Store)
        }
        Err(failure) => {
            let _ = txn.rollback().await;
            Err(failure)
        }
    }
}

async fn run_in(txn: &DatabaseTransaction, batch: &mut [Box<dyn Job>], savepoints: bool) -> Result<(), Failure> {
    // With savepoints, each step runs in the savepoint `step`. Closing one step's savepoint goes to the database with
    // the opening of the next, as one request, so a step costs one round trip instead of two.
    const RELEASE: &str = "RELEASE SAVEPOINT step; ";
    const ROLL_BACK: &str = "ROLLBACK TO SAVEPOINT step; RELEASE SAVEPOINT step; ";
    let mut close = "";
    for job in batch.iter_mut() {
        if savepoints {
            txn.execute_unprepared(&format!("{close}SAVEPOINT step")).await.map_err(Failure::Store)?;
        }
        let mark = HELD.with(|held| {
            let mut held = held.borrow_mut();
            held.refused = false;
            held.lengths()
        });
        let succeeded = job.run(txn).await;
        // A step refused before it wrote anything leaves nothing to undo.
        let untouched = HELD.with(|held| held.borrow().refused && held.borrow().lengths() == mark);
        close = match (succeeded || untouched, savepoints) {
            (true, _) => RELEASE,
            (false, true) => {
                HELD.with(|held| held.borrow_mut().truncate(mark));
                ROLL_BACK
            }
            (false, false) => return Err(Failure::Step),
        };
    }
    // The last step's savepoint is left to the commit, which releases it; a failed step's is rolled back first.
    if close == ROLL_BACK {
        txn.execute_unprepared(ROLL_BACK).await.map_err(Failure::Store)?;
    }
    write_held(txn).await
}

#[cfg(test)]
mod tests {
    use super::Writer;
    use sea_orm::{ConnectionTrait, DbErr, Statement};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use tokio::sync::Notify;

    async fn insert(txn: &sea_orm::DatabaseTransaction, id: i64) -> Result<(), DbErr> {
        let sql =
            Statement::from_sql_and_values(txn.get_database_backend(), "INSERT INTO t (id) VALUES (?)", [id.into()]);
        txn.execute_raw(sql).await.map(|_| ())
    }

    /// A fresh SQLite database holding the test table `t`, kept while the directory is, and its URL.
    async fn table_t() -> (tempfile::TempDir, String, sea_orm::DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db?mode=rwc", dir.path().display());
        let db = crate::store::connect(&url, 1).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)").await.unwrap();
        (dir, url, db)
    }

    /// A writer on the database at `url` as the service runs one on SQLite: on its own connection (`store::direct`).
    fn direct_writer(url: &str) -> Writer {
        let statements = std::sync::Arc::default();
        Writer::start(crate::store::direct::connect(url, statements).unwrap(), 1, 16).unwrap()
    }

    /// A writer on a fresh SQLite database holding the test table `t`, kept while the directory is.
    async fn with_table_t() -> (tempfile::TempDir, sea_orm::DatabaseConnection, Writer) {
        let (dir, url, db) = table_t().await;
        let writer = direct_writer(&url);
        (dir, db, writer)
    }

    /// The ids in the test table `t`.
    async fn ids(db: &sea_orm::DatabaseConnection) -> Vec<i64> {
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id FROM t")).await;
        rows.unwrap().iter().map(|r| r.try_get("", "id").unwrap()).collect()
    }

    /// A writer on a fresh, migrated SQLite database, kept while the directory is.
    async fn migrated() -> (tempfile::TempDir, sea_orm::DatabaseConnection, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db?mode=rwc", dir.path().display());
        let db = crate::store::connect(&url, 1).await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        let writer = direct_writer(&url);
        (dir, db, writer)
    }

    // Four steps land in one batch: the second and the last write, then fail on a duplicate key. The batch's first
    // run, without savepoints, is rolled back at the second step and the batch run again with them: each failing step
    // alone is rolled back and fails; the first and the third commit, in the batch's one transaction.
    #[tokio::test]
    async fn a_failing_step_rolls_back_alone_and_the_batch_commits() {
        let (_dir, db, writer) = with_table_t().await;
        let (release, holder) = hold_a_lane(&writer).await;
        let (first, second, third, last, ()) = tokio::join!(
            writer.write(|txn| Box::pin(insert(txn, 1))),
            writer.write(|txn| Box::pin(async move {
                insert(txn, 2).await?;
                insert(txn, 1).await
            })),
            writer.write(|txn| Box::pin(insert(txn, 3))),
            writer.write(|txn| Box::pin(async move {
                insert(txn, 4).await?;
                insert(txn, 3).await
            })),
            async { release.notify_one() },
        );
        assert!(holder.await.unwrap().is_ok());
        assert!(first.is_ok() && third.is_ok(), "{first:?} {third:?}");
        assert!(second.is_err() && last.is_err(), "the duplicate key fails its own step");
        assert_eq!(ids(&db).await, vec![1, 3], "the failed steps' first writes were rolled back with them");
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 2, "the four steps shared one commit");
        assert_eq!(writer.stats.steps.load(Ordering::Relaxed), 5, "the four and the one holding the lane ahead");
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 1, "run first without savepoints, then with them");
    }

    // Steps that all succeed are written in one run; a step that fails alone in its batch is answered by its
    // rolled-back run, with no second one.
    #[tokio::test]
    async fn a_batch_runs_again_only_when_one_of_several_steps_fails() {
        use std::sync::atomic::AtomicUsize;
        let (_dir, db, writer) = with_table_t().await;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = |id: i64, then: Option<i64>| {
            let runs = runs.clone();
            writer.write(move |txn| {
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    insert(txn, id).await?;
                    match then {
                        Some(id) => insert(txn, id).await,
                        None => Ok(()),
                    }
                })
            })
        };
        let (release, holder) = hold_a_lane(&writer).await;
        let (a, b, ()) = tokio::join!(counted(1, None), counted(2, None), async { release.notify_one() });
        assert!(holder.await.unwrap().is_ok() && a.is_ok() && b.is_ok());
        assert!(counted(3, Some(1)).await.is_err(), "the duplicate key fails the step");
        assert_eq!(ids(&db).await, vec![1, 2], "the failed step's first write was rolled back");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "each step ran once");
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 0);
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 2, "the lone failed step committed nothing");
    }

    // A step refused before its first write fails alone without its batch being run again; a step that held a row
    // before saying so is undone as any failing step, by running its batch again with savepoints.
    #[tokio::test]
    async fn a_step_refused_before_writing_fails_without_running_its_batch_again() {
        let (_dir, db, writer) = with_table_t().await;
        let refused =
            || writer.write(|_| Box::pin(async { Err::<(), _>(super::refused(DbErr::Custom("busy".into()))) }));
        let (first, second, third) = tokio::join!(
            writer.write(|txn| Box::pin(insert(txn, 1))),
            refused(),
            writer.write(|txn| Box::pin(insert(txn, 2)))
        );
        assert!(first.is_ok() && second.is_err() && third.is_ok());
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 0, "nothing to undo: the batch ran once");
        let held_first = writer.write(|_| {
            Box::pin(async move {
                assert!(super::hold_processed(7).is_none(), "held in the batch");
                Err::<(), _>(super::refused(DbErr::Custom("too late".into())))
            })
        });
        let (release, holder) = hold_a_lane(&writer).await;
        let (late, other, ()) =
            tokio::join!(held_first, writer.write(|txn| Box::pin(insert(txn, 3))), async { release.notify_one() });
        assert!(holder.await.unwrap().is_ok());
        assert!(late.is_err() && other.is_ok());
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 1, "a step that held a row is undone by a rerun");
        assert_eq!(ids(&db).await, vec![1, 2, 3]);
    }

    /// Sends a step that holds its lane, its transaction open, until the returned `Notify` is notified; it writes
    /// nothing, so it serves any schema. Returns once the step is running. Steps sent meanwhile queue behind it and
    /// form the lane's next batch together, however the writer's thread is scheduled.
    async fn hold_a_lane(writer: &Writer) -> (Arc<Notify>, tokio::task::JoinHandle<Result<(), DbErr>>) {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (running, released) = (started.clone(), release.clone());
        let lane = writer.clone();
        let held = tokio::spawn(async move {
            let step = super::step(move |_| {
                Box::pin(async move {
                    started.notify_one();
                    released.notified().await;
                    Ok(())
                })
            });
            lane.write(step).await
        });
        running.notified().await;
        (release, held)
    }

    // Two lanes: while the first writes a step that waits, five steps arrive. The second lane lets them gather until
    // the first has written its batch, then takes all five as one batch, instead of taking the first alone.
    #[tokio::test]
    async fn steps_arriving_while_a_lane_writes_gather_into_one_batch() {
        // Several lanes are PostgreSQL's; here they share sqlx's one SQLite connection, taking turns at it.
        let (_dir, _url, db) = table_t().await;
        let writer = Writer::start(db, 2, 16).unwrap();
        let (release, first) = hold_a_lane(&writer).await;
        let (a, b, c, d, e, ()) = tokio::join!(
            writer.write(|txn| Box::pin(insert(txn, 1))),
            writer.write(|txn| Box::pin(insert(txn, 2))),
            writer.write(|txn| Box::pin(insert(txn, 3))),
            writer.write(|txn| Box::pin(insert(txn, 4))),
            writer.write(|txn| Box::pin(insert(txn, 5))),
            async { release.notify_one() },
        );
        assert!(first.await.unwrap().is_ok() && [a, b, c, d, e].iter().all(Result::is_ok));
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 2, "the five steps shared one commit");
        assert_eq!(writer.stats.largest_batch.load(Ordering::Relaxed), 5);
    }

    // The lane ahead waits inside its step (as for another node's row) and nothing else arrives: the one step sent
    // meanwhile is written and committed by the other lane after a short gathering, not held until the first is done.
    #[tokio::test]
    async fn a_step_behind_a_waiting_lane_is_not_held_for_long() {
        let dir = tempfile::tempdir().unwrap();
        // Two connections, which `store::connect` never opens on SQLite, so that the lanes' transactions can be open
        // at once (the one ahead holds its transaction open until it is released).
        let url = format!("sqlite://{}/w.db?mode=rwc", dir.path().display());
        let db = sea_orm::Database::connect(sea_orm::ConnectOptions::new(url).max_connections(2).to_owned());
        let db = db.await.unwrap();
        db.execute_unprepared("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY)").await.unwrap();
        let writer = Writer::start(db.clone(), 2, 16).unwrap();
        let (release, first) = hold_a_lane(&writer).await;
        let behind = tokio::time::timeout(Duration::from_secs(5), writer.write(|txn| Box::pin(insert(txn, 1))));
        assert!(behind.await.expect("the step waited for the lane ahead").is_ok());
        release.notify_one();
        assert!(first.await.unwrap().is_ok());
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 2);
    }

    // PostgreSQL's joined statement: each write a `WITH` query, its placeholders numbered on after the ones before,
    // and the checks' first finding its value.
    #[test]
    fn a_batchs_appends_join_into_one_statement_with_their_values_in_order() {
        use super::{Appends, shifted};
        let postgres = sea_orm::DbBackend::Postgres;
        assert_eq!(shifted("a = $1 AND b IN ($2, $10) AND c = '$'", 4), "a = $5 AND b IN ($6, $14) AND c = '$'");
        let statement = |sql: &str, values: Vec<sea_orm::Value>| Statement::from_sql_and_values(postgres, sql, values);
        let appends = Appends {
            plain: vec![statement("INSERT INTO h (x, y) VALUES ($1, $2)", vec![1.into(), 2.into()])],
            ledger: vec![statement("INSERT INTO l (x) VALUES ($1)", vec![3.into()])],
        };
        let check = statement("SELECT id FROM d WHERE p IN ($1) LIMIT $2", vec![4.into(), 1u64.into()]);
        let joined = appends.joined(std::slice::from_ref(&check)).unwrap();
        assert_eq!(
            joined.sql,
            "WITH w0 AS (INSERT INTO h (x, y) VALUES ($1, $2)), w1 AS (INSERT INTO l (x) VALUES ($3)) \
             SELECT COALESCE((SELECT id FROM d WHERE p IN ($4) LIMIT $5), NULL) AS lost"
        );
        assert_eq!(joined.values.unwrap().0, vec![1.into(), 2.into(), 3.into(), 4.into(), 1u64.into()]);
        let nothing = Appends { plain: vec![], ledger: vec![] };
        assert!(nothing.joined(&[]).is_none(), "nothing to write or check is no statement");
    }

    // Events held by three steps sent together (one batch, as the test above shows): the failed step's is dropped
    // with its savepoint, the others are written at the commit, and the one recorded twice (same cause) once.
    #[tokio::test]
    async fn held_rows_are_written_at_the_commit_except_a_failed_steps() {
        use crate::domain::event::EventType;
        use crate::store::events;
        let (_dir, db, writer) = migrated().await;
        let record = |cause: &'static str, fails: bool| {
            writer.write(move |txn| {
                Box::pin(async move {
                    events::record(txn, EventType::PurchaseFailed, cause.into(), None, serde_json::json!({})).await?;
                    if fails { Err(DbErr::Custom("refused".into())) } else { Ok(()) }
                })
            })
        };
        let (first, second, third) = tokio::join!(record("a", false), record("b", true), record("a", false));
        assert!(first.is_ok() && second.is_err() && third.is_ok(), "{first:?} {second:?} {third:?}");
        let rows =
            db.query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT cause FROM platform_events"));
        let causes: Vec<String> = rows.await.unwrap().iter().map(|r| r.try_get("", "cause").unwrap()).collect();
        assert_eq!(causes, vec!["a".to_owned()]);
    }

    // Ledger rows are held in a batch's first run, and a take later in the batch counts the ones held before it. When
    // a held row's key refuses it, the batch is run again with savepoints: that step alone fails, the others commit.
    #[tokio::test]
    async fn held_ledger_rows_count_in_the_batch_and_a_refused_one_fails_its_step_alone() {
        use crate::domain::ids::ClientId;
        use crate::store::ledger::{self, Taken};
        let (_dir, db, writer) = migrated().await;
        let client = ClientId::parse("c1").unwrap();
        let grant = |source: &'static str| {
            let client = client.clone();
            writer.write(move |txn| {
                Box::pin(async move { ledger::append(txn, &client, source, "purchase_grant", 10).await })
            })
        };
        let take = |credits: i64| {
            let client = client.clone();
            writer.write(move |txn| {
                Box::pin(async move {
                    match ledger::take(txn, &client, &format!("spend:{credits}"), "spend", credits).await? {
                        Taken::After(balance) => Ok(balance),
                        Taken::Short(balance) => Err(DbErr::Custom(format!("short: {balance}"))),
                    }
                })
            })
        };
        let (release, holder) = hold_a_lane(&writer).await;
        let (granted, taken, ()) = tokio::join!(grant("purchase:a"), take(4), async { release.notify_one() });
        assert!(holder.await.unwrap().is_ok() && granted.is_ok());
        assert_eq!(taken.unwrap(), 6, "the take counted the grant held before it");
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 0);

        let (release, holder) = hold_a_lane(&writer).await;
        let (again, other, taken, ()) =
            tokio::join!(grant("purchase:a"), grant("purchase:b"), take(3), async { release.notify_one() });
        assert!(holder.await.unwrap().is_ok());
        assert!(again.is_err(), "the ledger's key refuses a second grant of one purchase");
        assert!(other.is_ok());
        assert_eq!(taken.unwrap(), 13);
        assert_eq!(writer.stats.replayed.load(Ordering::Relaxed), 1, "the refusal ran the batch again");
        assert_eq!(ledger::balance(&db, &client).await.unwrap(), 13);
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 4, "two batches, each behind a lane held ahead");
    }

    // Invoices issued by three steps of one batch, the second failing after its issue: the other two are numbered
    // 1 and 2, with no gap for the failed one, and each document carries its row's number.
    #[tokio::test]
    async fn invoices_held_by_a_batch_are_numbered_without_a_gap() {
        use crate::domain::ids::ClientId;
        use crate::domain::purchase::tests::{package, policy};
        use crate::domain::purchase::{Checkout, Purchase};
        let (_dir, db, writer) = migrated().await;
        let (package, policy) = (package(), policy());
        let issue = |fails: bool| {
            let client = ClientId::parse("c1").unwrap();
            let id = uuid::Uuid::new_v4();
            let purchase =
                Purchase::open(id, client, &package, Checkout::default(), chrono::Utc::now(), &policy).purchase;
            writer.write(move |txn| {
                Box::pin(async move {
                    crate::store::invoices::issue(txn, &Default::default(), &purchase).await?;
                    if fails { Err(DbErr::Custom("refused".into())) } else { Ok(id) }
                })
            })
        };
        let (first, second, third) = tokio::join!(issue(false), issue(true), issue(false));
        let (first, third) = (first.unwrap(), third.unwrap());
        assert!(second.is_err());
        let sql = "SELECT number, purchase_id, document FROM invoices ORDER BY number";
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
        let numbered: Vec<(i64, uuid::Uuid, i64)> = rows
            .iter()
            .map(|r| {
                let document: serde_json::Value = r.try_get("", "document").unwrap();
                (
                    r.try_get("", "number").unwrap(),
                    r.try_get("", "purchase_id").unwrap(),
                    document["number"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(numbered, vec![(1, first, 1), (2, third, 2)]);
    }
}
