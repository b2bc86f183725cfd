//! Group commit: the steps of many actors, written in one transaction and made durable by one commit.
//!
//! A caller hands `write` its step as a function of a transaction and an input. A lane takes every step waiting (up
//! to `max_batch`), opens one transaction, runs the steps, commits once, and only then answers each caller: nothing is
//! answered before it is durable. A failing step rolls back alone and the others stay: when one fails, the batch is
//! rolled back and run again with a savepoint per step. On SQLite one lane owns the one write connection; on
//! PostgreSQL several lanes let batches overlap on the pool. Every step still carries its own optimistic `version`
//! check, so batching assumes nothing about which process owns a row.
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

pub type StepFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// A step as a lane sees it: run it (again, when its batch is rolled back and run with savepoints), then answer.
trait Job: Send {
    /// Runs the step in `txn`; whether it succeeded.
    fn run<'t>(&'t mut self, txn: &'t DatabaseTransaction) -> StepFuture<'t, bool>;
    /// Answers the caller once the batch's commit is known: the step's own result if it committed, else the error.
    fn finish(self: Box<Self>, commit: Result<(), DbErr>);
}

/// A caller's step: its input, the function of a transaction and that input, and its last result.
struct Pending<S, F, T, E> {
    input: S,
    step: F,
    result: Option<Result<T, E>>,
    answer: oneshot::Sender<Result<T, E>>,
}

impl<S, F, T, E> Job for Pending<S, F, T, E>
where
    S: Send + Sync,
    F: for<'t> Fn(&'t DatabaseTransaction, &'t S) -> StepFuture<'t, Result<T, E>> + Send,
    T: Send,
    E: From<DbErr> + Send,
{
    fn run<'t>(&'t mut self, txn: &'t DatabaseTransaction) -> StepFuture<'t, bool> {
        let Self { input, step, result, .. } = self;
        let ran = step(txn, input);
        Box::pin(async move {
            let ran = ran.await;
            let succeeded = ran.is_ok();
            *result = Some(ran);
            succeeded
        })
    }

    fn finish(self: Box<Self>, commit: Result<(), DbErr>) {
        let result = self.result.unwrap_or_else(|| Err(DbErr::Custom("the step did not run".into()).into()));
        let _ = self.answer.send(commit.map_err(E::from).and(result));
    }
}

/// Batches and steps committed, for `/metrics` and `purser bench`.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub steps: AtomicU64,
    pub largest_batch: AtomicU64,
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
        let stats = Arc::new(WriterStats::default());
        // sqlx runs each SQLite statement on the connection's own thread and wakes the waiting task from there. A
        // task on the shared runtime then waits in its global queue behind request handlers, and the lane waits so on
        // every statement of every batch; on a runtime of its own it is woken at once. PostgreSQL's connections are
        // driven by the shared runtime's reactor, so there the lanes stay on it.
        let own_thread = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
        for n in 0..lanes.max(1) {
            let lane = lane(db.clone(), queue.clone(), max_batch.max(1), stats.clone());
            if !own_thread {
                tokio::spawn(lane);
                continue;
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("purser-writer-{n}")).spawn(move || runtime.block_on(lane))?;
        }
        Ok(Self { jobs, stats })
    }

    /// Runs `step` on `input` in the next batch and answers once that batch is durable. An `Err` from `step` rolls
    /// back its writes alone; a failed commit fails every step of the batch. The step may run more than once (the
    /// runs before the last are rolled back), so it is a function of the transaction and its input only.
    pub async fn write<S, T, E, F>(&self, input: S, step: F) -> Result<T, E>
    where
        S: Send + Sync + 'static,
        F: for<'t> Fn(&'t DatabaseTransaction, &'t S) -> StepFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job = Box::new(Pending { input, step, result: None, answer });
        let stopped = || DbErr::Custom("the store's writer has stopped".into());
        self.jobs.send(job).map_err(|_| E::from(stopped()))?;
        answered.await.unwrap_or_else(|_| Err(E::from(stopped())))
    }
}

async fn lane(
    db: DatabaseConnection,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Box<dyn Job>>>>,
    max_batch: usize,
    stats: Arc<WriterStats>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            batch.push(first);
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let size = batch.len() as u64;
        // A step that panics takes its batch down (its callers hear that the writer stopped), never the lane.
        let committed = tokio::spawn(commit(db.clone(), batch, stats.clone())).await;
        if matches!(committed, Ok(true)) {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.steps.fetch_add(size, Ordering::Relaxed);
            stats.largest_batch.fetch_max(size, Ordering::Relaxed);
        }
    }
}

