//! Tickets: create, read, list and search, update with optimistic concurrency, comments,
//! history and the lifecycle actions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::access::{Action, Actor, Resource, TicketScope};
use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, Priority, Urgency};
use ferrodesk_core::ticket::*;
use ferrodesk_core::user::Role;
use ferrodesk_store::{Idempotency, IdempotentHit, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, idempotency, idempotency_reused};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiQuery, double_option};
pub(super) use crate::usecases::find_ticket;
use crate::usecases::{self, ListParams, check_assignee, commit, encode_cursor, to_query};
use crate::views::{CommentView, HistoryView, Page, TicketView, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ticket, list_tickets))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(add_comment, list_comments))
        .routes(routes!(ticket_history))
        .routes(routes!(assign_ticket))
        .routes(routes!(escalate_ticket))
        .routes(routes!(resolve_ticket))
        .routes(routes!(close_ticket))
        .routes(routes!(reopen_ticket))
}

/// A ticket reply with its ETag (the version) so clients can send `If-Match`.
pub(super) fn with_etag(status: StatusCode, t: ferrodesk_core::ticket::Ticket) -> Response {
    let (id, version) = (t.id, t.version);
    ticket_response(status, id, version, TicketView::from(t))
}

/// `body` (a view of ticket `id` at `version`) with the ticket's ETag, and its Location when
/// it was created.
fn ticket_response(status: StatusCode, id: TicketId, version: i64, body: impl Serialize) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/tickets/{id}"))
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The version the client says it has seen (`If-Match`); a stale one fails before any work.
pub(super) fn expected_version(headers: &HeaderMap, current: &Ticket) -> Result<i64, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(current.version);
    };
    let text =
        raw.to_str().map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match must be a version like \"3\""))?;
    let v: i64 = text
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match must be a version like \"3\""))?;
    if v != current.version {
        return Err(ferrodesk_store::StoreError::Conflict { current: current.version }.into());
    }
    Ok(v)
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub subject: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type", default = "default_type")]
    pub ticket_type: TicketType,
    #[serde(default = "default_impact")]
    pub impact: Impact,
    #[serde(default = "default_urgency")]
    pub urgency: Urgency,
    /// Overrides the matrix (staff only).
    pub priority: Option<Priority>,
    pub category_id: Option<CategoryId>,
    /// Whom the ticket is for (staff only; requesters always raise their own).
    pub requester_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    pub assignee_id: Option<UserId>,
    pub channel: Option<Channel>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub watchers: Vec<UserId>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

fn default_type() -> TicketType {
    TicketType::Incident
}
fn default_impact() -> Impact {
    Impact::Medium
}
fn default_urgency() -> Urgency {
    Urgency::Medium
}

/// Open a ticket.
#[utoipa::path(post, path = "/tickets", tag = "tickets", request_body = CreateTicket,
    responses((status = 201, body = TicketView), (status = "4XX", body = crate::error::Problem)))]
