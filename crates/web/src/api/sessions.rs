//! Signing in and out: server-side sessions for the browser, with login throttling per account
//! and per address that holds exactly under concurrency, and "log out everywhere".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::ids::{SessionId, UserId};
use ferrodesk_store::{Session, ThrottleRule};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, parse_id};
use crate::AppState;
use crate::auth::{Auth, Caller, SESSION_COOKIE, SESSION_LIFETIME, hash_token, random_secret, verify_password};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::{Page, UserView, page};

/// Attempts per account, and per client address, in one window.
pub const ACCOUNT_ATTEMPTS: i64 = 5;
pub const THROTTLE_WINDOW: SignedDuration = SignedDuration::from_mins(15);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(list_sessions, end_all_sessions))
        .routes(routes!(end_session))
        .routes(routes!(end_user_sessions))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    user: UserView,
    /// Send as `X-CSRF-Token` with every cookie-authenticated change.
    csrf_token: String,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "the e-mail address or password is wrong")
}

/// Why a sign-in did not succeed.
pub enum SignInError {
    /// Wrong address or password, unknown or deactivated account: one answer for all.
    Invalid,
    /// Too many attempts for the account or the address.
    Throttled {
        retry_after_secs: u64,
    },
    Failed(ApiError),
}

impl From<ApiError> for SignInError {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<ferrodesk_store::StoreError> for SignInError {
    fn from(e: ferrodesk_store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// Checks e-mail and password under the login throttle and opens a session: returns the session
/// secret (for the cookie), the session and the user. Shared by the API and the login page.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
    client: std::net::IpAddr,
) -> Result<(String, Session, ferrodesk_core::user::User), SignInError> {
    let now = state.now();
    let account = email.trim().to_lowercase();
    let rules = [
        ThrottleRule { key: format!("account:{account}"), limit: ACCOUNT_ATTEMPTS },
        ThrottleRule { key: format!("address:{client}"), limit: state.limits.sign_ins_per_address },
    ];
    if let Some(until) = state.store.admit_login(&rules, now, THROTTLE_WINDOW).await? {
        let retry_after_secs = until.duration_since(now).as_secs().max(1).unsigned_abs();
        return Err(SignInError::Throttled { retry_after_secs });
    }
    let found = match ferrodesk_core::user::EmailAddress::parse(&account) {
        Ok(email) => state.store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((u, h)) if u.active => (Some(u), h),
        _ => (None, None),
    };
    // Over-long passwords are refused after the same work, not hashed (argon2 cost grows with length).
    let password = if password.len() > 1024 { String::new() } else { password };
    let valid = verify_password(password, hash).await?;
    let Some(user) = user.filter(|_| valid) else {
        return Err(SignInError::Invalid);
    };
    state.store.clear_login_attempts(&rules[0].key).await?;
    let secret = random_secret("fds_");
    let session = Session {
        id: SessionId::generate(),
        user_id: user.id,
        csrf_token: random_secret(""),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_LIFETIME,
    };
    state.store.create_session(&session, &hash_token(&secret)).await?;
    tracing::info!(user = %user.id, "signed in");
    Ok((secret, session, user))
}

/// The `Set-Cookie` value of a session (an empty secret with age 0 clears it).
pub fn session_cookie_header(secret: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .map_err(ApiError::internal)
}

/// Sign in with e-mail and password; sets the session cookie. Unknown addresses and wrong
/// passwords get the same answer, after the same work.
#[utoipa::path(post, path = "/auth/login", tag = "sessions", request_body = Login, security(()),
    responses((status = 200, body = SignedIn), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    crate::client::ClientAddr(client): crate::client::ClientAddr,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let (secret, session, user) = match sign_in(&state, &body.email, body.password, client).await {
        Ok(signed) => signed,
        Err(SignInError::Invalid) => return Err(invalid_credentials()),
        Err(SignInError::Throttled { retry_after_secs }) => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many sign-in attempts; try again in {} minutes", retry_after_secs.div_ceil(60)),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
        Err(SignInError::Failed(e)) => return Err(e),
    };
    let body = SignedIn { user: user.into(), csrf_token: session.csrf_token, expires_at: session.expires_at };
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&secret, SESSION_LIFETIME.as_secs())?);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Sign out: ends this browser session and clears its cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "sessions", responses((status = 204)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if let Some(session) = caller.session {
        state.store.delete_session(caller.actor.user_id, session.id).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie_header("", 0)?);
    Ok(resp)
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: SessionId,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    last_seen_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    /// This is the session making the request.
    current: bool,
}

/// The caller's signed-in sessions.
#[utoipa::path(get, path = "/auth/sessions", tag = "sessions", responses((status = 200, body = Page<SessionView>)))]
async fn list_sessions(State(state): State<AppState>, caller: Caller) -> Result<Json<Page<SessionView>>, ApiError> {
    let current = caller.session.map(|s| s.id);
    let sessions = state.store.list_sessions(caller.actor.user_id).await?;
    Ok(page(
        sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                current: Some(s.id) == current,
            })
            .collect(),
    ))
}

/// Log out everywhere: ends every session of the caller, this one included.
#[utoipa::path(delete, path = "/auth/sessions", tag = "sessions", responses((status = 204)))]
async fn end_all_sessions(State(state): State<AppState>, Auth(actor): Auth) -> Result<StatusCode, ApiError> {
    state.store.delete_sessions(actor.user_id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End one of the caller's sessions.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "sessions", params(("id" = String, Path)), responses((status = 204)))]
async fn end_session(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: SessionId = parse_id(&id)?;
    if state.store.delete_session(actor.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// End every session of a user (admins, e.g. for a lost laptop).
#[utoipa::path(delete, path = "/users/{id}/sessions", tag = "sessions", params(("id" = String, Path)), responses((status = 204)))]
async fn end_user_sessions(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user: UserId = parse_id(&id)?;
    authorise(&actor, Resource::User(user), Action::Administer)?;
    state.store.user(user).await?.ok_or_else(ApiError::not_found)?;
    state.store.delete_sessions(user, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
