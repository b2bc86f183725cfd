//! The fraud monitor actor: it scores every checkout before a provider is called and hears every decline. A client
//! over a rule is blocked; a burst of declines across the platform (a card-testing wave) raises an admin alert and
//! pauses payment processing until an admin resumes it (AC9.3.4, AC9.3.7).
use super::pause::{Pauses, Scope};
use crate::domain::fraud::{FraudRules, Verdict, Window, assess};
use crate::store::alerts;
use chrono::{TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub enum FraudMsg {
    Assess { client: String, amount: i64, method: Option<String>, reply: RpcReplyPort<Verdict> },
    Declined { client: String },
}

pub struct FraudMonitor {
    pub rules: FraudRules,
    pub db: DatabaseConnection,
    pub pauses: Arc<Pauses>,
}

#[derive(Default)]
pub struct Windows {
    checkouts: HashMap<String, Window>,
    declines: HashMap<String, Window>,
    platform_declines: Window,
}

impl Actor for FraudMonitor {
    type Msg = FraudMsg;
    type State = Windows;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<FraudMsg>, _: ()) -> Result<Windows, ActorProcessingErr> {
        Ok(Windows::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<FraudMsg>,
        msg: FraudMsg,
        windows: &mut Windows,
    ) -> Result<(), ActorProcessingErr> {
        let now = Utc::now();
        let hour = TimeDelta::hours(1);
        match msg {
            FraudMsg::Assess { client, amount, method, reply } => {
                let checkouts = windows.checkouts.entry(client.clone()).or_default().count_since(now, hour);
                let declines = windows.declines.entry(client.clone()).or_default().count_since(now, hour);
                let verdict = assess(&self.rules, amount, method.as_deref(), checkouts, declines);
                if !matches!(verdict, Verdict::Block(_)) {
                    windows.checkouts.entry(client.clone()).or_default().push(now);
                } else {
                    tracing::warn!(%client, ?verdict, "checkout blocked by the fraud monitor");
                }
                let _ = reply.send(verdict);
            }
            FraudMsg::Declined { client } => {
                windows.declines.entry(client).or_default().push(now);
                windows.platform_declines.push(now);
                let wave = windows.platform_declines.count_since(now, TimeDelta::minutes(1));
                if wave >= self.rules.breach_declines_per_minute
                    && self.pauses.blocking(crate::domain::purchase::Rail::Card).is_none()
                {
                    let reason = format!("{wave} declines in a minute: card testing suspected");
                    self.pauses.set(Scope::Platform, true, &reason, "fraud-monitor").await?;
                    let alert = json!({ "alert": "breach", "reason": reason });
                    alerts::raise(&self.db, "breach", format!("breach:{}", now.timestamp()), alert).await?;
                }
            }
        }
        Ok(())
    }
}