/// Why a run of a batch did not commit.
enum Failure {
    /// A step failed outside a savepoint: the batch is run again with one per step.
    Step,
    Store(DbErr),
}

/// One batch, one commit, then the answers. Whether the batch committed.
async fn commit(db: DatabaseConnection, mut batch: Vec<Box<dyn Job>>, stats: Arc<WriterStats>) -> bool {
    // Steps rarely fail, so the batch first runs them straight in its transaction, which saves the two statements a
    // savepoint costs each step. When one fails, the batch is rolled back and run again with a savepoint per step, so
    // that step fails alone; a step alone in its batch needs no second run, its rolled-back failure is its answer.
    let mut outcome = run(&db, &mut batch, false).await;
    if matches!(outcome, Err(Failure::Step)) {
        outcome = match batch.len() {
            1 => Ok(()),
            _ => {
                stats.replayed.fetch_add(1, Ordering::Relaxed);
                run(&db, &mut batch, true).await
            }
        };
    }
    let message = match &outcome {
        Ok(()) => None,
        Err(Failure::Store(e)) => Some(e.to_string()),
        Err(Failure::Step) => Some("a step failed with no savepoint to undo it".to_owned()),
    };
    for job in batch {
        job.finish(message.as_ref().map_or(Ok(()), |m| Err(DbErr::Custom(m.clone()))));
    }
    outcome.is_ok()
}

/// Runs every step of the batch in one transaction, each in a savepoint of its own when `savepoints`, and commits.
async fn run(db: &DatabaseConnection, batch: &mut [Box<dyn Job>], savepoints: bool) -> Result<(), Failure> {
    let txn = db.begin().await.map_err(Failure::Store)?;
    for job in batch.iter_mut() {
        let ran = match savepoints {
            true => in_savepoint(&txn, job.as_mut()).await,
            false => job.run(&txn).await.then_some(()).ok_or(Failure::Step),
        };
        if let Err(failure) = ran {
            // The steps after it are left unrun; the caller runs them again or tells them the write did not happen.
            let _ = txn.rollback().await;
            return Err(failure);
        }
    }
    txn.commit().await.map_err(Failure::Store)
}

async fn in_savepoint(txn: &DatabaseTransaction, job: &mut dyn Job) -> Result<(), Failure> {
    let savepoint = txn.begin().await.map_err(Failure::Store)?;
    let closed = if job.run(&savepoint).await { savepoint.commit().await } else { savepoint.rollback().await };
    closed.map_err(Failure::Store)
}

#[cfg(test)]
mod tests {
    use super::Writer;
    use sea_orm::{ConnectionTrait, DbErr, Statement};
    use std::sync::atomic::Ordering;

    async fn insert(txn: &sea_orm::DatabaseTransaction, id: i64) -> Result<(), DbErr> {
        let sql =
            Statement::from_sql_and_values(txn.get_database_backend(), "INSERT INTO t (id) VALUES (?)", [id.into()]);
        txn.execute_raw(sql).await.map(|_| ())
    }

    // Three steps land in one batch: the second writes, then fails on a duplicate key. The batch is run again with
    // savepoints: that step alone is rolled back and fails; the first and the third commit, in one transaction.
    #[tokio::test]
    async fn a_failing_step_rolls_back_alone_and_the_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db?mode=rwc", dir.path().display());
        let db = crate::store::connect(&url, 1).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)").await.unwrap();
        let writer = Writer::start(db.clone(), 1, 16).unwrap();
        let (first, second, third) = tokio::join!(
            writer.write(1, |txn, id| Box::pin(insert(txn, *id))),
            writer.write((), |txn, ()| Box::pin(async move {
                insert(txn, 2).await?;
                insert(txn, 1).await
            })),
            writer.write(3, |txn, id| Box::pin(insert(txn, *id))),
        );
        assert!(first.is_ok() && third.is_ok(), "{first:?} {third:?}");
        assert!(second.is_err(), "the duplicate key fails its own step");
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id FROM t")).await;
        let ids: Vec<i64> = rows.unwrap().iter().map(|r| r.try_get("", "id").unwrap()).collect();
        assert_eq!(ids, vec![1, 3], "the failed step's first write was rolled back with it");
        assert_eq!(writer.stats.batches.load(Ordering::Relaxed), 1, "the three steps shared one commit");
        assert_eq!(writer.stats.steps.load(Ordering::Relaxed), 3);
        assert_eq!(
            writer.stats.replayed.load(Ordering::Relaxed),
            1,
            "run first without savepoints, then again with them"
        );
    }
}
