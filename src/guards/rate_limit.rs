//! The rate-limit actor: it owns every request budget. Inbound, on the endpoints that start payments and refunds:
//! per client, per IP and for everyone together (so one caller cannot crowd out the rest or test stolen cards at
//! speed), per sender for webhooks that fail verification, and per payment for receipt resends. Outbound, towards each real provider, kept under the
//! provider's documented limit. When a provider answers 429 past the call's own retries, or Purser's budget for it
//! is spent, that provider's processing is paused platform-wide (its calls held, not failed) and resumed by this
//! actor once `window` has passed; each such pause and resume is an admin alert and, like every pause, an audit row.
use super::pause::{Pauses, Scope};
use crate::domain::purchase::Rail;
use crate::settings::LimitSettings;
use crate::store::alerts::Alert;
use crate::store::rate_windows;
use chrono::{TimeDelta, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who the pauses this actor sets are by, in the audit trail and on the console.
pub const BY: &str = "rate-limiter";

/// The budgets themselves. They live beside the actor rather than in its state, so a restarted actor carries on
/// with the windows its predecessor had spent instead of handing every caller a fresh allowance.
pub struct Budgets {
    /// Per client and per network: here on one node; `SharedLimits` in the database when several share it.
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    global: DefaultDirectRateLimiter,
    bad_webhooks: DefaultKeyedRateLimiter<IpAddr>,
    /// Receipt resends, per payment.
    resends: DefaultKeyedRateLimiter<uuid::Uuid>,
    /// Requests per second towards each real provider (Stripe documents 100 in live mode and 25 in test mode); the
    /// sandbox has none.
    card: Option<DefaultDirectRateLimiter>,
    paypal: Option<DefaultDirectRateLimiter>,
    /// Senders past their budget of failed verifications, until when: turned away before any verification work.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn per_second(n: u32) -> DefaultDirectRateLimiter {
    Governor::direct(Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)))
}

impl Budgets {
    /// `card_per_second` / `paypal_per_second`: `None` leaves that rail's provider unbudgeted (the sandbox).
    pub fn new(settings: &LimitSettings, card_per_second: Option<u32>, paypal_per_second: Option<u32>) -> Self {
        let share = |quota| settings.share(quota);
        Self {
            per_client: (!settings.shared())
                .then(|| Governor::keyed(per_minute(settings.checkout_per_client_per_minute))),
            per_ip: (!settings.shared()).then(|| Governor::keyed(per_minute(settings.checkout_per_ip_per_minute))),
            global: Governor::direct(per_minute(share(settings.checkout_global_per_minute))),
            bad_webhooks: Governor::keyed(per_minute(share(settings.bad_webhooks_per_ip_per_minute))),
            resends: Governor::keyed(Quota::per_hour(
                NonZeroU32::new(settings.receipt_resends_per_hour).unwrap_or(NonZeroU32::MIN),
            )),
            card: card_per_second.map(share).map(per_second),
            paypal: paypal_per_second.map(share).map(per_second),
            blocked: Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    fn inbound(&self, client: Option<&str>, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now();
        if let (Some(client), Some(budget)) = (client, &self.per_client) {
            budget.check_key(&client.to_owned()).map_err(|wait| wait.wait_time_from(now))?;
        }
        if let (Some(ip), Some(budget)) = (ip, &self.per_ip) {
            budget.check_key(&ip).map_err(|wait| wait.wait_time_from(now))?;
        }
        self.global.check().map_err(|wait| wait.wait_time_from(now))
    }

    fn bad_webhook(&self, ip: IpAddr) -> Result<(), Duration> {
        let spent = self.bad_webhooks.check_key(&ip).map_err(|wait| wait.wait_time_from(self.clock.now()));
        if let Err(wait) = spent {
            self.blocked.lock().unwrap_or_else(|e| e.into_inner()).insert(ip, Instant::now() + wait);
        }
        spent
    }

    fn sender_blocked(&self, ip: IpAddr) -> Result<(), Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&ip).map(|until| until.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Drops the keys nobody has used for a while, so a stream of new addresses cannot grow the budgets forever.
    fn forget_idle(&self) {
        self.per_client.iter().for_each(|budget| budget.retain_recent());
        self.per_ip.iter().for_each(|budget| budget.retain_recent());
        self.bad_webhooks.retain_recent();
        self.resends.retain_recent();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, until| *until > now);
    }

    /// Whether Purser keeps an outbound budget for `rail`'s provider (the sandbox has none): a call to one without
    /// needs no word from the actor.
    pub fn limits_outbound(&self, rail: Rail) -> bool {
        match rail {
            Rail::Card => self.card.is_some(),
            Rail::Paypal => self.paypal.is_some(),
        }
    }

    fn outbound(&self, rail: Rail) -> bool {
        let budget = match rail {
            Rail::Card => &self.card,
            Rail::Paypal => &self.paypal,
        };
        budget.as_ref().is_none_or(|limiter| limiter.check().is_ok())
    }
}

/// The per-client and per-network checkout limits of several nodes on one database, counted there
/// (`store::rate_windows`), so each holds whichever node a caller's requests reach.
#[derive(Clone)]
pub struct SharedLimits {
    pub db: DatabaseConnection,
    pub per_client: u32,
    pub per_ip: u32,
}

impl SharedLimits {
    /// `None` on one node, where the budgets in memory see every request.
    pub fn of(settings: &LimitSettings, db: &DatabaseConnection) -> Option<Self> {
        settings.shared().then(|| Self {
            db: db.clone(),
            per_client: settings.checkout_per_client_per_minute,
            per_ip: settings.checkout_per_ip_per_minute,
        })
    }

