//! The platform's side of `purser chaos`: an endpoint for Purser's events that is down (answers 503) for a while at
//! the start of each run and answers 500 to a share of the rest, verifies every signature, and keeps each event once
//! by its id, as a platform's backend would.
use crate::domain::signature;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret the chaos nodes sign with (`PURSER_CHAOS_EVENTS_SECRET`).
pub const SECRET: &str = "whsec_chaos_platform_events";

#[derive(Default)]
struct Seen {
    /// Each event once, by id.
    events: HashMap<String, Value>,
    requests: usize,
    bad_signatures: usize,
}

pub struct PlatformReceiver {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl PlatformReceiver {
    pub async fn start(down_for: Duration, error_rate: f64) -> Result<Self, String> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let up_at = Instant::now() + down_for;
        let handler = {
            let seen = seen.clone();
            move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move { receive(&seen, up_at, error_rate, &headers, &body) }
            }
        };
        let router = axum::Router::new().route("/events", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}/events", listener.local_addr().map_err(|e| e.to_string())?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, seen, task })
    }

    /// The events received, each once.
    pub fn events(&self) -> HashMap<String, Value> {
        self.seen.lock().unwrap().events.clone()
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().requests
    }

    pub fn bad_signatures(&self) -> usize {
        self.seen.lock().unwrap().bad_signatures
    }
}

fn receive(seen: &Mutex<Seen>, up_at: Instant, error_rate: f64, headers: &HeaderMap, body: &str) -> StatusCode {
    let mut seen = seen.lock().unwrap();
    seen.requests += 1;
    if Instant::now() < up_at {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = headers.get("purser-signature").and_then(|v| v.to_str().ok());
    if signature::verify(body.as_bytes(), header, &[SECRET], chrono::Utc::now().timestamp()).is_err() {
        seen.bad_signatures += 1;
        return StatusCode::BAD_REQUEST;
    }
    // An answer lost after the event was kept: Purser sends it again, and the id dedupes it.
    let event: Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(id) = event["id"].as_str() {
        seen.events.entry(id.to_owned()).or_insert_with(|| event.clone());
    }
    match crate::providers::sandbox::fraction() < error_rate {
        true => StatusCode::INTERNAL_SERVER_ERROR,
        false => StatusCode::OK,
    }
}

impl Drop for PlatformReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
