//! Billing (AC9.4.4–AC9.4.6): the client's payment history, the annual CSV export, and receipts sent again.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{AdminCaller, ClientCaller};
use super::payments::parse_transaction_id;
use crate::api::extract::ApiQuery;
use crate::app::payment_data;
use crate::documents::invoice_pdf;
use crate::domain::ids::TransactionId;
use crate::domain::invoice::BillingProfile;
use crate::domain::purchase::{Purchase, Rail, Status};
use crate::guards::rate_limit::RateMsg;
use crate::store::{billing_profiles, invoices, purchases, refunds};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// From 1 to 1,000,000.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u64>,
    /// 1 to 100; 25 by default.
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    date: DateTime<Utc>,
    package_id: String,
    credits: i64,
    /// Minor units.
    amount: i64,
    currency: String,
    method: String,
    status: String,
    /// The receipt page, once the purchase is paid: a link that opens it without signing in.
    receipt_url: Option<String>,
    /// The invoice PDF, once the purchase is paid.
    invoice_url: Option<String>,
}

/// One page of a client's purchases.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    items: Vec<HistoryEntry>,
    page: u64,
    per_page: u64,
}

fn method(purchase: &Purchase) -> String {
    match (purchase.rail, &purchase.funding_source, &purchase.payment_method) {
        (Rail::Paypal, Some(source), _) => format!("paypal/{source}"),
        (Rail::Paypal, None, _) => "paypal".into(),
        (Rail::Card, _, Some(method)) => method.as_str().to_owned(),
        (Rail::Card, _, None) => "card".into(),
    }
}