async fn create_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTicket>,
) -> Result<Response, ApiError> {
    authorise(&actor, Resource::Tickets, Action::Create)?;
    let key = idempotency(&headers, &actor, "POST /tickets", &body)?;
    if let Some(k) = &key
        && let Some(hit) = state.store.idempotent_target(actor.user_id, &k.key, state.now()).await?
    {
        return replay_ticket(&state, k, &hit).await;
    }
    let (draft, matrix) = usecases::ticket_draft(&state, &actor, body).await?;
    match state.store.create_ticket(draft, &matrix, Some(actor.user_id), state.now(), key.clone()).await {
        Ok(ticket) => Ok(with_etag(StatusCode::CREATED, ticket)),
        // A concurrent request with the same key won the race: answer as it was answered.
        Err(StoreError::Duplicate { what }) if what == "idempotency key" => {
            let k = key.ok_or_else(|| ApiError::internal("idempotency race without a key"))?;
            let hit = state
                .store
                .idempotent_target(actor.user_id, &k.key, state.now())
                .await?
                .ok_or_else(ApiError::not_found)?;
            replay_ticket(&state, &k, &hit).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Answers a retried create with the ticket the first attempt made (as it is now).
async fn replay_ticket(state: &AppState, key: &Idempotency, hit: &IdempotentHit) -> Result<Response, ApiError> {
    if hit.request_hash != key.request_hash {
        return Err(idempotency_reused());
    }
    let ticket = state.store.ticket(TicketId(hit.target_id)).await?.ok_or_else(ApiError::not_found)?;
    let mut resp = with_etag(StatusCode::CREATED, ticket);
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetTicketParams {
    /// `comments`: the ticket's conversation comes along as `comments` (as the caller may see
    /// it, oldest first), so a client reads a ticket with its conversation in one request.
    include: Option<String>,
}

/// A ticket with its conversation (`GET /tickets/{id}?include=comments`).
#[derive(Serialize, ToSchema)]
pub struct TicketWithComments {
    #[serde(flatten)]
    pub ticket: TicketView,
    pub comments: Vec<CommentView>,
}

/// Get a ticket by id or by number (`1042` or `%231042`); with `include=comments`, its
/// conversation too (see `TicketWithComments`).
#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "UUID or number"), GetTicketParams),
    responses((status = 200, body = TicketView), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
async fn get_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<GetTicketParams>,
) -> Result<Response, ApiError> {
    match params.include.as_deref() {
        None => Ok(with_etag(StatusCode::OK, find_ticket(&state, &actor, &id, Action::Read).await?)),
        Some("comments") => {
            let (ticket, comments) = usecases::find_conversation(&state, &actor, &id).await?;
            let (id, version) = (ticket.id, ticket.version);
            let body = TicketWithComments {
                ticket: TicketView::from(ticket),
                comments: comments.into_iter().map(CommentView::from).collect(),
            };
            Ok(ticket_response(StatusCode::OK, id, version, body))
        }
        Some(_) => Err(ApiError::invalid("include", "include may only be \"comments\"")),
    }
}

/// List and search tickets the caller may see.
#[utoipa::path(get, path = "/tickets", tag = "tickets", params(ListParams),
    responses((status = 200, body = Page<TicketView>), (status = 400, body = crate::error::Problem)))]
async fn list_tickets(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<TicketView>>, ApiError> {
    let mut query = to_query(&params, &actor)?;
    let limit = query.limit;
    query.limit = limit + 1;
    let mut tickets = state.store.list_tickets(&query, &TicketScope::of(&actor)).await?;
    let more = tickets.len() > limit as usize;
    tickets.truncate(limit as usize);
    let next_cursor = if more { tickets.last().map(|t| encode_cursor(query.sort, t)) } else { None };
    Ok(Json(Page { items: tickets.into_iter().map(TicketView::from).collect(), next_cursor }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicket {
    subject: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    ticket_type: Option<TicketType>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<CategoryId>)]
    category_id: Option<Option<CategoryId>>,
    impact: Option<Impact>,
    urgency: Option<Urgency>,
    /// A priority overrides the matrix; `null` goes back to the derived one.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Priority>)]
    priority: Option<Option<Priority>>,
    status: Option<Status>,
    pending_reason: Option<PendingReason>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<GroupId>)]
    group_id: Option<Option<GroupId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<UserId>)]
    assignee_id: Option<Option<UserId>>,
    support_level: Option<SupportLevel>,
    tags: Option<Vec<String>>,
    watchers: Option<Vec<UserId>>,
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Change a ticket. Send `If-Match: "<version>"`; a stale version gets 412 and changes nothing.
#[utoipa::path(patch, path = "/tickets/{id}", tag = "tickets", request_body = UpdateTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView), (status = 409, body = crate::error::Problem), (status = 412, body = crate::error::Problem)))]
async fn update_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateTicket>,
) -> Result<Response, ApiError> {
    let mut ticket = find_ticket(&state, &actor, &id, Action::Update).await?;
    let version = expected_version(&headers, &ticket)?;
    if let Some(a) = body.assignee_id {
        check_assignee(&state, a).await?;
    }
    let patch = TicketPatch {
        subject: body.subject,
        description: body.description,
        ticket_type: body.ticket_type,
        category_id: body.category_id,
        impact: body.impact,
        urgency: body.urgency,
        priority: body.priority,
        status: body.status,
        pending_reason: body.pending_reason.map(Some),
        group_id: body.group_id,
        assignee_id: body.assignee_id,
        support_level: body.support_level,
        tags: body.tags,
        watchers: body.watchers,
        custom_fields: body.custom_fields,
        resolution_note: None,
        resolution_code: None,
    };
    let cleared: Vec<String> =
        patch.custom_fields.iter().flatten().filter(|(_, v)| v.is_null()).map(|(k, _)| k.clone()).collect();
    let settings = state.store.settings().await?;
    let changes = ticket.apply(patch, &settings.priority_matrix, state.now())?;
    let defs = state.store.custom_fields().await?;
    ferrodesk_core::custom_field::validate_values(&defs, ticket.ticket_type, &ticket.custom_fields, false)?;
    if let Some(def) = defs.iter().find(|d| d.required && d.applies_to(ticket.ticket_type) && cleared.contains(&d.key))
    {
        return Err(ApiError::invalid(&format!("custom_fields.{}", def.key), format!("{} is required", def.label)));
    }
    let saved = commit(&state, &actor, ticket, version, changes, None).await?;
    Ok(with_etag(StatusCode::OK, saved))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    body: String,
    /// An internal note (staff only), never shown to requesters.
    #[serde(default)]
    internal: bool,
}

