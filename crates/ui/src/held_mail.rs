//! Mail held on a ticket in the desk: the note shows what is waiting (or what was decided), and
//! two buttons accept it as its sender's reply or discard it. The decision is the API's
//! (`ferrodesk_web::api::held_mail::decide_held`), with the same checks.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_core::ids::UserId;
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_store::InboundMessage;
use ferrodesk_web::AppState;
use ferrodesk_web::api::held_mail::{Verdict, decide_held};
use serde::Deserialize;

use crate::error::UiError;
use crate::forms::when;
use crate::viewer::Viewer;

/// What the ticket page shows on a note that holds a message.
pub struct HeldEntry {
    pub id: String,
    /// Still waiting for an agent.
    pub waiting: bool,
    /// What became of it, in words ("Accepted by Dana … as the sender's reply").
    pub outcome: String,
}

impl HeldEntry {
    pub fn of(m: &InboundMessage, name: &impl Fn(Option<UserId>) -> String) -> Self {
        let by = name(m.decided_by);
        let at = m.decided_at.map(when).unwrap_or_default();
        let outcome = match m.status {
            InboundStatus::Held => String::new(),
            InboundStatus::Processed => format!("Accepted as the sender's reply by {by}, {at}."),
            InboundStatus::Discarded => format!("Discarded by {by}, {at}."),
            other => format!("The message is {other}."),
        };
        Self { id: m.id.to_string(), waiting: m.status == InboundStatus::Held, outcome }
    }
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
}

/// `POST /desk/tickets/{number}/held/{id}/{accept|discard}`.
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, id, verdict)): Path<(String, String, String)>,
    Form(f): Form<DecisionForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    let verdict = match verdict.as_str() {
        "accept" => Verdict::Accept,
        "discard" => Verdict::Discard,
        _ => return Err(UiError::new(axum::http::StatusCode::NOT_FOUND, "There is no such action.")),
    };
    let message = decide_held(&state, &viewer.actor, &number, &id, verdict).await?;
    let anchor = message.comment_id.filter(|_| verdict == Verdict::Accept).or(message.held_note_id);
    let anchor = anchor.map(|c| format!("#c-{c}")).unwrap_or_default();
    Ok(Redirect::to(&format!("/desk/tickets/{number}{anchor}")).into_response())
}
