//! Work around a ticket: merging duplicates, links (parent/child, related), time entries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ferrodesk_core::access::{Action, Resource, TicketFacts, decide};
use ferrodesk_store::LinkKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::{expected_version, find_ticket, with_etag};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::{Page, TicketView, TimeEntryView, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merge_ticket))
        .routes(routes!(link_ticket, list_links))
        .routes(routes!(unlink_ticket))
        .routes(routes!(log_time, list_time))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeTicket {
    /// The ticket to keep (id or number); this one is closed into it.
    into: String,
}

/// Merge this duplicate into another ticket: its conversation moves there, its requester and
/// watchers become the target's watchers, and it is closed as merged.
#[utoipa::path(post, path = "/tickets/{id}/merge", tag = "ticket actions", request_body = MergeTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn merge_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MergeTicket>,
) -> Result<Response, ApiError> {
    let source = find_ticket(&state, &actor, &id, Action::Merge).await?;
    let source_version = expected_version(&headers, &source)?;
    let target = crate::usecases::merge_into(&state, &actor, source, source_version, &body.into).await?;
    Ok(with_etag(StatusCode::OK, target))
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkKindView {
    /// The other ticket is this one's parent (e.g. its major incident).
    Parent,
    /// The other ticket is this one's child.
    Child,
    Related,
}

impl From<LinkKind> for LinkKindView {
    fn from(k: LinkKind) -> Self {
        match k {
            LinkKind::Parent => Self::Parent,
            LinkKind::Child => Self::Child,
            LinkKind::Related => Self::Related,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// The other ticket (id or number).
    ticket: String,
    kind: LinkKindView,
}

#[derive(Serialize, ToSchema)]
pub struct LinkView {
    kind: LinkKindView,
    ticket: TicketView,
}

/// Link another ticket as parent, child or related.
#[utoipa::path(post, path = "/tickets/{id}/links", tag = "ticket actions", request_body = NewLink, params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = crate::error::Problem)))]
async fn link_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewLink>,
) -> Result<StatusCode, ApiError> {
    let this = find_ticket(&state, &actor, &id, Action::Link).await?;
    let other = find_ticket(&state, &actor, &body.ticket, Action::Link)
        .await
        .map_err(|_| ApiError::invalid("ticket", "no such ticket that you may link"))?;
    let kind = match body.kind {
        LinkKindView::Parent => LinkKind::Parent,
        LinkKindView::Child => LinkKind::Child,
        LinkKindView::Related => LinkKind::Related,
    };
    state.store.link_tickets(this.id, other.id, kind, Some(actor.user_id), state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tickets linked to this one (only those the caller may see).
#[utoipa::path(get, path = "/tickets/{id}/links", tag = "ticket actions", params(("id" = String, Path)), responses((status = 200, body = Page<LinkView>)))]
async fn list_links(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Page<LinkView>>, ApiError> {
    let this = find_ticket(&state, &actor, &id, Action::Read).await?;
    let links = state.store.ticket_links(this.id).await?;
    Ok(page(
        links
            .into_iter()
            .filter(|(_, t)| decide(&actor, Resource::Ticket(&TicketFacts::from(t)), Action::Read).is_allowed())
            .map(|(kind, t)| LinkView { kind: kind.into(), ticket: t.into() })
            .collect(),
    ))
}

/// Remove the link between this ticket and another.
#[utoipa::path(delete, path = "/tickets/{id}/links/{other}", tag = "ticket actions", params(("id" = String, Path), ("other" = String, Path)),
    responses((status = 204)))]
async fn unlink_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, other)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let this = find_ticket(&state, &actor, &id, Action::Link).await?;
    let other = find_ticket(&state, &actor, &other, Action::Link).await?;
    if state.store.unlink_tickets(this.id, other.id, Some(actor.user_id), state.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTimeEntry {
    /// 1 to 1440.
    minutes: i64,
    #[serde(default)]
    note: String,
}

#[derive(Serialize, ToSchema)]
pub struct TimeSheet {
    items: Vec<TimeEntryView>,
    next_cursor: Option<String>,
    total_minutes: i64,
}

/// Log time spent on the ticket (staff).
#[utoipa::path(post, path = "/tickets/{id}/time-entries", tag = "ticket actions", request_body = NewTimeEntry, params(("id" = String, Path)),
    responses((status = 201, body = TimeEntryView)))]
async fn log_time(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTimeEntry>,
) -> Result<(StatusCode, Json<TimeEntryView>), ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::LogTime).await?;
    let entry = crate::usecases::log_time(&state, &actor, &ticket, body.minutes, &body.note).await?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// Time logged on the ticket, with the total (staff).
#[utoipa::path(get, path = "/tickets/{id}/time-entries", tag = "ticket actions", params(("id" = String, Path)), responses((status = 200, body = TimeSheet)))]
async fn list_time(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<TimeSheet>, ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::LogTime).await?;
    let entries = state.store.time_entries(ticket.id).await?;
    let total_minutes = entries.iter().map(|e| e.minutes).sum();
    Ok(Json(TimeSheet { items: entries.into_iter().map(Into::into).collect(), next_cursor: None, total_minutes }))
}
