//! Mail held on a ticket because it did not prove its sender: staff who may write internal
//! notes on the ticket see it, and accept it as its sender's comment or discard it.

use axum::Json;
use axum::extract::{Path, State};
use ferrodesk_core::access::{Action, Actor};
use ferrodesk_core::ids::{CommentId, UserId};
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_core::ticket::Ticket;
use ferrodesk_store::InboundMessage;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::usecases::{announce_change, find_ticket};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_held)).routes(routes!(accept_held)).routes(routes!(discard_held))
}

#[derive(Serialize, ToSchema)]
pub struct HeldMailView {
    /// The inbound message.
    pub id: uuid::Uuid,
    /// Who it claims to be from (not proven).
    pub from: Option<String>,
    pub subject: String,
    pub received_at: String,
    /// `held` (waiting for an agent), `processed` (accepted) or `discarded`.
    pub status: InboundStatus,
    /// The internal note it is held as on the ticket.
    pub held_note_id: Option<CommentId>,
    /// The comment it became when accepted.
    pub comment_id: Option<CommentId>,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<String>,
}

impl From<InboundMessage> for HeldMailView {
    fn from(m: InboundMessage) -> Self {
        let accepted = m.status == InboundStatus::Processed;
        Self {
            id: m.id,
            from: m.from_address,
            subject: m.subject,
            received_at: m.received_at.to_string(),
            status: m.status,
            held_note_id: m.held_note_id,
            comment_id: m.comment_id.filter(|_| accepted),
            decided_by: m.decided_by,
            decided_at: m.decided_at.map(|t| t.to_string()),
        }
    }
}

/// The mail held on a ticket, decided or not, oldest first.
#[utoipa::path(get, path = "/tickets/{id}/held-mail", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, body = [HeldMailView]), (status = 404, body = crate::error::Problem)))]
async fn list_held(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<HeldMailView>>, ApiError> {
    let (_, held) = held_on(&state, &actor, &id).await?;
    Ok(Json(held.into_iter().map(Into::into).collect()))
}

/// Accept a held message as its sender's: it becomes their comment on the ticket, with the
/// mail and status changes such a comment makes. `409` when it is no longer held, or cannot be
/// applied now (e.g. the ticket is closed).
#[utoipa::path(post, path = "/tickets/{id}/held-mail/{mail_id}/accept", tag = "mail",
    params(("id" = String, Path), ("mail_id" = String, Path)),
    responses((status = 200, body = HeldMailView), (status = 409, body = crate::error::Problem)))]
async fn accept_held(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, mail_id)): Path<(String, String)>,
) -> Result<Json<HeldMailView>, ApiError> {
    Ok(Json(decide_held(&state, &actor, &id, &mail_id, Verdict::Accept).await?.into()))
}

/// Discard a held message: it stays stored, and its note on the ticket.
#[utoipa::path(post, path = "/tickets/{id}/held-mail/{mail_id}/discard", tag = "mail",
    params(("id" = String, Path), ("mail_id" = String, Path)),
    responses((status = 200, body = HeldMailView), (status = 409, body = crate::error::Problem)))]
async fn discard_held(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, mail_id)): Path<(String, String)>,
) -> Result<Json<HeldMailView>, ApiError> {
    Ok(Json(decide_held(&state, &actor, &id, &mail_id, Verdict::Discard).await?.into()))
}

/// A ticket the actor may write notes on, with the mail held on it. Only those who see
/// internal notes see held mail: it is held as one.
pub async fn held_on(state: &AppState, actor: &Actor, ticket: &str) -> Result<(Ticket, Vec<InboundMessage>), ApiError> {
    let ticket = find_ticket(state, actor, ticket, Action::InternalNote).await?;
    let held = state.store.held_inbound(ticket.id).await?;
    Ok((ticket, held))
}

/// What an agent decides about a held message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Discard,
}

/// Accepts or discards a message held on a ticket; shared by the API and the desk. Accepting
/// adds a public comment in the sender's name, so it also needs the right to reply.
pub async fn decide_held(
    state: &AppState,
    actor: &Actor,
    ticket: &str,
    mail_id: &str,
    verdict: Verdict,
) -> Result<InboundMessage, ApiError> {
    let (ticket, held) = held_on(state, actor, ticket).await?;
    let mail_id: uuid::Uuid = super::parse_id(mail_id)?;
    let message = held.into_iter().find(|m| m.id == mail_id).ok_or_else(ApiError::not_found)?;
    match verdict {
        Verdict::Accept => {
            crate::usecases::may_comment(actor, &ticket, false)?;
            state.ingest.accept_held(message.id, actor.user_id, state.now()).await?;
        }
        Verdict::Discard => state.ingest.discard_held(message.id, actor.user_id, state.now()).await?,
    }
    announce_change(state, ticket.id).await;
    state.store.inbound(message.id).await?.ok_or_else(ApiError::not_found)
}
