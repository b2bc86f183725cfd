//! `GET /metrics` (an admin token: Prometheus sends it as `authorization`) in Prometheus's text format: counters of
//! purchases and refunds entering each state and of webhooks received, outbox depth, pauses, live purchase actors,
//! provider latency. Aggregates only: no client, amount or token appears.
use super::AppState;
use super::error::ApiError;
use crate::guards::circuit::CircuitMsg;
use crate::store::metrics::outbox_pending;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::time::Duration;

fn family(out: &mut String, name: &str, help: &str, label: &str, values: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (value, count) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", value.replace('"', ""));
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format"), (status = 401, body = super::error::ErrorEnvelope),
        (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, _admin: super::extract::AdminCaller) -> Result<Response, ApiError> {
    let db = &state.db;
    let mut out = String::new();
    let context = state.purchases.context();
    context.counters.render(&mut out);
    context.writer.stats.render(&mut out);
    context.statements.render(&mut out);
    let pauses: Vec<(String, i64)> = state.pauses.current().iter().map(|p| (p.scope.as_str().to_owned(), 1)).collect();
    family(&mut out, "purser_paused", "Pauses in force, by scope.", "scope", &pauses);
    let _ =
        writeln!(out, "# HELP purser_outbox_pending Messages waiting to be sent.\n# TYPE purser_outbox_pending gauge");
    let _ = writeln!(out, "purser_outbox_pending {}", outbox_pending(db).await?);
    let live = ractor::registry::registered()
        .iter()
        .filter(|name| context.actor_named(name).is_some_and(|(kind, _)| kind == crate::actors::RowActor::Purchase))
        .count();
    let _ = writeln!(
        out,
        "# HELP purser_live_purchase_actors Purchase actors running now.\n# TYPE purser_live_purchase_actors gauge"
    );
    let _ = writeln!(out, "purser_live_purchase_actors {live}");
    let _ = writeln!(
        out,
        "# HELP purser_scheduled_deadlines Purchase timers waiting to fall due.\n# TYPE purser_scheduled_deadlines gauge"
    );
    let _ = writeln!(out, "purser_scheduled_deadlines {}", state.purchases.context().deadlines.pending());
    let circuit = &state.purchases.context().circuit;
    let states = circuit.call(|reply| CircuitMsg::States { reply }, Duration::from_secs(2)).await;
    if let Some(states) = states {
        let states: Vec<(String, i64)> = states.into_iter().map(|(rail, level)| (rail.to_owned(), level)).collect();
        family(&mut out, "purser_circuit_state", "Provider circuits: 0 closed, 1 half-open, 2 open.", "rail", &states);
    }
    state.purchases.context().timings.render(&mut out);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
