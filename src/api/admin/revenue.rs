//! Admin: revenue per day, week or month, by method and currency (AC9.6.5).
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::AdminCaller;
use crate::api::extract::ApiQuery;
use crate::domain::purchase::{Purchase, Rail, Status};
use crate::store::purchases::{self as purchase_store, Filter};
use crate::store::refunds;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `day`, `week` (ISO weeks, from Monday) or `month`.
    #[param(pattern = "^(day|week|month)$")]
    period: String,
    /// RFC 3339; inclusive. Defaults to 30 days ago.
    from: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive. Defaults to now, or to 366 days after `from` when that is earlier. With both given, `from`
    /// must come first and at most 366 days before `to` (400 `invalid_range`).
    to: Option<DateTime<Utc>>,
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

#[derive(Serialize, ToSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RevenueRow {
    period_start: String,
    method: String,
    currency: String,
    /// Minor units, all three.
    gross: i64,
    refunded: i64,
    net: i64,
    payments: i64,
}

fn period_start(at: DateTime<Utc>, period: &str) -> Option<NaiveDate> {
    let day = at.date_naive();
    match period {
        "day" => Some(day),
        "week" => day.checked_sub_days(chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))),
        "month" => day.with_day(1),
        _ => None,
    }
}

fn method_of(purchase: &Purchase) -> String {
    match purchase.rail {
        Rail::Paypal => format!("paypal/{}", purchase.funding_source.as_deref().unwrap_or("paypal")),
        Rail::Card
            if purchase.settling.is_some()
                || purchase.payment_method.as_ref().is_some_and(|m| m.as_str().contains("usBankAccount")) =>
        {
            "ach".into()
        }
        Rail::Card => "card".into(),
    }
}

/// The longest range one revenue report covers.
const MAX_REPORT_DAYS: i64 = 366;

/// AC9.6.5: revenue per day, week or month, by payment method and currency: gross, refunded and net.
#[utoipa::path(get, path = "/api/v1/admin/reports/revenue", tag = "admin", params(ReportQuery),
    responses((status = 200, description = "`[RevenueRow]` as JSON, or CSV with `format=csv`",
        content((Vec<RevenueRow> = "application/json"), (String = "text/csv"))), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn revenue(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    if period_start(Utc::now(), &query.period).is_none() {
        return Err(ApiError::bad_request("invalid_period", "period is day, week or month."));
    }
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::bad_request("invalid_format", "format is json or csv.")),
    };
    let longest = chrono::TimeDelta::days(MAX_REPORT_DAYS);
    let to = query.to.unwrap_or_else(|| {
        query
            .from
            .map_or_else(Utc::now, |from| from.checked_add_signed(longest).map_or(from, |end| end.min(Utc::now())))
    });
    let from = query.from.unwrap_or(to - chrono::TimeDelta::days(30));
    // A report reads every payment in its range: a bounded range keeps one request from scanning the whole history.
    if from > to || to - from > longest {
        let message = format!("from must be before to, at most {MAX_REPORT_DAYS} days apart.");
        return Err(ApiError::bad_request("invalid_range", message));
    }
    let filter =
        Filter { status: Some(Status::Succeeded.as_str().into()), from: Some(from), to: Some(to), ..Filter::default() };
    let paid = purchase_store::search(&state.db, &filter, u64::MAX / 2).await?;
    let refunded = refunds::list(&state.db, None, Some("refunded")).await?;
    let mut rows: BTreeMap<(String, String, String), RevenueRow> = BTreeMap::new();
    for model in paid {
        let purchase = purchase_store::decode(model)?.purchase;
        let start = period_start(purchase.created_at, &query.period).map(|d| d.to_string()).unwrap_or_default();
        let key = (start.clone(), method_of(&purchase), purchase.price.currency.code().to_owned());
        let row = rows.entry(key.clone()).or_insert_with(|| RevenueRow {
            period_start: key.0,
            method: key.1,
            currency: key.2,
            ..RevenueRow::default()
        });
        let back: i64 = refunded.iter().filter(|r| r.purchase_id == purchase.id).map(|r| r.amount.minor).sum();
        row.gross += purchase.price.minor;
        row.refunded += back;
        row.net = row.gross - row.refunded;
        row.payments += 1;
    }
    let rows: Vec<RevenueRow> = rows.into_values().collect();
    if csv {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in &rows {
            csv.serialize(row).map_err(ApiError::internal)?;
        }
        let body = csv.into_inner().map_err(ApiError::internal)?;
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(ok(StatusCode::OK, rows))
}
