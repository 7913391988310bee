//! Use cases shared by the REST API and the HTML UI: each is the one implementation of what
//! it does (permission, validation, domain change, persistence); the two front ends only parse
//! their input and render the result.

use axum::http::StatusCode;
use base64::Engine;
use ferrodesk_core::access::{Action, Actor, Resource, TicketFacts};
use ferrodesk_core::ids::*;
use ferrodesk_core::priority::Priority;
use ferrodesk_core::priority::PriorityMatrix;
use ferrodesk_core::search::search_terms;
use ferrodesk_core::ticket::*;
use ferrodesk_store::TicketQuery;
use ferrodesk_store::{Comment, TicketChange, TicketCursor, TicketSortKey};
use jiff::Timestamp;
use serde::Deserialize;

use crate::AppState;
use crate::api::CreateTicket;
use crate::api::{authorise, page_limit};
use crate::error::ApiError;

/// Loads a ticket by id or number and checks the actor may do `action` on it. Unknown and
/// invisible tickets are indistinguishable (404).
pub async fn find_ticket(state: &AppState, actor: &Actor, raw: &str, action: Action) -> Result<Ticket, ApiError> {
    let ticket = match TicketRef::parse(raw) {
        Some(TicketRef::Id(id)) => state.store.ticket(id).await?,
        Some(TicketRef::Number(n)) => state.store.ticket_by_number(n).await?,
        None => None,
    }
    .ok_or_else(ApiError::not_found)?;
    authorise(actor, Resource::Ticket(&TicketFacts::from(&ticket)), action)?;
    Ok(ticket)
}

/// Whether the actor may see (and write) internal notes on the ticket.
pub fn sees_internal(actor: &Actor, ticket: &Ticket) -> bool {
    ferrodesk_core::access::decide(actor, Resource::Ticket(&TicketFacts::from(ticket)), Action::InternalNote)
        .is_allowed()
}

/// A ticket the actor may read with its conversation as they may see it (internal notes only
/// for those allowed them), oldest comment first.
pub async fn find_conversation(state: &AppState, actor: &Actor, raw: &str) -> Result<(Ticket, Vec<Comment>), ApiError> {
    let Some(reference) = TicketRef::parse(raw) else {
        return Err(ApiError::not_found());
    };
    let (ticket, mut comments) = state.store.ticket_with_comments(reference).await?.ok_or_else(ApiError::not_found)?;
    authorise(actor, Resource::Ticket(&TicketFacts::from(&ticket)), Action::Read)?;
    if !sees_internal(actor, &ticket) {
        comments.retain(|c| !c.internal);
    }
    Ok((ticket, comments))
}

/// Persists a changed ticket with its history (and comment); a no-op returns it unchanged.
pub async fn commit(
    state: &AppState,
    actor: &Actor,
    ticket: Ticket,
    expected_version: i64,
    changes: Vec<FieldChange>,
    comment: Option<Comment>,
) -> Result<Ticket, ApiError> {
    if changes.is_empty() && comment.is_none() {
        return Ok(ticket);
    }
    let at = ticket.updated_at;
    Ok(save(
        state,
        TicketChange {
            jobs: status_mail(state, actor, &ticket, &changes).await?,
            ticket,
            expected_version,
            actor: Some(actor.user_id),
            changes,
            comment,
            at,
            idempotency: None,
        },
    )
    .await?)
}

/// The mail a change causes (pending on the requester, resolved, assigned to someone), when
/// there is a mailbox to send from; queued with the change.
async fn status_mail(
    state: &AppState,
    actor: &Actor,
    ticket: &Ticket,
    changes: &[FieldChange],
) -> Result<Vec<ferrodesk_store::NewJob>, ApiError> {
    let jobs = ferrodesk_mail::outbound::for_change(ticket, changes, Some(actor.user_id));
    Ok(queueable(state, jobs, ticket.updated_at).await?)
}

