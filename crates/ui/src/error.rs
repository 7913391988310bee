//! Errors as HTML pages. API errors keep their status; the message shown is the safe detail.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferrodesk_web::error::ApiError;

#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub message: String,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        let message = match e.code {
            "not_found" => "We could not find that page. It may not exist, or it is not yours to see.".to_owned(),
            "stale_version" => "Someone else changed this ticket while you were editing it. Your change was not saved: reload the ticket, check what changed and try again.".to_owned(),
            _ => e.detail,
        };
        Self { status: e.status, message }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    css: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage { title, message: &self.message, css: crate::assets::url("app.css") };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

/// Renders a template or answers with a plain 500.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => UiError::from(ApiError::internal(e)).into_response(),
    }
}

impl From<ferrodesk_core::DomainError> for UiError {
    fn from(e: ferrodesk_core::DomainError) -> Self {
        UiError::from(ApiError::from(e))
    }
}
