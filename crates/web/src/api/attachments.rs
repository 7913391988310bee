//! Attachments: upload to a ticket (or one of its comments), list, download. Downloads are
//! always served as attachments with `nosniff` and a sandboxing CSP, so no uploaded file is ever
//! rendered as active content on our origin.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::access::{Action, Resource, TicketFacts};
use ferrodesk_core::attachment::{sanitize_filename, served_content_type};
use ferrodesk_core::ids::{AttachmentId, CommentId};
use ferrodesk_store::Attachment;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::parse_id;
use super::tickets::find_ticket;
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::views::{Page, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The upload streams and checks its own limit, so the JSON body limit does not apply.
        .routes(routes!(upload_attachment, list_attachments).layer(DefaultBodyLimit::disable()))
        .routes(routes!(download_attachment))
}

#[derive(Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: AttachmentId,
    pub comment_id: Option<CommentId>,
    pub internal: bool,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        Self {
            id: a.id,
            comment_id: a.comment_id,
            internal: a.internal,
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            created_at: a.created_at,
        }
    }
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(format = Binary)]
    file: String,
    /// Attach to this comment of the ticket (its visibility applies).
    comment_id: Option<CommentId>,
    /// For staff: an internal attachment, never shown to requesters.
    internal: Option<bool>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "attachment_too_large", "the file is larger than allowed");
    }
    ApiError::bad_request("malformed_upload", format!("the upload is not valid multipart/form-data: {}", e.body_text()))
}

async fn small_text(field: axum::extract::multipart::Field<'_>, name: &str) -> Result<String, ApiError> {
    let bytes = field.bytes().await.map_err(multipart_error)?;
    if bytes.len() > 100 {
        return Err(ApiError::invalid(name, "too long"));
    }
    String::from_utf8(bytes.to_vec()).map(|s| s.trim().to_owned()).map_err(|_| ApiError::invalid(name, "must be text"))
}

/// Upload a file (form field `file`) to the ticket.
#[utoipa::path(post, path = "/tickets/{id}/attachments", tag = "attachments", params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = AttachmentView), (status = 413, body = crate::error::Problem)))]
async fn upload_attachment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<AttachmentView>), ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::Attach).await?;
    let mut form = form.map_err(|e| ApiError::bad_request("malformed_upload", e.body_text()))?;
    let max = state.limits.attachment_bytes;
    let mut file: Option<(String, String, Vec<u8>)> = None;
    let mut comment_id: Option<CommentId> = None;
    let mut internal = false;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" if file.is_none() => {
                let name = sanitize_filename(field.file_name().unwrap_or_default());
                let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
                let mut data = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if data.len() + chunk.len() > max {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "attachment_too_large",
                            format!("a file may have at most {} MB", max / (1024 * 1024)),
                        ));
                    }
                    data.extend_from_slice(&chunk);
                }
                file = Some((name, content_type, data));
            }
            "file" => return Err(ApiError::bad_request("malformed_upload", "send one file per request")),
            "comment_id" => {
                let raw = small_text(field, "comment_id").await?;
                comment_id = Some(raw.parse().map_err(|_| ApiError::invalid("comment_id", "must be a comment id"))?);
            }
            "internal" => internal = small_text(field, "internal").await? == "true",
            other => return Err(ApiError::bad_request("malformed_upload", format!("unknown form field {other:?}"))),
        }
    }
    let Some((filename, content_type, data)) = file else {
        return Err(ApiError::invalid("file", "send the file in a form field named file"));
    };
    if let Some(cid) = comment_id {
        // The comment must be on this ticket and visible to the uploader; its visibility wins.
        let may_see_internal = crate::usecases::sees_internal(&actor, &ticket);
        let comment = state.store.comments(ticket.id, may_see_internal).await?.into_iter().find(|c| c.id == cid);
        let Some(comment) = comment else {
            return Err(ApiError::invalid("comment_id", "no such comment on this ticket"));
        };
        internal = comment.internal;
    }
    if internal {
        super::authorise(&actor, Resource::Ticket(&TicketFacts::from(&ticket)), Action::InternalNote)?;
    }
    let attachment =
        crate::usecases::attach_file(&state, &actor, &ticket, &filename, &content_type, data, comment_id, internal)
            .await?;
    Ok((StatusCode::CREATED, Json(attachment.into())))
}

/// The ticket's attachments; internal ones only for staff.
#[utoipa::path(get, path = "/tickets/{id}/attachments", tag = "attachments", params(("id" = String, Path)),
    responses((status = 200, body = Page<AttachmentView>)))]
async fn list_attachments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Page<AttachmentView>>, ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::Read).await?;
    let internal = crate::usecases::sees_internal(&actor, &ticket);
    Ok(page(state.store.attachments(ticket.id, internal).await?.into_iter().map(Into::into).collect()))
}

/// `Content-Disposition: attachment` with an ASCII fallback and the UTF-8 name (RFC 6266/8187).
fn content_disposition(filename: &str) -> String {
    let fallback: String =
        filename.chars().map(|c| if c.is_ascii_alphanumeric() || " .-_()".contains(c) { c } else { '_' }).collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Download an attachment. Unknown and invisible attachments are both 404.
#[utoipa::path(get, path = "/attachments/{id}", tag = "attachments", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Page<u8>), (status = 404, body = crate::error::Problem)))]
async fn download_attachment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: AttachmentId = parse_id(&id)?;
    let attachment = state.store.attachment(id).await?.ok_or_else(ApiError::not_found)?;
    let ticket = find_ticket(&state, &actor, &attachment.ticket_id.to_string(), Action::Read).await?;
    if attachment.internal && !crate::usecases::sees_internal(&actor, &ticket) {
        return Err(ApiError::not_found());
    }
    let data =
        state.store.blob(&attachment.sha256).await?.ok_or_else(|| ApiError::internal("attachment blob missing"))?;
    let mut resp = data.into_response();
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, &served_content_type(&attachment.content_type));
    set(h, header::CONTENT_DISPOSITION, &content_disposition(&attachment.filename));
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'");
    set(h, header::CACHE_CONTROL, "private, no-store");
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn disposition_is_always_attachment_and_encoded() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let d = content_disposition("Résumé \"x\";.pdf");
        assert!(d.starts_with("attachment; filename=\"R_sum_ _x__.pdf\""), "{d}");
        assert!(d.contains("filename*=UTF-8''R%C3%A9sum%C3%A9%20%22x%22%3B.pdf"), "{d}");
    }
}
