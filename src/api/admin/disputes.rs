//! Admin: disputes raised at PayPal or through Stripe (AC9.2.5).
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::AdminCaller;
use crate::store::disputes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    id: String,
    provider: String,
    transaction_id: Option<uuid::Uuid>,
    client_id: Option<String>,
    reason: String,
    status: String,
    /// Minor units.
    amount: Option<i64>,
    currency: Option<String>,
    /// The provider's own record of the dispute, as it sent it.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// PayPal's seller protection on the disputed capture (the purchase's, in the one-dispute view).
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_protection: Option<crate::api::payments::SellerProtectionView>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<entities::disputes::Model> for DisputeView {
    fn from(d: entities::disputes::Model) -> Self {
        Self {
            id: d.id,
            provider: d.provider,
            transaction_id: d.purchase_id,
            client_id: d.client_id,
            reason: d.reason,
            status: d.status,
            amount: d.amount,
            currency: d.currency,
            details: d.details,
            seller_protection: None,
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
    let Some(dispute) = disputes::find(&state.db, &id).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "dispute_not_found", "No such dispute."));
    };
    let purchase = match dispute.purchase_id {
        Some(purchase) => crate::store::purchases::load(&state.reads, purchase).await?,
        None => None,
    };
    let mut view = DisputeView::from(dispute);
    view.seller_protection = purchase.and_then(|p| crate::api::payments::SellerProtectionView::of(&p.purchase));
    Ok(ok(StatusCode::OK, view))
}