/// The mail jobs to queue: none when there is no active mailbox to send from (so a desk
/// without e-mail collects no mail), else all of them, due `now`. The store is asked only
/// when there is something to send.
async fn queueable(
    state: &AppState,
    jobs: Vec<ferrodesk_mail::outbound::MailJob>,
    now: Timestamp,
) -> Result<Vec<ferrodesk_store::NewJob>, ferrodesk_store::StoreError> {
    if jobs.is_empty() || !state.store.mailboxes().await?.iter().any(|m| m.active) {
        return Ok(vec![]);
    }
    Ok(jobs.into_iter().map(|j| j.into_job(None, now)).collect())
}

/// The assignee must be an active member of staff.
pub async fn check_assignee(state: &AppState, assignee: Option<UserId>) -> Result<(), ApiError> {
    if let Some(id) = assignee {
        match state.store.user(id).await? {
            Some(u) if u.active && u.role.is_staff() => {}
            _ => {
                return Err(ApiError::invalid(
                    "assignee_id",
                    "the assignee must be an active agent, supervisor or admin",
                ));
            }
        }
    }
    Ok(())
}

/// Turns a create request into a validated draft, with the priority matrix to open it by:
/// requesters raise only their own tickets and cannot set routing or priority; custom fields
/// are checked against their definitions.
pub async fn ticket_draft(
    state: &AppState,
    actor: &Actor,
    body: CreateTicket,
) -> Result<(TicketDraft, PriorityMatrix), ApiError> {
    let staff = actor.role.is_staff();
    if !staff {
        // Requesters raise their own tickets; routing and priority are the desk's to set.
        let refused = [
            ("requester_id", body.requester_id.is_some_and(|r| r != actor.user_id)),
            ("group_id", body.group_id.is_some()),
            ("assignee_id", body.assignee_id.is_some()),
            ("priority", body.priority.is_some()),
            ("tags", !body.tags.is_empty()),
            ("watchers", !body.watchers.is_empty()),
            ("channel", body.channel.is_some()),
        ];
        if let Some((field, _)) = refused.iter().find(|(_, bad)| *bad) {
            return Err(ApiError {
                field: Some((*field).into()),
                ..ApiError::new(StatusCode::FORBIDDEN, "field_not_allowed", format!("requesters cannot set {field}"))
            });
        }
    }
    let requester_id = body.requester_id.unwrap_or(actor.user_id);
    // Independent reads, at once (each is a hop to a reader, or a round trip on PostgreSQL).
    // A person raising their own ticket is known already: an actor is an active user.
    let requester_organisation = async {
        if requester_id == actor.user_id {
            return Ok(actor.organisation_id);
        }
        let requester = state.store.user(requester_id).await?;
        requester
            .filter(|u| u.active)
            .map(|u| u.organisation_id)
            .ok_or_else(|| ApiError::invalid("requester_id", "no such active user"))
    };
    let (organisation_id, (), (settings, defs)) =
        tokio::try_join!(requester_organisation, check_assignee(state, body.assignee_id), async {
            state.store.ticket_rules().await.map_err(ApiError::from)
        },)?;
    let mut watchers = body.watchers;
    watchers.sort();
    watchers.dedup();
    let draft = TicketDraft {
        ticket_type: body.ticket_type,
        subject: validate_subject(&body.subject)?,
        description: validate_description(&body.description)?,
        requester_id,
        organisation_id,
        category_id: body.category_id,
        impact: body.impact,
        urgency: body.urgency,
        priority_override: body.priority,
        group_id: body.group_id,
        assignee_id: body.assignee_id,
        channel: body.channel.unwrap_or(Channel::Api),
        tags: normalise_tags(&body.tags)?,
        watchers,
        custom_fields: body.custom_fields,
    };
    ferrodesk_core::custom_field::validate_values(&defs, draft.ticket_type, &draft.custom_fields, true)?;
    Ok((draft, settings.priority_matrix))
}

/// Applies one change to a ticket the actor may change: the domain function `change` gets the
/// ticket, the priority matrix and "now", and the result is stored guarded by `version`.
pub async fn change_ticket(
    state: &AppState,
    actor: &Actor,
    mut ticket: Ticket,
    version: i64,
    change: impl FnOnce(&mut Ticket, &PriorityMatrix, Timestamp) -> Result<Vec<FieldChange>, ferrodesk_core::DomainError>,
) -> Result<Ticket, ApiError> {
    let settings = state.store.settings().await?;
    let changes = change(&mut ticket, &settings.priority_matrix, state.now())?;
    commit(state, actor, ticket, version, changes, None).await
}

