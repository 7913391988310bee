//! The one login page for everyone, and signing out.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_web::AppState;
use ferrodesk_web::api::sessions::{SignInError, session_cookie_header, sign_in};
use ferrodesk_web::auth::{SESSION_LIFETIME, constant_time_eq, random_secret};
use serde::Deserialize;

use crate::error::{UiError, render};
use crate::forms::safe_next;
use crate::viewer::Viewer;

/// Double-submit cookie that protects the login form itself (there is no session yet).
const LOGIN_COOKIE: &str = "__Host-fd_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

fn login_page(status: StatusCode, next: &str, email: &str, error: Option<String>) -> Response {
    let csrf = random_secret("");
    let page = LoginPage {
        css: crate::assets::url("app.css"),
        csrf: csrf.clone(),
        next: next.to_owned(),
        email: email.to_owned(),
        error,
    };
    let mut resp = render(&page);
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub async fn page(Query(q): Query<NextParam>) -> Response {
    let next = q.next.as_deref().and_then(safe_next).unwrap_or("/");
    login_page(StatusCode::OK, next, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == LOGIN_COOKIE)
        .map(|(_, v)| v.to_owned())
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).unwrap_or("/").to_owned();
    if !login_cookie(&headers).is_some_and(|c| constant_time_eq(&c, &form.csrf)) {
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            &form.email,
            Some("The form expired. Please sign in again.".into()),
        );
    }
    match sign_in(&state, &form.email, form.password, peer).await {
        Ok((secret, _, _)) => {
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = session_cookie_header(&secret, SESSION_LIFETIME.as_secs()) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(SignInError::Invalid) => login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            &form.email,
            Some("The e-mail address or password is wrong.".into()),
        ),
        Err(SignInError::Throttled { retry_after_secs }) => login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &form.email,
            Some(format!("Too many attempts. Try again in {} minutes.", retry_after_secs.div_ceil(60))),
        ),
        Err(SignInError::Failed(e)) => UiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&form.csrf)?;
    state
        .store
        .delete_session(viewer.user.id, viewer.session.id)
        .await
        .map_err(|e| UiError::from(ferrodesk_web::error::ApiError::from(e)))?;
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = session_cookie_header("", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
