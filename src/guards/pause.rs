//! Pauses of payment processing, set by admins (and later by the fraud and breach guards): persisted, so a restart
//! keeps them, and broadcast on a watch channel, so the API refuses new checkouts at once and actors hold their
//! provider calls until the resume. Webhooks are still accepted while paused: nothing is lost.
use crate::domain::purchase::Rail;
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

impl Pauses {
    pub async fn load(db: DatabaseConnection) -> Result<Self, DbErr> {
        let current = controls::paused(&db)
            .await?
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
        Ok(Self { db, current: watch::Sender::new(current) })
    }

    pub fn current(&self) -> Vec<Pause> {
        self.current.borrow().clone()
    }

    /// The pause that stops payments on `rail`, if any.
    pub fn blocking(&self, rail: Rail) -> Option<Pause> {
        self.current.borrow().iter().find(|p| p.scope.covers(rail)).cloned()
    }

    pub async fn set(&self, scope: Scope, paused: bool, reason: &str, by: &str) -> Result<(), DbErr> {
        let now = Utc::now();
        controls::set(&self.db, scope.as_str(), paused, reason, by, now).await?;
        self.current.send_modify(|pauses| {
            pauses.retain(|p| p.scope != scope);
            if paused {
                pauses.push(Pause { scope, reason: reason.to_owned(), by: by.to_owned(), since: now });
            }
        });
        tracing::warn!(scope = scope.as_str(), paused, %reason, %by, "payment processing control changed");
        Ok(())
    }
}