/// Validates a comment's text.
pub fn comment_text(body: &str) -> Result<String, ApiError> {
    let text = body.trim();
    if text.is_empty() {
        return Err(ApiError::invalid("body", "the comment is empty"));
    }
    validate_description(text).map_err(|_| ApiError::invalid("body", "the comment is too long or contains NUL"))
}

/// A reply or note by `actor` on `ticket`, checked against what the ticket allows now (the
/// store applies its effect to the ticket as it is when saved: `save_comment`).
pub fn new_comment(
    actor: &Actor,
    ticket: &Ticket,
    text: String,
    internal: bool,
    now: Timestamp,
) -> Result<Comment, ApiError> {
    ticket.clone().note_comment(actor.role.is_staff(), internal, now)?;
    Ok(Comment {
        id: CommentId::generate(),
        ticket_id: ticket.id,
        author_id: Some(actor.user_id),
        body: text,
        internal,
        created_at: now,
    })
}

/// Checks that the actor may comment this way on this ticket.
pub fn may_comment(actor: &Actor, ticket: &Ticket, internal: bool) -> Result<(), ApiError> {
    let action = if internal { Action::InternalNote } else { Action::Reply };
    authorise(actor, Resource::Ticket(&TicketFacts::from(ticket)), action)
}

/// Stores an uploaded file on a ticket (already checked: the actor may attach, the comment is
/// the ticket's and `internal` follows it), within the uploader's rolling 24-hour quota.
#[allow(clippy::too_many_arguments)]
pub async fn attach_file(
    state: &AppState,
    actor: &Actor,
    ticket: &Ticket,
    filename: &str,
    content_type: &str,
    data: Vec<u8>,
    comment_id: Option<CommentId>,
    internal: bool,
) -> Result<ferrodesk_store::Attachment, ApiError> {
    use sha2::Digest;
    if data.len() > state.limits.attachment_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_too_large",
            format!("a file may have at most {} MB", state.limits.attachment_bytes / (1024 * 1024)),
        ));
    }
    let now = state.now();
    let attachment = ferrodesk_store::Attachment {
        id: AttachmentId::generate(),
        ticket_id: ticket.id,
        comment_id,
        internal,
        filename: ferrodesk_core::attachment::sanitize_filename(filename),
        content_type: content_type.chars().take(200).collect(),
        size: data.len() as i64,
        sha256: hex::encode(sha2::Sha256::digest(&data)),
        uploaded_by: Some(actor.user_id),
        created_at: now,
    };
    let quota = ferrodesk_store::UploadQuota {
        since: now - jiff::SignedDuration::from_hours(24),
        max_bytes: state.limits.upload_quota_bytes,
    };
    match state.store.add_attachment(&attachment, data, quota).await {
        Ok(()) => Ok(attachment),
        Err(ferrodesk_store::StoreError::QuotaExceeded) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_quota_exceeded",
            format!(
                "you have uploaded the most allowed in 24 hours ({} MB); try again later",
                state.limits.upload_quota_bytes / (1024 * 1024)
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A list cursor: the sort key's name and value and the ticket number where a page ended.
pub fn encode_cursor(sort: TicketSortKey, t: &Ticket) -> String {
    let raw = format!("{}:{}:{}", sort.column(), sort.value_of(t), t.number.0);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(sort: TicketSortKey, raw: &str) -> Result<TicketCursor, ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the cursor is not one this list produced");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.split(':');
    let (Some(col), Some(value), Some(number), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if col != sort.column() {
        return Err(ApiError::bad_request("invalid_cursor", "the cursor belongs to another sort order"));
    }
    Ok(TicketCursor { value: value.parse().map_err(|_| bad())?, number: number.parse().map_err(|_| bad())? })
}

/// Stores a ticket change and tells live viewers. Every ticket write of the API and the UI
/// goes through here (merges through `merge`).
pub async fn save(state: &AppState, change: TicketChange) -> Result<Ticket, ferrodesk_store::StoreError> {
    let saved = state.store.save_ticket(change).await?;
    changed(state, &saved);
    Ok(saved)
}

/// Saves a reply or note on the ticket as it is now: the store applies the comment's effect
/// (status, activity times) inside its transaction, so two people answering at once both get
/// their answer in rather than one of them a conflict.
///
/// A public answer by staff is mailed to the requester (queued in the same transaction), when
/// there is a mailbox to send from.
pub async fn save_comment(
    state: &AppState,
    actor: &Actor,
    ticket: &Ticket,
    comment: Comment,
    idempotency: Option<ferrodesk_store::Idempotency>,
) -> Result<Ticket, ferrodesk_store::StoreError> {
    let mail = ferrodesk_mail::outbound::for_comment(&comment, actor.role.is_staff(), ticket);
    let jobs = queueable(state, mail, comment.created_at).await?;
    let saved = state.store.add_comment(comment, actor.role.is_staff(), idempotency, jobs).await?;
    changed(state, &saved);
    Ok(saved)
}

/// Tells a ticket's viewers it changed, when the change was made elsewhere (e.g. by mail).
pub async fn announce_change(state: &AppState, id: ferrodesk_core::ids::TicketId) {
    if let Ok(Some(t)) = state.store.ticket(id).await {
        changed(state, &t);
    }
}

/// Tells the ticket's viewers (on every node) that it reached a new version.
fn changed(state: &AppState, t: &Ticket) {
    state.events.publish(crate::events::TicketChanged { id: t.id, number: t.number, version: t.version });
}

/// Stores a merge and tells the viewers of both tickets.
pub async fn merge(state: &AppState, source: TicketChange, target: TicketChange) -> Result<(Ticket, Ticket), ApiError> {
    let (source, target) = state.store.merge_tickets(source, target).await?;
    for t in [&source, &target] {
        changed(state, t);
    }
    Ok((source, target))
}

/// The ticket filters of the API, also used by the desk's filters and saved filters.
#[derive(Deserialize, utoipa::IntoParams, Default, Clone)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Comma-separated priorities.
    pub priority: Option<String>,
    /// Comma-separated types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub ticket_type: Option<String>,
    /// Group id, or `none` for tickets without a group.
    pub group_id: Option<String>,
    /// User id, `me`, or `none` for unassigned.
    pub assignee_id: Option<String>,
    pub requester_id: Option<String>,
    pub organisation_id: Option<String>,
    pub category_id: Option<String>,
    pub tag: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub updated_after: Option<String>,
    pub updated_before: Option<String>,
    /// Full-text words over subject, description and comments (all must match).
    pub q: Option<String>,
    /// `created_at`, `updated_at`, `priority` or `number`; prefix `-` for descending.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

fn parse_list<T>(
    raw: &Option<String>,
    field: &str,
    parse: fn(&str, &str) -> Result<T, ferrodesk_core::DomainError>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(vec![]) };
    raw.split(',')
        .map(|v| parse(v.trim(), field).map_err(|e| ApiError::bad_request("invalid_query", e.to_string())))
        .collect()
}

fn parse_query_id<T: std::str::FromStr>(raw: &Option<String>, field: &str) -> Result<Option<T>, ApiError> {
    raw.as_deref()
        .map(|v| v.parse().map_err(|_| ApiError::bad_request("invalid_query", format!("{field} must be an id"))))
        .transpose()
}

fn parse_instant(raw: &Option<String>, field: &str) -> Result<Option<Timestamp>, ApiError> {
    raw.as_deref()
        .map(|v| {
            v.parse::<Timestamp>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{field} must be an RFC 3339 instant like 2026-01-31T09:00:00Z"),
                )
            })
        })
        .transpose()
}

