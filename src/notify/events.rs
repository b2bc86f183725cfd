//! The event sender: every poll interval it fans new events out to the endpoints that take them, then claims the
//! deliveries due and POSTs each event, signed as Stripe signs its webhooks (`Purser-Signature: t=…,v1=…`). A 2xx
//! answer delivers it; anything else, or no answer, schedules a retry with backoff (`store::events::record_attempt`).
//! Events are written by the transactions that cause them, so a crash or an endpoint's outage delays an event but
//! never loses it; an endpoint may see an event more than once and dedupes by its id.
use crate::domain::signature;
use crate::settings::{EventEndpoint, EventSettings};
use crate::store::events::{self, Attempt, Claimed, Subscriber};
use crate::store::writer::Writer;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::DatabaseConnection;

/// Events fanned out, and deliveries claimed, at once.
const BATCH: u64 = 50;

/// The header that carries the signature.
const SIGNATURE_HEADER: &str = "Purser-Signature";

#[derive(Clone)]
pub struct EventSender {
    db: DatabaseConnection,
    writer: Writer,
    http: reqwest::Client,
    settings: EventSettings,
}

pub struct Tick;

/// The signature header of `body` for `endpoint`: one `v1` per secret in its (comma-separated) secret, so the
/// platform can roll its secret without missing an event.
fn sign(endpoint: &EventEndpoint, body: &[u8], timestamp: i64) -> String {
    let secret = endpoint.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
    let secrets: Vec<&str> = secret.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    signature::sign_with_each(body, &secrets, timestamp)
}

impl EventSender {
    pub fn new(db: DatabaseConnection, writer: Writer, settings: &EventSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the event sender's HTTP client: {e}"))?;
        Ok(Self { db, writer, http, settings: settings.clone() })
    }

    async fn deliver(&self, claimed: &Claimed) -> Attempt {
        let Some(endpoint) = self.settings.endpoints.iter().find(|e| e.name == claimed.delivery.endpoint) else {
            let error = format!("no endpoint `{}` is configured now", claimed.delivery.endpoint);
            return Attempt { delivered: false, status: None, error: Some(error) };
        };
        let body = claimed.event.to_string();
        let header = sign(endpoint, body.as_bytes(), chrono::Utc::now().timestamp());
        let sent = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, header)
            .header("Purser-Event-Id", &claimed.delivery.event_id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                Attempt { delivered: true, status: Some(answer.status().as_u16()), error: None }
            }
            Ok(answer) => {
                let status = answer.status();
                Attempt { delivered: false, status: Some(status.as_u16()), error: Some(format!("answered {status}")) }
            }
            Err(e) => Attempt { delivered: false, status: None, error: Some(e.without_url().to_string()) },
        }
    }

    async fn drain(&self) -> Result<(), sea_orm::DbErr> {
        // Fanned out even with no endpoint (to none), so an endpoint configured later starts from then, as a new
        // Stripe endpoint does, rather than with every event ever recorded.
        let (unfanned, due) = events::waiting(&self.db).await?;
        if unfanned {
            let subscribed: Vec<(String, Vec<String>)> =
                self.settings.endpoints.iter().map(|e| (e.name.clone(), e.types.clone())).collect();
            self.writer
                .write(move |txn| {
                    Box::pin(async move {
                        let subscribers: Vec<Subscriber> =
                            subscribed.iter().map(|(endpoint, types)| Subscriber { endpoint, types }).collect();
                        events::fan_out(txn, &subscribers, BATCH).await
                    })
                })
                .await?;
        }
        // The claim, so no other node sends the same deliveries; none to make when nothing is due and no endpoint
        // could have been given a delivery just now.
        if !due && (!unfanned || self.settings.endpoints.is_empty()) {
            return Ok(());
        }
        let claim = self.settings.sending_claim;
        let claimed_at = std::time::Instant::now();
        let claimed = self.writer.write(move |txn| Box::pin(events::claim(txn, claim, BATCH))).await?;
        let mut attempts = Vec::with_capacity(claimed.len());
        for one in claimed {
            // Past half the claim another node may take the rest over: they are left to whoever claims them next.
            if claimed_at.elapsed() > claim / 2 {
                break;
            }
            let attempt = self.deliver(&one).await;
            if let Some(error) = &attempt.error {
                tracing::warn!(event = %one.delivery.event_id, endpoint = %one.delivery.endpoint, %error,
                    "event not delivered; will retry");
            }
            attempts.push((one.delivery, attempt));
        }
        let give_up = self.settings.give_up_after;
        self.writer
            .write(move |txn| {
                Box::pin(async move {
                    for (delivery, attempt) in attempts {
                        events::record_attempt(txn, &delivery, attempt, give_up).await?;
                    }
                    Ok::<_, sea_orm::DbErr>(())
                })
            })
            .await
    }
}

impl Actor for EventSender {
    type Msg = Tick;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<Tick>, _: ()) -> Result<(), ActorProcessingErr> {
        myself.send_interval(self.settings.poll_interval, || Tick);
        Ok(())
    }

    async fn handle(&self, _myself: ActorRef<Tick>, _tick: Tick, _: &mut ()) -> Result<(), ActorProcessingErr> {
        if let Err(e) = self.drain().await {
            tracing::warn!(error = %e, "event sender could not read its queue");
        }
        Ok(())
    }
}
