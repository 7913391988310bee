//! An e-mail as it was sent, for agents: the sender's formatting (sanitised HTML) in a
//! sandboxed frame that runs no code, inline images from the stored message, and remote images
//! only after the agent asks for them (loading one tells the sender the mail was read, and
//! could reach an internal address). Staff who may read the ticket see its mail; mail on no
//! ticket (quarantined, ignored) only admins.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::access::Action;
use ferrodesk_core::user::Role;
use ferrodesk_store::InboundMessage;
use ferrodesk_web::AppState;
use ferrodesk_web::error::ApiError;
use ferrodesk_web::usecases;
use serde::Deserialize;

use crate::error::{UiError, render};
use crate::forms::when;
use crate::viewer::Viewer;

#[derive(Deserialize)]
pub struct ViewQuery {
    /// `1`: show remote images.
    #[serde(default)]
    images: Option<String>,
}

impl ViewQuery {
    fn remote_images(&self) -> bool {
        self.images.as_deref() == Some("1")
    }
}

#[derive(Template)]
#[template(path = "desk/mail.html")]
struct MailPage {
    admin: bool,
    css: String,
    viewer_name: String,
    csrf: String,
    id: String,
    ticket_number: Option<i64>,
    subject: String,
    from: String,
    to: String,
    cc: String,
    date: String,
    received: String,
    has_html: bool,
    remote_images: bool,
    text: String,
    files: Vec<String>,
}

fn not_found() -> UiError {
    UiError::new(StatusCode::NOT_FOUND, "There is no such message.")
}

/// The message, if the viewer may read it, with its raw bytes and its ticket's number.
async fn readable(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> Result<(InboundMessage, Vec<u8>, Option<i64>), UiError> {
    if !viewer.is_staff() {
        return Err(not_found());
    }
    let id = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
    let message = state.store.inbound(id).await.map_err(|e| UiError::from(ApiError::from(e)))?.ok_or_else(not_found)?;
    let number = match message.ticket_id {
        Some(ticket) => {
            // 404 alike for a ticket the viewer may not read: nothing tells it exists.
            let t = usecases::find_ticket(state, &viewer.actor, &ticket.to_string(), Action::Read)
                .await
                .map_err(|_| not_found())?;
            Some(t.number.0)
        }
        None if viewer.actor.role == Role::Admin => None,
        None => return Err(not_found()),
    };
    let raw = state.store.inbound_raw(id).await.map_err(|e| UiError::from(ApiError::from(e)))?.ok_or_else(not_found)?;
    Ok((message, raw, number))
}

/// `GET /desk/mail/{id}`: the headers, the text, and the formatted body in a frame.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, UiError> {
    let (message, raw, ticket_number) = readable(&state, &viewer, &id).await?;
    // A message the parser cannot read (it is quarantined) shows as "unreadable", not a 500.
    let mail = ferrodesk_mail::parse::read(&raw, &Default::default()).ok_or_else(|| {
        UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "This message cannot be read; download the original.")
    })?;
    let list = |l: &[ferrodesk_mail::MailAddress]| l.iter().map(|a| a.address.clone()).collect::<Vec<_>>().join(", ");
    let page = MailPage {
        admin: viewer.actor.role == Role::Admin,
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        id: message.id.to_string(),
        ticket_number,
        subject: if mail.subject.is_empty() { "(no subject)".into() } else { mail.subject.clone() },
        from: mail.from.as_ref().map(|f| f.address.clone()).unwrap_or_else(|| "(no sender)".into()),
        to: list(&mail.to),
        cc: list(&mail.cc),
        date: mail.date.map(when).unwrap_or_default(),
        received: when(message.received_at),
        has_html: mail.html.is_some(),
        remote_images: q.remote_images(),
        text: mail.text,
        files: mail
            .files
            .iter()
            .map(|f| f.filename.clone())
            .chain(mail.dropped.iter().map(|d| d.filename.clone()))
            .collect(),
    };
    Ok(render(&page))
}

/// `GET /desk/mail/{id}/body`: the sanitised HTML, for the frame only: its own CSP allows no
/// script at all, images from us (and from anywhere only with `images=1`), and framing only by
/// our own pages.
pub async fn body(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, UiError> {
    let (message, raw, _) = readable(&state, &viewer, &id).await?;
    let Some(html) = ferrodesk_mail::parse::original_html(&raw) else { return Err(not_found()) };
    let remote = q.remote_images();
    let clean =
        ferrodesk_mail::html::sanitise_for_view(&html, remote, &format!("/desk/mail/{}/cid/", message.id.simple()));
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"></head>\
         <body>{clean}</body></html>"
    );
    let images = if remote { "img-src 'self' data: https: http:" } else { "img-src 'self' data:" };
    let csp = format!(
        "default-src 'none'; {images}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'self'; sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    );
    let mut response = axum::response::Html(document).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `GET /desk/mail/{id}/cid/{cid}`: an inline image of the message (images only).
pub async fn inline_image(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, cid)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let (_, raw, _) = readable(&state, &viewer, &id).await?;
    let mail = ferrodesk_mail::parse::read(&raw, &Default::default()).ok_or_else(not_found)?;
    let wanted = ferrodesk_mail::html::cid_key(&cid);
    let file = mail
        .files
        .into_iter()
        .find(|f| f.content_id.as_deref().map(ferrodesk_mail::html::cid_key).as_deref() == Some(wanted.as_str()))
        .ok_or_else(not_found)?;
    // Raster images only: an SVG could carry script, and nothing else belongs in an <img>.
    let content_type = match file.content_type.to_ascii_lowercase().as_str() {
        t @ ("image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp") => t.to_owned(),
        "image/jpg" => "image/jpeg".to_owned(),
        _ => return Err(not_found()),
    };
    let mut response = file.data.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    Ok(response)
}
