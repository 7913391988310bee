//! One error type for the HTTP edge, rendered as RFC 9457 problem+json. Every case has a stable
//! snake_case `code`; internal causes are logged once and never shown to the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::DomainError;
use ferrodesk_store::StoreError;
use serde::Serialize;

/// An API failure: status, stable code and a message safe to show.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// For validation errors: which input field.
    pub field: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:ferrodesk:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), field: None }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "you are not allowed to do this")
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in or send a valid API token")
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail)
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// An unexpected failure: log the cause, show a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            problem_type: format!("urn:ferrodesk:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            field: self.field,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        resp
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::Invalid { field, reason } => ApiError::invalid(field, format!("{field}: {reason}")),
            DomainError::InvalidTransition { .. } | DomainError::TicketClosed => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what } => {
                ApiError::new(StatusCode::CONFLICT, "duplicate", format!("a record with this {what} already exists"))
            }
            StoreError::Conflict { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "stale_version",
                format!("the ticket was changed by someone else (now version {current}); reload and try again"),
            ),
            StoreError::MissingReference { what } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_reference", format!("{what} does not exist"))
            }
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Full => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the server's disk is full; nothing was saved, please try again later",
            ),
            StoreError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_busy",
                "the database is busy; nothing was changed, please try again",
            ),
            StoreError::QuotaExceeded => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "upload_quota_exceeded", "the upload quota is used up")
            }
            StoreError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "refused", why),
            StoreError::Invalid(e) => e.into(),
            StoreError::Throttled { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "too many attempts; try again later")
            }
            StoreError::Schema(m) | StoreError::Database(m) => ApiError::internal(m),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the JSON does not fit: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is larger than allowed")
            }
            other => ApiError::bad_request("bad_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::not_found()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_map_to_stable_codes() {
        let cases = [
            (StoreError::Busy, 503, "database_busy"),
            (StoreError::Conflict { current: 3 }, 412, "stale_version"),
            (StoreError::Duplicate { what: "email".into() }, 409, "duplicate"),
            (StoreError::MissingReference { what: "group".into() }, 422, "unknown_reference"),
            (StoreError::QuotaExceeded, 413, "upload_quota_exceeded"),
            (StoreError::Refused("no".into()), 409, "refused"),
            (StoreError::NotFound, 404, "not_found"),
            (StoreError::Database("secret detail".into()), 500, "internal_error"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
            assert!(!api.detail.contains("secret detail"), "internal causes are never shown");
        }
    }
}
