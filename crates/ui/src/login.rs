//! The one login page for everyone, and signing out.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_web::AppState;
use ferrodesk_web::api::sessions::{SignInError, session_cookie_header, sign_in};
use ferrodesk_web::auth::{SESSION_LIFETIME, constant_time_eq, random_secret};
use ferrodesk_web::client::ClientAddr;
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
    with_form_cookie(render(&page), status, &csrf)
}

/// Sets the double-submit cookie of a sign-in form (login, forgot, reset) and forbids caching.
fn with_form_cookie(mut resp: Response, status: StatusCode, csrf: &str) -> Response {
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={csrf}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    css: String,
    csrf: String,
    message: Option<String>,
    error: Option<String>,
}

fn forgot(status: StatusCode, message: Option<String>, error: Option<String>) -> Response {
    let csrf = random_secret("");
    let page = ForgotPage { css: crate::assets::url("app.css"), csrf: csrf.clone(), message, error };
    with_form_cookie(render(&page), status, &csrf)
}

pub async fn forgot_page() -> Response {
    forgot(StatusCode::OK, None, None)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
    csrf: String,
}

/// The same page and answer whatever the address (no account enumeration).
pub async fn forgot_submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Response {
    if !login_cookie(&headers).is_some_and(|c| constant_time_eq(&c, &form.csrf)) {
        return forgot(StatusCode::FORBIDDEN, None, Some("The form expired. Please try again.".into()));
    }
    ferrodesk_web::api::password_reset::start_reset(&state, &form.email, client);
    forgot(StatusCode::OK, Some(ferrodesk_web::api::password_reset::REQUESTED.into()), None)
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    css: String,
    csrf: String,
    token: String,
    error: Option<String>,
}

fn reset(status: StatusCode, token: &str, error: Option<String>) -> Response {
    let csrf = random_secret("");
    let page = ResetPage { css: crate::assets::url("app.css"), csrf: csrf.clone(), token: token.to_owned(), error };
    with_form_cookie(render(&page), status, &csrf)
}

#[derive(Deserialize)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

pub async fn reset_page(Query(q): Query<TokenParam>) -> Response {
    reset(StatusCode::OK, &q.token, None)
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
    csrf: String,
}

pub async fn reset_submit(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<ResetForm>) -> Response {
    if !login_cookie(&headers).is_some_and(|c| constant_time_eq(&c, &form.csrf)) {
        return reset(StatusCode::FORBIDDEN, &form.token, Some("The form expired. Please try again.".into()));
    }
    match ferrodesk_web::api::password_reset::confirm(&state, &form.token, form.password).await {
        Ok(()) => Redirect::to("/login?reset=done").into_response(),
        Err(e) if e.status == StatusCode::INTERNAL_SERVER_ERROR => UiError::from(e).into_response(),
        Err(e) => reset(e.status, &form.token, Some(e.detail)),
    }
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
    ClientAddr(client): ClientAddr,
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
    match sign_in(&state, &form.email, form.password, client).await {
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
    pub csrf: String,
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
