//! Admin: disputes raised at PayPal or through Stripe (AC9.2.5), and the answers to them: evidence (text and a
//! document) or a concession, sent to the provider and audited.
use crate::actors::disputes::DisputeError;
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::{AdminCaller, ApiJson};
use crate::api::payments::{AuditView, SellerProtectionView, TransactionView, transaction_view};
use crate::app::disputes as app;
use crate::domain::dispute::{Answer, EvidenceFile, MAX_EVIDENCE_FILE, MAX_EVIDENCE_TEXT};
use crate::domain::ids::TransactionId;
use crate::providers::ProviderError;
use crate::store::{controls, disputes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::borrow::Cow;
use utoipa::ToSchema;

/// The body an evidence request may reach: the largest file, base64-encoded, and the longest text, with room.
pub const EVIDENCE_BODY_LIMIT: usize = MAX_EVIDENCE_FILE / 3 * 4 + 4 * MAX_EVIDENCE_TEXT + 64 * 1024;

#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    id: String,
    provider: String,
    #[schema(value_type = Option<String>, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: Option<TransactionId>,
    client_id: Option<String>,
    reason: String,
    /// Where it stands, for both providers: `needs_response` (evidence or a concession is due), `under_review`,
    /// `won` or `lost`.
    status: String,
    /// The provider's own status (Stripe's `needs_response`, PayPal's `WAITING_FOR_SELLER_RESPONSE`…).
    provider_status: String,
    /// Minor units.
    amount: Option<i64>,
    currency: Option<String>,
    /// When the provider stops taking evidence.
    evidence_due_by: Option<DateTime<Utc>>,
    /// The credits a lost dispute took back through the ledger.
    credits_debited: i64,
    /// The provider's own record of the dispute, as it sent it.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// PayPal's seller protection on the disputed capture (the purchase's, in the one-dispute view).
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_protection: Option<SellerProtectionView>,
    /// The disputed purchase with its history (the one-dispute view).
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<Box<TransactionView>>,
    /// Who answered the dispute, when, and how (the one-dispute view).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<Vec<AuditView>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<entities::disputes::Model> for DisputeView {
    fn from(d: entities::disputes::Model) -> Self {
        Self {
            id: d.id,
            provider: d.provider,
            transaction_id: d.purchase_id.map(TransactionId),
            client_id: d.client_id,
            reason: d.reason,
            status: d.status,
            provider_status: d.provider_status,
            amount: d.amount,
            currency: d.currency,
            evidence_due_by: d.evidence_due_by,
            credits_debited: d.credits_debited,
            details: d.details,
            seller_protection: None,
            transaction: None,
            audit: None,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// AC9.2.5: disputes raised at PayPal or through Stripe, newest first.
#[utoipa::path(get, path = "/api/v1/admin/disputes", tag = "admin",
    responses((status = 200, body = [DisputeView]), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_disputes(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Response, ApiError> {
    let disputes: Vec<DisputeView> = disputes::list(&state.db).await?.into_iter().map(DisputeView::from).collect();
    Ok(ok(StatusCode::OK, disputes))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "dispute_not_found", "No such dispute.")
}

/// One dispute with the disputed purchase's history and the answers given.
async fn full_view(state: &AppState, dispute: entities::disputes::Model) -> Result<DisputeView, ApiError> {
    let audit = controls::audit_of(&state.reads, &dispute.id).await?;
    let purchase = match dispute.purchase_id {
        Some(id) => transaction_view(state, id).await?,
        None => None,
    };
    let mut view = DisputeView::from(dispute);
    view.audit = Some(audit.into_iter().map(AuditView::from).collect());
    if let Some((purchase, transaction)) = purchase {
        view.seller_protection = SellerProtectionView::of(&purchase);
        view.transaction = Some(Box::new(transaction.with_audit(state, &purchase).await?));
    }
    Ok(view)
}

#[utoipa::path(get, path = "/api/v1/admin/disputes/{id}", tag = "admin",
    params(("id" = String, Path, description = "The provider's dispute id")),
    responses((status = 200, body = DisputeView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_dispute(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let dispute = disputes::find(&state.reads, &id).await?.ok_or_else(not_found)?;
    Ok(ok(StatusCode::OK, full_view(&state, dispute).await?))
}

/// A document for the provider: PDF, JPEG or PNG, at most 4 MiB once decoded.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceUpload {
    /// `receipt.pdf`: `.pdf`, `.jpg`, `.jpeg` or `.png`.
    #[schema(
        min_length = 5,
        max_length = 200,
        pattern = "^[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+\\.([pP][dD][fF]|[jJ][pP][eE]?[gG]|[pP][nN][gG])$"
    )]
    name: String,
    /// The file's bytes, base64 (RFC 4648, with padding): at most 4 MiB once decoded.
    #[schema(
        min_length = 4,
        max_length = 5_592_408,
        pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    )]
    content_base64: String,
}

/// Evidence against a dispute: what was bought and how it was used, and optionally a document.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    /// Submitted to the provider as the merchant's explanation (Stripe's `uncategorized_text`, PayPal's notes).
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    text: String,
    file: Option<EvidenceUpload>,
}