/// Add a public reply or an internal note.
#[utoipa::path(post, path = "/tickets/{id}/comments", tag = "tickets", request_body = NewComment, params(("id" = String, Path)),
    responses((status = 201, body = CommentView), (status = 403, body = crate::error::Problem)))]
/// Send `Idempotency-Key` to make retries safe.
async fn add_comment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<Response, ApiError> {
    let action = if body.internal { Action::InternalNote } else { Action::Reply };
    let ticket = find_ticket(&state, &actor, &id, action).await?;
    let key = idempotency(&headers, &actor, &format!("POST /tickets/{}/comments", ticket.id), &body)?;
    if let Some(k) = &key
        && let Some(hit) = state.store.idempotent_target(actor.user_id, &k.key, state.now()).await?
    {
        return replay_comment(&state, &ticket, k, &hit).await;
    }
    let text = usecases::comment_text(&body.body)?;
    let comment = usecases::new_comment(&actor, &ticket, text, body.internal, state.now())?;
    match usecases::save_comment(&state, &actor, &ticket, comment.clone(), key.clone()).await {
        Ok(_) => Ok((StatusCode::CREATED, Json(CommentView::from(comment))).into_response()),
        Err(StoreError::Duplicate { what }) if what == "idempotency key" => {
            let k = key.ok_or_else(|| ApiError::internal("idempotency race without a key"))?;
            let hit = state
                .store
                .idempotent_target(actor.user_id, &k.key, state.now())
                .await?
                .ok_or_else(ApiError::not_found)?;
            replay_comment(&state, &ticket, &k, &hit).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Answers a retried comment with the comment the first attempt made.
async fn replay_comment(
    state: &AppState,
    ticket: &Ticket,
    key: &Idempotency,
    hit: &IdempotentHit,
) -> Result<Response, ApiError> {
    if hit.request_hash != key.request_hash {
        return Err(idempotency_reused());
    }
    let comment = state
        .store
        .comments(ticket.id, true)
        .await?
        .into_iter()
        .find(|c| c.id.0 == hit.target_id)
        .ok_or_else(ApiError::not_found)?;
    let mut resp = (StatusCode::CREATED, Json(CommentView::from(comment))).into_response();
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}

/// The conversation; internal notes only for staff.
#[utoipa::path(get, path = "/tickets/{id}/comments", tag = "tickets", params(("id" = String, Path)),
    responses((status = 200, body = Page<CommentView>)))]
async fn list_comments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Page<CommentView>>, ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::Read).await?;
    let comments = state.store.comments(ticket.id, usecases::sees_internal(&actor, &ticket)).await?;
    Ok(page(comments.into_iter().map(CommentView::from).collect()))
}

/// Every change to the ticket, oldest first. Immutable.
#[utoipa::path(get, path = "/tickets/{id}/history", tag = "tickets", params(("id" = String, Path)),
    responses((status = 200, body = Page<HistoryView>)))]
