//! Authentication: API tokens (hashed at rest), argon2id passwords, and the [`Auth`] extractor
//! that turns a request into an [`Actor`] for the core's access decisions.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use ferrodesk_core::access::Actor;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Prefix that makes leaked tokens easy to recognise by secret scanners.
pub const TOKEN_PREFIX: &str = "fdk_";

/// A new random API token secret (256 bits).
pub fn generate_token() -> String {
    random_secret(TOKEN_PREFIX)
}

/// Tokens are high-entropy, so a fast hash is enough; lookup is by hash, never by secret.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id on a blocking thread (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut salt_bytes);
        let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks a password against a stored hash on a blocking thread. With no stored hash it still
/// does the work of a check against a fixed hash, so timing does not reveal which accounts exist.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$N6BE1c0Gp9U4zM7m1gF5b9H2h0m2HFe2m6XxCXq7VYk";
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (dummy, false),
        };
        let parsed = PasswordHash::new(hash).map_err(ApiError::internal)?;
        Ok(argon2().verify_password(password.as_bytes(), &parsed).is_ok() && real)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Name of the session cookie. `__Host-` binds it to our origin (Secure, Path=/, no Domain).
pub const SESSION_COOKIE: &str = "__Host-fd_session";
/// Header that cookie-authenticated writes must carry (the session's CSRF token).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends after this long without use…
pub const SESSION_IDLE: jiff::SignedDuration = jiff::SignedDuration::from_hours(8);
/// …and at the latest this long after sign-in.
pub const SESSION_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 7);

/// A random secret: 256 bits, URL-safe, with a recognisable prefix.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The session secret from the request's cookies, if any.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.len() < 200)
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The authenticated caller and, when signed in through a browser, their session.
pub struct Caller {
    pub actor: Actor,
    pub session: Option<ferrodesk_store::Session>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            let Auth(actor) = bearer(parts, state).await?;
            return Ok(Caller { actor, session: None });
        }
        let secret = session_cookie(parts).ok_or_else(ApiError::unauthenticated)?;
        let ferrodesk_store::SignedIn { session, actor, .. } = state
            .store
            .signed_in(&hash_token(&secret), state.now(), SESSION_IDLE)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        // Cookies ride along on cross-site requests; a write must also prove it read our page.
        if !parts.method.is_safe() {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !constant_time_eq(sent, &session.csrf_token) {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "this change needs the X-CSRF-Token header of your session",
                ));
            }
        }
        Ok(Caller { actor, session: Some(session) })
    }
}

/// The authenticated caller's rights. Rejects with 401 when no valid credentials were sent.
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state).await.map(|c| Auth(c.actor))
    }
}

/// Authenticates a bearer API token.
async fn bearer(parts: &Parts, state: &AppState) -> Result<Auth, ApiError> {
    let header =
        parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(ApiError::unauthenticated)?;
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| s.starts_with(TOKEN_PREFIX) && s.len() < 200)
        .ok_or_else(ApiError::unauthenticated)?;
    let actor =
        state.store.token_actor(&hash_token(secret), state.now()).await?.ok_or_else(ApiError::unauthenticated)?;
    Ok(Auth(actor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery".into()).await.unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await.unwrap_or(false));
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await.unwrap_or(true));
        assert!(!verify_password("anything at all".into(), None).await.unwrap_or(true));
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
