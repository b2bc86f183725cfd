//! Pauses of payment processing, set by admins (and later by the fraud and breach guards): persisted, so a restart
//! keeps them, and broadcast on a watch channel, so the API refuses new checkouts at once and actors hold their
//! provider calls until the resume. Webhooks are still accepted while paused: nothing is lost.
use crate::domain::purchase::Rail;
use crate::store::alerts::Alert;
use crate::store::controls;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Platform,
    Card,
    Paypal,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Card => "card",
            Self::Paypal => "paypal",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Platform, Self::Card, Self::Paypal].into_iter().find(|s| s.as_str() == text)
    }

    /// The scope that pauses `rail` alone.
    pub fn of(rail: Rail) -> Self {
        match rail {
            Rail::Card => Self::Card,
            Rail::Paypal => Self::Paypal,
        }
    }

    fn covers(self, rail: Rail) -> bool {
        matches!((self, rail), (Self::Platform, _) | (Self::Card, Rail::Card) | (Self::Paypal, Rail::Paypal))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    pub scope: Scope,
    pub reason: String,
    pub by: String,
    pub since: DateTime<Utc>,
}

pub struct Pauses {
    db: DatabaseConnection,
    current: watch::Sender<Vec<Pause>>,
}

async fn read(db: &DatabaseConnection) -> Result<Vec<Pause>, DbErr> {
    let rows = controls::paused(db).await?;
    let mut pauses: Vec<Pause> = rows
        .into_iter()
        .filter_map(|row| {
            Some(Pause {
                scope: Scope::parse(&row.scope)?,
                reason: row.reason,
                by: row.changed_by,
                since: row.changed_at,
            })
        })
        .collect();
    pauses.sort_by_key(|p| p.scope.as_str());
    Ok(pauses)
}

/// Reads the persisted pauses back whenever a node announces a change (PostgreSQL's LISTEN/NOTIFY), and every `every`
/// as the backstop (a notification missed while the listening connection was down, or none at all behind PgBouncer):
/// a pause set on one node reaches the others (issue 16).
#[derive(Clone)]
pub struct PauseWatcher {
    pub pauses: std::sync::Arc<Pauses>,
    pub every: std::time::Duration,
}

pub struct Refresh;

impl ractor::Actor for PauseWatcher {
    type Msg = Refresh;
    /// The task listening for announcements. It holds one of the pool's connections, so it goes with the state:
    /// a killed actor gets no `post_stop` (ractor skips it), and a detached task would keep that connection for
    /// good, one more with each crash, until the pool had none left for the requests.
    type State = Option<tokio_util::task::AbortOnDropHandle<()>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ractor::ActorRef<Refresh>,
        _: (),
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        myself.send_interval(self.every, || Refresh);
        let listener = match controls::listen(&self.pauses.db).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "pauses are polled only: no LISTEN connection");
                None
            }
        };
        Ok(listener.map(|mut listener| {
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    // `None`: the connection dropped (and reconnects); what it missed is read back all the same.
                    match listener.try_recv().await {
                        Ok(_) => {
                            if myself.cast(Refresh).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the pauses' LISTEN connection failed; polling meanwhile");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            }))
        }))
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<Refresh>,
        _: Refresh,
        _: &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if let Err(e) = self.pauses.refresh().await {
            tracing::warn!(error = %e, "pauses not read back this time");
        }
        Ok(())
    }
}

impl Pauses {
    pub async fn load(db: DatabaseConnection) -> Result<Self, DbErr> {
        let current = read(&db).await?;
        Ok(Self { db, current: watch::Sender::new(current) })
    }

    /// Reads the pauses back from the database: another node (or an operator's SQL) may have set or lifted one. The
    /// watcher calls it every second, so a pause reaches every node within about a second.
    pub async fn refresh(&self) -> Result<(), DbErr> {
        let stored = read(&self.db).await?;
        // Compared without the time, which the database may keep at a coarser precision than the clock gave it.
        let seen =
            |pauses: &[Pause]| pauses.iter().map(|p| (p.scope, p.reason.clone(), p.by.clone())).collect::<Vec<_>>();
        self.current.send_if_modified(|current| {
            let changed = seen(current) != seen(&stored);
            if changed {
                tracing::warn!(pauses = ?stored, "pauses changed elsewhere");
                *current = stored;
            }
            changed
        });
        Ok(())
    }

    pub fn current(&self) -> Vec<Pause> {
        self.current.borrow().clone()
    }

    /// The pause that stops payments on `rail`, if any.
    pub fn blocking(&self, rail: Rail) -> Option<Pause> {
        self.current.borrow().iter().find(|p| p.scope.covers(rail)).cloned()
    }

    /// Pauses or resumes `scope`; a guard's `alert` is raised in the same transaction, so whoever sees the pause
    /// finds its alert, and a crash leaves neither without the other.
    pub async fn set(
        &self,
        scope: Scope,
        paused: bool,
        reason: &str,
        by: &str,
        alert: Option<Alert>,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        controls::set(&self.db, scope.as_str(), paused, reason, by, now, alert).await?;
        self.current.send_modify(|pauses| {
            pauses.retain(|p| p.scope != scope);
            if paused {
                pauses.push(Pause { scope, reason: reason.to_owned(), by: by.to_owned(), since: now });
                pauses.sort_by_key(|p| p.scope.as_str());
            }
        });
        tracing::warn!(scope = scope.as_str(), paused, %reason, %by, "payment processing control changed");
        Ok(())
    }
}
