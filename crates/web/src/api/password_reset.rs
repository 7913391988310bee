//! Forgotten passwords: a link by e-mail (signed, single-use, expiring in 30 minutes). The
//! request always gets the same answer, at once, whether or not the address has an account:
//! the work (throttle, look-up, issuing, queueing the mail) happens after the answer, so
//! neither the answer nor its timing tells who has an account. The link goes only to the
//! account's own stored address and points at the configured base URL, never at the Host
//! the request named.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ferrodesk_core::user::{EmailAddress, validate_password};
use ferrodesk_mail::outbound::{MailJob, Notification};
use ferrodesk_mail::reset::{RESET_LIFETIME, ResetTokens, token_hash};
use ferrodesk_store::{PasswordReset, ThrottleRule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::sessions::THROTTLE_WINDOW;
use crate::AppState;
use crate::auth::hash_password;
use crate::error::ApiError;
use crate::json::ApiJson;

/// Reset mails per account, and requests per client address, in one throttle window.
const RESETS_PER_ACCOUNT: i64 = 3;
const RESETS_PER_ADDRESS: i64 = 20;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_reset)).routes(routes!(confirm_reset))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetRequested {
    detail: &'static str,
}

pub const REQUESTED: &str = "If an account with this address exists, a link to choose a new password is on its way.";

/// Ask for a password-reset link by e-mail. The answer is always the same.
#[utoipa::path(post, path = "/auth/password-reset", tag = "sessions", request_body = ResetRequest, security(()),
    responses((status = 202, body = ResetRequested)))]
async fn request_reset(
    State(state): State<AppState>,
    crate::client::ClientAddr(client): crate::client::ClientAddr,
    ApiJson(body): ApiJson<ResetRequest>,
) -> (StatusCode, Json<ResetRequested>) {
    start_reset(&state, &body.email, client);
    (StatusCode::ACCEPTED, Json(ResetRequested { detail: REQUESTED }))
}

/// Starts a reset in the background (shared with the login page's form).
pub fn start_reset(state: &AppState, email: &str, client: IpAddr) {
    let (state, email) = (state.clone(), email.to_owned());
    tokio::spawn(async move {
        if let Err(e) = issue(&state, &email, client).await {
            tracing::warn!(error = %e.detail, "a password reset could not be issued");
        }
    });
}

async fn issue(state: &AppState, email: &str, client: IpAddr) -> Result<(), ApiError> {
    // Only one plain address: lists, header tricks and anything else name no account.
    let Ok(address) = EmailAddress::parse(email) else { return Ok(()) };
    let now = state.now();
    let rules = [
        ThrottleRule { key: format!("reset-account:{address}"), limit: RESETS_PER_ACCOUNT },
        ThrottleRule { key: format!("reset-address:{client}"), limit: RESETS_PER_ADDRESS },
    ];
    if state.store.admit_login(&rules, now, THROTTLE_WINDOW).await?.is_some() {
        tracing::info!("password reset throttled");
        return Ok(());
    }
    let Some((user, _)) = state.store.user_by_email(&address).await? else { return Ok(()) };
    if !user.active {
        return Ok(());
    }
    let tokens = ResetTokens::load(&state.store, state.secrets.as_ref()).await?;
    let id = uuid::Uuid::now_v7();
    let reset = PasswordReset {
        id,
        user_id: user.id,
        token_hash: token_hash(&tokens.token(id)),
        created_at: now,
        expires_at: now.checked_add(RESET_LIFETIME).unwrap_or(now),
    };
    let mail = MailJob { reset: Some(id), ..MailJob::about(Notification::PasswordReset, None, user.id) };
    state.store.create_password_reset(&reset, mail.into_job(None, now)).await?;
    tracing::info!(user = %user.id, "password reset issued");
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the e-mailed link.
    token: String,
    /// The new password (at least 10 characters).
    password: String,
}

/// Choose a new password with the token from the e-mailed link. The token works once, for 30
/// minutes, and only if no newer link was sent and the password was not changed meanwhile;
/// every session of the account ends.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "sessions", request_body = ResetConfirm, security(()),
    responses((status = 204), (status = 400, body = crate::error::Problem)))]
async fn confirm_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    confirm(&state, &body.token, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the new password if the token is live (shared with the reset page).
pub async fn confirm(state: &AppState, token: &str, password: String) -> Result<(), ApiError> {
    validate_password(&password)?;
    let hash = hash_password(password).await?;
    match state.store.use_password_reset(&token_hash(token.trim()), &hash, state.now()).await? {
        Some(user) => {
            tracing::info!(%user, "password reset used");
            Ok(())
        }
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_reset_token",
            "this link is not valid (any more); ask for a new one",
        )),
    }
}
