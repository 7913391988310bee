//! The HTML UI: server-rendered pages (askama), assets carried in the binary, no JavaScript
//! needed to use any page. It calls the same use cases and the same permission function as the
//! API (`ferrodesk_web::usecases`, `core::access::decide`); it never decides access by hiding.

mod admin;
mod assets;
mod desk;
mod error;
mod forms;
mod held_mail;
mod login;
mod mail_view;
mod portal;
mod viewer;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use ferrodesk_web::AppState;

/// Every UI route, with the security headers of HTML pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(viewer::home))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/forgot", get(login::forgot_page).post(login::forgot_submit))
        .route("/reset-password", get(login::reset_page).post(login::reset_submit))
        .route("/portal", get(portal::requests))
        // Forms with files stream and check their own per-file limit (`forms::FormData`).
        .route("/portal/new", get(portal::new_form).post(portal::create).layer(DefaultBodyLimit::disable()))
        .route("/portal/tickets/{number}", get(portal::ticket))
        .route("/portal/by-mail", get(portal::by_mail_page_get).post(portal::by_mail_post))
        .route("/portal/tickets/{number}/reply", post(portal::reply).layer(DefaultBodyLimit::disable()))
        .route("/portal/tickets/{number}/{action}", post(portal::act))
        .route("/desk", get(desk::queue))
        .route("/desk/bulk", post(desk::bulk))
        .route("/desk/filters", post(desk::save_filter))
        .route("/desk/filters/{id}/delete", post(desk::delete_filter))
        .route("/desk/tickets/{number}", get(desk::ticket))
        .route("/desk/mail/{id}", get(mail_view::page))
        .route("/desk/mail/{id}/body", get(mail_view::body))
        .route("/desk/mail/{id}/cid/{cid}", get(mail_view::inline_image))
        .route("/desk/tickets/{number}/comment", post(desk::comment).layer(DefaultBodyLimit::disable()))
        .route("/desk/tickets/{number}/events", get(desk::events))
        .route("/desk/tickets/{number}/update", post(desk::update))
        .route("/desk/tickets/{number}/held/{id}/{verdict}", post(held_mail::decide))
        .route("/desk/tickets/{number}/{action}", post(desk::act))
        .route("/admin", get(|_: viewer::Viewer| async { axum::response::Redirect::to("/admin/users") }))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}/{action}", post(admin::change_user))
        .route("/admin/groups", get(admin::groups).post(admin::create_group))
        .route("/admin/groups/{id}/{action}", post(admin::group_member))
        .route("/admin/directory", get(admin::directory))
        .route("/admin/directory/{what}", post(admin::create_entry))
        .route("/admin/directory/{what}/{id}", post(admin::edit_entry))
        .route("/admin/tokens", get(admin::all_tokens))
        .route("/admin/tokens/revoke", post(admin::revoke_any_token))
        .route("/admin/settings", get(admin::settings).post(admin::save_settings))
        .route("/admin/mail", get(admin::mail))
        .route("/admin/mail/mailboxes", post(admin::add_mailbox))
        .route("/admin/mail/mailboxes/{id}/toggle", post(admin::toggle_mailbox))
        .route("/admin/mail/inbound/{id}/{action}", post(admin::inbound_action))
        .route("/account/tokens", get(admin::tokens))
        .route("/account/tokens/{action}", post(admin::token_action))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Headers for every UI response: a strict CSP (no inline script, no framing, no plugins, no
/// `<base>` tricks), no sniffing, no referrer leaks to other sites.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // A response that set its own policy keeps it (the sandboxed frame of a formatted e-mail).
    if h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return response;
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
             base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