async fn ticket_history(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Page<HistoryView>>, ApiError> {
    let ticket = find_ticket(&state, &actor, &id, Action::Read).await?;
    if !actor.role.is_staff() {
        // Requesters see the conversation, not the desk's internal routing.
        return Err(ApiError::forbidden());
    }
    let entries = state.store.history(ticket.id).await?;
    Ok(page(entries.into_iter().map(HistoryView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTicket {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<GroupId>)]
    group_id: Option<Option<GroupId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<UserId>)]
    assignee_id: Option<Option<UserId>>,
}

/// Assign to a group and/or an agent (`null` unassigns).
#[utoipa::path(post, path = "/tickets/{id}/assign", tag = "ticket actions", request_body = AssignTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn assign_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignTicket>,
) -> Result<Response, ApiError> {
    if body.group_id.is_none() && body.assignee_id.is_none() {
        return Err(ApiError::invalid("assignee_id", "give a group_id, an assignee_id, or both"));
    }
    let patch = TicketPatch { group_id: body.group_id, assignee_id: body.assignee_id, ..TicketPatch::default() };
    if let Some(a) = body.assignee_id {
        check_assignee(&state, a).await?;
    }
    act(&state, &actor, &id, &headers, Action::Assign, |t, m, now| t.apply(patch, m, now)).await
}

/// Runs one lifecycle action: load with permission, check version, apply, save.
async fn act(
    state: &AppState,
    actor: &Actor,
    id: &str,
    headers: &HeaderMap,
    action: Action,
    change: impl FnOnce(
        &mut Ticket,
        &ferrodesk_core::priority::PriorityMatrix,
        Timestamp,
    ) -> Result<Vec<FieldChange>, ferrodesk_core::DomainError>,
) -> Result<Response, ApiError> {
    let ticket = find_ticket(state, actor, id, action).await?;
    let version = expected_version(headers, &ticket)?;
    let saved = usecases::change_ticket(state, actor, ticket, version, change).await?;
    Ok(with_etag(StatusCode::OK, saved))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateTicket {
    reason: String,
    /// The group of the next level, if it changes.
    group_id: Option<GroupId>,
}

/// Raise the support level (L1 → L2 → L3) with a reason.
#[utoipa::path(post, path = "/tickets/{id}/escalate", tag = "ticket actions", request_body = EscalateTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn escalate_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EscalateTicket>,
) -> Result<Response, ApiError> {
    act(&state, &actor, &id, &headers, Action::Escalate, |t, m, now| t.escalate(&body.reason, body.group_id, m, now))
        .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveTicket {
    resolution_note: String,
    resolution_code: Option<String>,
}

/// Resolve with a note saying what fixed it.
#[utoipa::path(post, path = "/tickets/{id}/resolve", tag = "ticket actions", request_body = ResolveTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn resolve_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResolveTicket>,
) -> Result<Response, ApiError> {
    act(&state, &actor, &id, &headers, Action::Resolve, |t, m, now| {
        t.resolve(&body.resolution_note, body.resolution_code.as_deref(), m, now)
    })
    .await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CloseTicket {
    /// Defaults to `cancelled` when an unresolved ticket is closed.
    resolution_code: Option<String>,
}

/// Close: staff close; a requester confirms a resolution or cancels their own request.
#[utoipa::path(post, path = "/tickets/{id}/close", tag = "ticket actions", request_body = CloseTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn close_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CloseTicket>,
) -> Result<Response, ApiError> {
    act(&state, &actor, &id, &headers, Action::Close, |t, m, now| t.close(body.resolution_code.as_deref(), m, now))
        .await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReopenTicket {
    reason: Option<String>,
}

/// Reopen a resolved ticket.
#[utoipa::path(post, path = "/tickets/{id}/reopen", tag = "ticket actions", request_body = ReopenTicket, params(("id" = String, Path)),
    responses((status = 200, body = TicketView)))]
async fn reopen_ticket(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReopenTicket>,
) -> Result<Response, ApiError> {
    let by_requester = actor.role == Role::Requester;
    act(&state, &actor, &id, &headers, Action::Reopen, |t, m, now| {
        t.reopen(body.reason.as_deref(), by_requester, m, now)
    })
    .await
}