    async fn check(&self, client: Option<String>, ip: Option<IpAddr>) -> Result<Result<(), Duration>, DbErr> {
        let by_client = client.map(|c| (format!("checkout:client:{c}"), i64::from(self.per_client)));
        let by_ip = ip.map(|ip| (format!("checkout:ip:{ip}"), i64::from(self.per_ip)));
        let limits: Vec<(String, i64)> = by_client.into_iter().chain(by_ip).collect();
        if limits.is_empty() {
            return Ok(Ok(()));
        }
        rate_windows::hit(&self.db, &limits, Utc::now()).await
    }
}

pub enum RateMsg {
    /// A request that starts a payment or a refund: `Err(wait)` when a budget is spent.
    Inbound { client: Option<String>, ip: Option<IpAddr>, reply: RpcReplyPort<Result<(), Duration>> },
    /// A webhook from `ip` failed verification: `Err(wait)` once the sender has spent its budget of failures.
    BadWebhook { ip: IpAddr, reply: RpcReplyPort<Result<(), Duration>> },
    /// Before a costly verification (PayPal's postback): `Err(wait)` while the sender is past its budget.
    WebhookSender { ip: IpAddr, reply: RpcReplyPort<Result<(), Duration>> },
    /// A receipt resend for a payment: `Err(wait)` past its hourly budget.
    Resend { purchase: uuid::Uuid, reply: RpcReplyPort<Result<(), Duration>> },
    /// Every minute: forget idle keys.
    ForgetIdle,
    /// A provider call about to be made: `false` when the budget is spent (the call is held, the rail paused).
    Outbound { rail: Rail, reply: RpcReplyPort<bool> },
    /// A provider on `rail` answered 429.
    Throttled { rail: Rail },
    /// The window has passed: lift the pause on `scope` if it is still this actor's.
    Lift { scope: Scope },
}

#[derive(Clone)]
pub struct RateLimiter {
    pub budgets: Arc<Budgets>,
    pub pauses: Arc<Pauses>,
    /// How long a provider is left alone after a 429.
    pub window: Duration,
    pub shared: Option<SharedLimits>,
}

impl RateLimiter {
    fn alert(&self, scope: Scope, what: &'static str) -> Alert {
        let details = json!({ "alert": what, "scope": scope.as_str(), "windowSeconds": self.window.as_secs() });
        Alert { kind: what, key: format!("{what}:{}:{}", scope.as_str(), Utc::now().timestamp_millis()), details }
    }