#[utoipa::path(get, path = "/api/v1/billing/history", tag = "billing", params(Page),
    responses((status = 200, description = "Newest first", body = HistoryPage), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, ApiError> {
    let (number, per_page) = (page.page.unwrap_or(1), page.per_page.unwrap_or(25));
    if !(1..=1_000_000).contains(&number) || !(1..=100).contains(&per_page) {
        return Err(ApiError::bad_request("invalid_page", "page is 1 to 1000000; per_page is 1 to 100."));
    }
    let items: Vec<HistoryEntry> = purchases::for_client(&state.db, caller.id.as_str(), None, number - 1, per_page)
        .await?
        .iter()
        .map(|p| HistoryEntry {
            transaction_id: p.id.into(),
            date: p.created_at,
            package_id: p.package.as_str().to_owned(),
            credits: p.credits.0,
            amount: p.price.minor,
            currency: p.price.currency.lower(),
            method: method(p),
            status: p.status.as_str().to_owned(),
            receipt_url: (p.status == Status::Succeeded).then(|| super::payments::receipt_url(&state, p)),
            invoice_url: (p.status == Status::Succeeded)
                .then(|| format!("/api/v1/billing/invoices/{}.pdf", TransactionId(p.id))),
        })
        .collect();
    Ok(ok(StatusCode::OK, HistoryPage { items, page: number, per_page }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Year {
    /// The calendar year, e.g. 2026: from 2000 to next year.
    #[param(minimum = 2000, maximum = 2100)]
    year: i32,
}

/// AC9.4.5: the year's paid purchases and what was refunded of each, for tax reporting.
#[utoipa::path(get, path = "/api/v1/billing/export", operation_id = "export_billing", tag = "billing", params(Year),
    responses((status = 200, description = "text/csv: date, transaction_id, package, credits, amount, currency, method, refunded_amount"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiQuery(year): ApiQuery<Year>,
) -> Result<Response, ApiError> {
    if !(2000..=2100).contains(&year.year) {
        return Err(ApiError::bad_request("invalid_year", "Give a year such as 2026."));
    }
    let paid: Vec<Purchase> = purchases::for_client(&state.db, caller.id.as_str(), Some(year.year), 0, u64::MAX / 2)
        .await?
        .into_iter()
        .filter(|p| p.status == Status::Succeeded)
        .collect();
    let refunded = refunds::list(&state.db, Some(caller.id.as_str()), Some("refunded")).await?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let write = |csv: &mut csv::Writer<Vec<u8>>, row: &[String]| csv.write_record(row).map_err(ApiError::internal);
    let header_row =
        ["date", "transaction_id", "package", "credits", "amount", "currency", "method", "refunded_amount"];
    write(&mut csv, &header_row.map(str::to_owned))?;
    for purchase in paid.iter().rev() {
        let back: i64 = refunded.iter().filter(|r| r.purchase_id == purchase.id).map(|r| r.amount.minor).sum();
        let back = crate::domain::money::Money { minor: back, currency: purchase.price.currency };
        write(
            &mut csv,
            &[
                purchase.created_at.format("%Y-%m-%d").to_string(),
                TransactionId(purchase.id).to_string(),
                purchase.package.as_str().to_owned(),
                purchase.credits.0.to_string(),
                purchase.price.decimal(),
                purchase.price.currency.code().to_owned(),
                method(purchase),
                back.decimal(),
            ],
        )?;
    }
    let body = csv.into_inner().map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"purchases-{}.csv\"", year.year);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

/// `client`: the client asking for its own receipt; `None` for support, who may resend any. `by` is recorded.
async fn resend(state: &AppState, id: Uuid, client: Option<&str>, by: &str) -> Result<Response, ApiError> {
    let purchase = purchases::load(&state.db, id)
        .await?
        .map(|s| s.purchase)
        .filter(|p| client.is_none_or(|c| p.client.as_str() == c))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction."))?;
    if purchase.status != Status::Succeeded {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_paid", "Only a paid purchase has a receipt."));
    }
    if purchase.receipt_email.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_email",
            "This purchase has no email address to send the receipt to.",
        ));
    }
    let ctx = state.purchases.context();
    let spend = |reply| RateMsg::Resend { purchase: purchase.id, reply };
    match ctx.limiter.call(spend, ctx.call_timeout).await {
        Some(Ok(())) => {}
        Some(Err(wait)) => return Ok(super::guard::too_many(wait, "receipt resends for this payment")),
        None => return Err(crate::actors::purchase::PurchaseError::Busy.into()),
    }
    crate::app::receipts::resend(&state.purchases.context().writer, &purchase, by).await?;
    Ok(ok(StatusCode::ACCEPTED, json!({ "transactionId": TransactionId(purchase.id), "queued": true })))
}

/// AC9.4.6: a lost receipt, regenerated from the purchase and sent again.
#[utoipa::path(post, path = "/api/v1/billing/receipts/{transactionId}/resend", tag = "billing",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A paid transaction: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 202, description = "Queued"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 429, description = "Past `limits.receipt_resends_per_hour` for this payment", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn resend_receipt(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    resend(&state, parse_transaction_id(&id)?, Some(caller.id.as_str()), caller.id.as_str()).await
}

/// AC9.4.6 for support: regenerate and resend any client's receipt.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/resend-receipt", tag = "admin",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A paid transaction: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 202, description = "Queued"), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_paid`: only a paid purchase has a receipt", body = ErrorEnvelope),
        (status = 429, description = "Past `limits.receipt_resends_per_hour` for this payment", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn admin_resend_receipt(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    resend(&state, parse_transaction_id(&id)?, None, admin.id.as_str()).await
}

/// AC9.4.2: the purchase's invoice as a PDF, rendered from the invoice as issued.
#[utoipa::path(get, path = "/api/v1/billing/invoices/{file}", tag = "billing",
    params(("file" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\.pdf$", description = "`<transactionId>.pdf`")),
    responses((status = 200, description = "application/pdf"), (status = 404, description = "No invoice for this client and transaction", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn invoice(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(file.strip_suffix(".pdf").unwrap_or(&file))?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "invoice_not_found", "No invoice for this transaction.");
    let invoice = invoices::for_purchase(&state.db, id)
        .await?
        .filter(|i| i.buyer_id == caller.id.as_str())
        .ok_or_else(not_found)?;
    let disposition = format!("inline; filename=\"invoice-{:06}.pdf\"", invoice.number);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/pdf".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        invoice_pdf::render(&invoice),
    )
        .into_response())
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileBody {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    company_name: String,
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    address: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`: the jurisdiction of the tax on the invoice.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country: String,
    /// A VAT or other tax id; with one, a business in another country than the seller is reverse-charged.
    #[schema(max_length = 50)]
    tax_id: Option<String>,
}

/// AC9.4.3: a business account's billing profile; invoices issued after it is set carry it and a tax breakdown.
#[utoipa::path(put, path = "/api/v1/billing/profile", tag = "billing", request_body = ProfileBody,
    responses((status = 200, body = ProfileBody), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn save_profile(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    super::extract::ApiJson(body): super::extract::ApiJson<ProfileBody>,
) -> Result<Response, ApiError> {
    let country = body.country.trim().to_ascii_uppercase();
    let within = |text: &str, most: usize| !text.trim().is_empty() && text.trim().chars().count() <= most;
    if !within(&body.company_name, 200)
        || !within(&body.address, 1000)
        || body.tax_id.as_deref().is_some_and(|t| t.trim().chars().count() > 50)
        || country.len() != 2
        || !country.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(ApiError::bad_request(
            "invalid_profile",
            "Give a company name (up to 200 characters), an address (up to 1000), a two-letter country code and, if \
             any, a tax id of up to 50 characters.",
        ));
    }
    let profile = BillingProfile {
        company_name: body.company_name.trim().to_owned(),
        address: body.address.trim().to_owned(),
        country,
        tax_id: body.tax_id.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    payment_data::save_billing_profile(&state.purchases.context().writer, &caller.id, profile.clone()).await?;
    Ok(ok(
        StatusCode::OK,
        ProfileBody {
            company_name: profile.company_name,
            address: profile.address,
            country: profile.country,
            tax_id: profile.tax_id,
        },
    ))
}

#[utoipa::path(get, path = "/api/v1/billing/profile", tag = "billing",
    responses((status = 200, body = ProfileBody), (status = 404, description = "Not a business account", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn profile(State(state): State<AppState>, ClientCaller(caller): ClientCaller) -> Result<Response, ApiError> {
    let profile = billing_profiles::find(&state.db, caller.id.as_str()).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_billing_profile", "No business billing profile for this account.")
    })?;
    Ok(ok(
        StatusCode::OK,
        ProfileBody {
            company_name: profile.company_name,
            address: profile.address,
            country: profile.country,
            tax_id: profile.tax_id,
        },
    ))
}
