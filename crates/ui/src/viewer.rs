//! Who is looking: the signed-in user of a browser session, and the CSRF check of forms.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_core::access::Actor;
use ferrodesk_core::user::User;
use ferrodesk_store::Session;
use ferrodesk_web::AppState;
use ferrodesk_web::auth::{SESSION_IDLE, constant_time_eq, hash_token, session_cookie};

use crate::error::UiError;

/// The signed-in user. Pages that need one redirect anonymous visitors to the login page.
pub struct Viewer {
    pub actor: Actor,
    pub user: User,
    pub session: Session,
}

impl Viewer {
    /// Checks a form's CSRF token against this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), UiError> {
        if constant_time_eq(sent, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(UiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "This form has expired. Go back, reload the page and try again.",
            ))
        }
    }

    pub fn is_staff(&self) -> bool {
        self.actor.role.is_staff()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", crate::forms::url_encode(next))).into_response()
        };
        let Some(secret) = session_cookie(parts) else { return Err(to_login()) };
        match state.store.signed_in(&hash_token(&secret), state.now(), SESSION_IDLE).await {
            Ok(Some(ferrodesk_store::SignedIn { session, actor, user })) => Ok(Viewer { actor, user, session }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(UiError::from(ferrodesk_web::error::ApiError::from(e)).into_response()),
        }
    }
}

/// `/`: requesters go to the portal, staff to the desk.
pub async fn home(viewer: Viewer) -> Redirect {
    Redirect::to(if viewer.is_staff() { "/desk" } else { "/portal" })
}