pub fn to_query(p: &ListParams, actor: &Actor) -> Result<TicketQuery, ApiError> {
    let searching = p.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let (descending, sort_name) = match p.sort.as_deref() {
        // Search results: newest ticket first, which the store reads straight from the search
        // index in that order and stops after a page (a common word matches 1% of a million).
        None if searching => (true, "number"),
        None => (true, "created_at"),
        Some(s) => match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        },
    };
    let sort = match sort_name {
        "created_at" => TicketSortKey::CreatedAt,
        "updated_at" => TicketSortKey::UpdatedAt,
        "priority" => TicketSortKey::Priority,
        "number" => TicketSortKey::Number,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_sort",
                "sort must be created_at, updated_at, priority or number, optionally prefixed with -",
            ));
        }
    };
    let optional_id = |raw: &Option<String>, field: &str, me: bool| -> Result<Option<Option<uuid::Uuid>>, ApiError> {
        match raw.as_deref() {
            None => Ok(None),
            Some("none") => Ok(Some(None)),
            Some("me") if me => Ok(Some(Some(actor.user_id.0))),
            Some(v) => v
                .parse()
                .map(|u| Some(Some(u)))
                .map_err(|_| ApiError::bad_request("invalid_query", format!("{field} must be an id or none"))),
        }
    };
    let terms = match p.q.as_deref().map(str::trim) {
        None | Some("") => vec![],
        Some(q) => search_terms(q).map_err(|e| ApiError::bad_request("invalid_search", e.to_string()))?,
    };
    let tag = p.tag.as_deref().map(|t| t.trim().to_lowercase());
    Ok(TicketQuery {
        statuses: parse_list(&p.status, "status", Status::parse)?,
        priorities: parse_list(&p.priority, "priority", Priority::parse)?,
        types: parse_list(&p.ticket_type, "type", TicketType::parse)?,
        group_id: optional_id(&p.group_id, "group_id", false)?.map(|g| g.map(GroupId)),
        assignee_id: optional_id(&p.assignee_id, "assignee_id", true)?.map(|g| g.map(UserId)),
        requester_id: parse_query_id(&p.requester_id, "requester_id")?,
        organisation_id: parse_query_id(&p.organisation_id, "organisation_id")?,
        category_id: parse_query_id(&p.category_id, "category_id")?,
        tag,
        created_after: parse_instant(&p.created_after, "created_after")?,
        created_before: parse_instant(&p.created_before, "created_before")?,
        updated_after: parse_instant(&p.updated_after, "updated_after")?,
        updated_before: parse_instant(&p.updated_before, "updated_before")?,
        terms,
        sort,
        descending,
        after: p.cursor.as_deref().map(|c| decode_cursor(sort, c)).transpose()?,
        limit: page_limit(p.limit)?,
    })
}