/// Conceding a dispute: the payer keeps the money back, and the purchase's credits are taken back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// Recorded in the audit trail, and sent to PayPal as the note.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

fn parse_evidence(request: EvidenceRequest) -> Result<Answer, ApiError> {
    // The length as sent, as the schema counts it; the text as meant.
    let text = request.text.trim().to_owned();
    if text.is_empty() || request.text.chars().count() > MAX_EVIDENCE_TEXT {
        let message = format!("Give the evidence as text of 1 to {MAX_EVIDENCE_TEXT} characters.");
        return Err(ApiError::bad_request("invalid_evidence", message));
    }
    let file = request
        .file
        .map(|upload| {
            // Lenient about the unused bits of the last character, as the pattern above is.
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
            );
            let bytes = engine.decode(upload.content_base64.trim()).map_err(|_| {
                ApiError::bad_request("invalid_evidence_file", "file.contentBase64 is not base64 (RFC 4648, padded).")
            })?;
            EvidenceFile::parse(&upload.name, bytes).map_err(|e| ApiError::bad_request("invalid_evidence_file", e))
        })
        .transpose()?;
    Ok(Answer::Evidence { text, file })
}

async fn answer(state: &AppState, id: &str, answer: Answer, admin: &str) -> Result<Response, ApiError> {
    match app::answer(state.purchases.context(), id, answer, admin).await {
        Ok(dispute) => Ok(ok(StatusCode::OK, full_view(state, dispute).await?)),
        Err(DisputeError::NotFound) => Err(not_found()),
        Err(e @ DisputeError::Closed(_)) => Err(ApiError::new(StatusCode::CONFLICT, "dispute_closed", e.to_string())),
        Err(DisputeError::Provider(ProviderError::Rejected { code, message })) => {
            let refused =
                ApiError::new(StatusCode::CONFLICT, "", format!("The provider refused the answer: {message}"));
            Err(ApiError { code: Cow::Owned(format!("provider_{code}")), ..refused })
        }
        Err(DisputeError::Provider(e)) => {
            tracing::warn!(error = %e, dispute = id, "a dispute answer did not reach its provider");
            let message = "The provider did not answer; nothing was recorded. Try again.";
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "provider_unavailable", message))
        }
        Err(DisputeError::Db(e)) => Err(e.into()),
    }
}

/// Contests a dispute: the evidence is submitted to the provider, which decides on it; audited.
#[utoipa::path(post, path = "/api/v1/admin/disputes/{id}/evidence", tag = "admin",
    params(("id" = String, Path, description = "The provider's dispute id")),
    request_body = EvidenceRequest,
    responses((status = 200, description = "The dispute as the provider now reports it", body = DisputeView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The dispute is closed, or the provider refused the answer", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn submit_evidence(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<EvidenceRequest>,
) -> Result<Response, ApiError> {
    let evidence = parse_evidence(request)?;
    answer(&state, &id, evidence, admin.id.as_str()).await
}

/// Concedes a dispute (Stripe's close, PayPal's accept-claim): the money stays with the payer, and the purchase's
/// credits are taken back once the provider reports it lost; audited.
#[utoipa::path(post, path = "/api/v1/admin/disputes/{id}/accept", tag = "admin",
    params(("id" = String, Path, description = "The provider's dispute id")),
    request_body = AcceptRequest,
    responses((status = 200, description = "The dispute as the provider now reports it", body = DisputeView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The dispute is closed, or the provider refused the answer", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn accept_dispute(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AcceptRequest>,
) -> Result<Response, ApiError> {
    let note = super::required_reason(&request.reason)?;
    answer(&state, &id, Answer::Accept { note }, admin.id.as_str()).await
}