    async fn pause(&self, myself: &ActorRef<RateMsg>, rail: Rail) -> Result<(), ActorProcessingErr> {
        let scope = Scope::of(rail);
        // Already paused (by an admin, a guard, or an earlier 429): the calls are held either way.
        if self.pauses.current().iter().any(|p| p.scope == scope) {
            return Ok(());
        }
        let reason = format!(
            "too many requests to the {} provider (it answered 429, or Purser's budget for it was spent): its calls \
             are held for {} s",
            rail.as_str(),
            self.window.as_secs()
        );
        tracing::warn!(rail = rail.as_str(), "provider rate limit hit: pausing its processing");
        self.pauses.set(scope, true, &reason, BY, Some(self.alert(scope, "provider_throttled"))).await?;
        myself.send_after(self.window, move || RateMsg::Lift { scope });
        Ok(())
    }
}

impl Actor for RateLimiter {
    type Msg = RateMsg;
    type State = ();
    type Arguments = ();

    /// A pause of its own found at start (set before a crash or a restart) is lifted when its window ends; idle
    /// keys are forgotten every minute.
    async fn pre_start(&self, myself: ActorRef<RateMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        myself.send_interval(Duration::from_secs(60), || RateMsg::ForgetIdle);
        let window = TimeDelta::from_std(self.window).unwrap_or(TimeDelta::MAX);
        for pause in self.pauses.current().into_iter().filter(|p| p.by == BY) {
            let left = (pause.since + window - Utc::now()).to_std().unwrap_or_default();
            let scope = pause.scope;
            myself.send_after(left, move || RateMsg::Lift { scope });
        }
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<RateMsg>, msg: RateMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            RateMsg::Inbound { client, ip, reply } => match (self.budgets.inbound(client.as_deref(), ip), &self.shared)
            {
                // The database's count is waited for beside the actor, which goes on answering the others; a count
                // that fails drops the reply, which turns the request away.
                (Ok(()), Some(shared)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        match shared.check(client, ip).await {
                            Ok(verdict) => drop(reply.send(verdict)),
                            Err(e) => tracing::warn!(error = %e, "shared checkout limits could not be counted"),
                        }
                    });
                }
                (verdict, _) => drop(reply.send(verdict)),
            },
            RateMsg::BadWebhook { ip, reply } => {
                let _ = reply.send(self.budgets.bad_webhook(ip));
            }
            RateMsg::WebhookSender { ip, reply } => {
                let _ = reply.send(self.budgets.sender_blocked(ip));
            }
            RateMsg::Resend { purchase, reply } => {
                let now = self.budgets.clock.now();
                let _ = reply.send(self.budgets.resends.check_key(&purchase).map_err(|wait| wait.wait_time_from(now)));
            }
            RateMsg::ForgetIdle => self.budgets.forget_idle(),
            RateMsg::Outbound { rail, reply } => {
                let allowed = self.budgets.outbound(rail);
                let _ = reply.send(allowed);
                if !allowed {
                    self.pause(&myself, rail).await?;
                }
            }
            RateMsg::Throttled { rail } => self.pause(&myself, rail).await?,
            RateMsg::Lift { scope } => {
                if !self.pauses.current().iter().any(|p| p.scope == scope && p.by == BY) {
                    return Ok(());
                }
                let lifted = Some(self.alert(scope, "provider_throttle_lifted"));
                self.pauses.set(scope, false, "the provider's rate-limit window has passed", BY, lifted).await?;
            }
        }
        Ok(())
    }
}
