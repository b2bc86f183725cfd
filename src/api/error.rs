//! Every error the API returns, rendered in one place as the spec's envelope:
//! `{"success":false,"error":{"code","message",…}}` with the matching HTTP status.
use crate::actors::purchase::PurchaseError;
use crate::auth::AuthError;
use crate::domain::failure::FailureCode;
use crate::domain::ids::TransactionId;
use crate::domain::purchase::Rejected;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::borrow::Cow;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub suggested_action: Option<&'static str>,
    pub transaction_id: Option<Uuid>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable, machine-readable: `card_declined`, `invalid_request`, `unauthorized`…
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^txn_[0-9a-f-]{36}$")]
    pub transaction_id: Option<TransactionId>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            suggested_action: None,
            transaction_id: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; nothing was charged twice. Try again.",
        )
    }

    /// A payment the provider refused, a method it does not know included (as Stripe's own 402: the request was
    /// well formed, the payment failed): 402 with the reason and what to do next (AC9.1.4).
    pub fn payment_failed(failure: &FailureCode, transaction_id: Uuid) -> Self {
        Self {
            status: StatusCode::PAYMENT_REQUIRED,
            code: Cow::Owned(failure.code().to_owned()),
            message: failure.message().to_owned(),
            suggested_action: Some(failure.suggested_action()),
            transaction_id: Some(transaction_id),
            retry_after: None,
        }
    }
}

impl ApiError {
    fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: self.code.clone().into_owned(),
                message: self.message.clone(),
                suggested_action: self.suggested_action.map(str::to_owned),
                transaction_id: self.transaction_id.map(TransactionId),
            },
        }
    }

    /// The error envelope as JSON text, as `into_response` sends it: for an answer stored under an idempotency key.
    pub fn body(&self) -> String {
        serde_json::to_string(&self.envelope()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.envelope())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        match crate::store::is_busy(&e) {
            // Other requests held the client's credits or the record throughout the step's tries
            // (`Writer::write_when_free`): nothing was written, and a retry a moment later will do.
            true => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "Other requests held what this one needs throughout its tries; nothing was written. Retry shortly.",
                )
            },
            false => Self::internal(e),
        }
    }
}

impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        match e {
            PurchaseError::Rejected(rejected) => {
                let code = match rejected {
                    Rejected::Expired => "checkout_expired",
                    Rejected::NotReady => "checkout_not_ready",
                    Rejected::PaymentMethodRequired => "payment_method_required",
                    Rejected::NeverStarted => "checkout_not_started",
                    Rejected::NewCheckoutNeeded => "new_checkout_needed",
                    Rejected::NotUnderReview => "not_under_review",
                    Rejected::TooManyAttempts => "too_many_attempts",
                };
                let status = if rejected == Rejected::PaymentMethodRequired {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::CONFLICT
                };
                Self::new(status, code, rejected.to_string())
            }
            PurchaseError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction.")
            }
            PurchaseError::Unavailable(e) => {
                tracing::error!(error = %e, "purchase actor unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "The payment could not be processed right now; try again.",
                )
            }
            PurchaseError::Busy => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "This payment is busy with an earlier request; your request is queued. Retry shortly to see its outcome.",
                )
            },
            PurchaseError::Store(e) => Self::internal(e),
        }
    }
}

/// The success envelope: `{"success":true,"data":…}`.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, axum::Json(ok_envelope(data))).into_response()
}

/// The success envelope, as `ok` sends it.
pub fn ok_envelope<T: Serialize>(data: T) -> serde_json::Value {
    json!({ "success": true, "data": data })
}

#[cfg(test)]
mod tests {
    use super::ApiError;
    use axum::http::StatusCode;

    // A step that other requests kept from a lock throughout its tries wrote nothing: the caller is told to retry
    // (503 `busy`, `Retry-After`), not that something broke; any other store error stays a 500.
    #[test]
    fn a_busy_store_is_a_retry_and_other_store_errors_are_internal() {
        let busy = ApiError::from(crate::store::busy("ledger:c1"));
        assert_eq!(
            (busy.status, busy.code.as_ref(), busy.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, "busy", Some(1))
        );
        let broken = ApiError::from(sea_orm::DbErr::Custom("disk I/O error".into()));
        assert_eq!((broken.status, broken.code.as_ref()), (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"));
    }
}