/// Merges `source` (already checked: the actor may merge it; `version` is what they saw) into
/// the ticket `into` names, which the actor must also be allowed to merge into.
pub async fn merge_into(
    state: &AppState,
    actor: &Actor,
    mut source: Ticket,
    version: i64,
    into: &str,
) -> Result<Ticket, ApiError> {
    let mut target = find_ticket(state, actor, into, Action::Merge)
        .await
        .map_err(|_| ApiError::invalid("into", "no such ticket that you may merge into"))?;
    let target_version = target.version;
    let now = state.now();
    let (own, theirs) = source.merge_into(&mut target, now)?;
    let change = |ticket, expected_version, changes| TicketChange {
        ticket,
        expected_version,
        actor: Some(actor.user_id),
        changes,
        comment: None,
        at: now,
        idempotency: None,
        jobs: vec![],
    };
    let (_, target) = merge(state, change(source, version, own), change(target, target_version, theirs)).await?;
    Ok(target)
}

/// Logs time on a ticket the actor may log time on: 1 to 1440 minutes, an optional note.
pub async fn log_time(
    state: &AppState,
    actor: &Actor,
    ticket: &Ticket,
    minutes: i64,
    note: &str,
) -> Result<ferrodesk_store::TimeEntry, ApiError> {
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::invalid("minutes", "between 1 and 1440 minutes"));
    }
    let note = note.trim().to_owned();
    if note.chars().count() > 2000 || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid("note", "at most 2000 characters, no control characters"));
    }
    let entry = ferrodesk_store::TimeEntry {
        id: TimeEntryId::generate(),
        ticket_id: ticket.id,
        user_id: actor.user_id,
        minutes,
        note,
        created_at: state.now(),
    };
    state.store.add_time_entry(&entry).await?;
    Ok(entry)
}
