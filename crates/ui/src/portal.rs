//! The self-service portal: requesters raise requests, follow them, reply, confirm or reopen.
//! Only the public conversation is ever read here — internal notes are not even loaded.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_core::access::{Action, Resource, TicketFacts, TicketScope, decide};
use ferrodesk_core::custom_field::{CustomFieldDef, FieldKind};
use ferrodesk_core::priority::{Impact, Urgency};
use ferrodesk_core::search::search_terms;
use ferrodesk_core::ticket::{Channel, Status, TicketType};
use ferrodesk_store::{TicketQuery, TicketSortKey};
use ferrodesk_web::AppState;
use ferrodesk_web::api::CreateTicket;
use ferrodesk_web::error::ApiError;
use ferrodesk_web::usecases;
use serde::Deserialize;

use crate::error::{UiError, render};
use crate::forms::{FormData, URGENCY_WORDS, status_class, status_for_requester, when};
use crate::viewer::Viewer;

fn api(e: impl Into<ApiError>) -> UiError {
    UiError::from(e.into())
}

pub struct Row {
    pub number: i64,
    pub subject: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct RequestsPage {
    css: String,
    viewer_name: String,
    csrf: String,
    q: String,
    rows: Vec<Row>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

pub async fn requests(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(p): Query<SearchParams>,
) -> Result<Response, UiError> {
    let q = p.q.unwrap_or_default();
    let mut query =
        TicketQuery { sort: TicketSortKey::UpdatedAt, descending: true, limit: 100, ..TicketQuery::default() };
    let mut error = None;
    if !q.trim().is_empty() {
        match search_terms(&q) {
            Ok(terms) => query.terms = terms,
            Err(e) => error = Some(e.to_string()),
        }
    }
    // Requesters' scope: their own (and shared organisation) tickets; staff see their own here.
    let scope = if viewer.is_staff() {
        TicketScope::Requester { user_id: viewer.user.id, organisation_id: None }
    } else {
        TicketScope::of(&viewer.actor)
    };
    let tickets = if error.is_none() { state.store.list_tickets(&query, &scope).await.map_err(api)? } else { vec![] };
    let rows = tickets
        .into_iter()
        .map(|t| Row {
            number: t.number.0,
            subject: t.subject,
            status: status_for_requester(t.status),
            status_class: status_class(t.status),
            updated: when(t.updated_at),
        })
        .collect();
    Ok(render(&RequestsPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name,
        csrf: viewer.session.csrf_token,
        q,
        rows,
        error,
    }))
}

pub struct CategoryOption {
    pub id: String,
    pub label: String,
}

pub struct FieldInput {
    pub key: String,
    pub label: String,
    pub kind: &'static str,
    pub options: Vec<String>,
    pub required: bool,
    pub applies: String,
    /// Space-separated ticket types (empty: all), for the script that hides other types' fields.
    pub types: String,
}

#[derive(Template)]
#[template(path = "portal/new.html")]
struct NewPage {
    css: String,
    viewer_name: String,
    csrf: String,
    categories: Vec<CategoryOption>,
    fields: Vec<FieldInput>,
    urgencies: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

/// Categories in tree order, children indented under their parents.
pub(crate) async fn category_options(state: &AppState) -> Result<Vec<CategoryOption>, UiError> {
    let all = state.store.list_categories().await.map_err(api)?;
    let mut out = Vec::new();
    fn walk(
        all: &[ferrodesk_store::Category],
        parent: Option<ferrodesk_core::ids::CategoryId>,
        depth: usize,
        out: &mut Vec<CategoryOption>,
    ) {
        for c in all.iter().filter(|c| c.parent_id == parent) {
            out.push(CategoryOption { id: c.id.to_string(), label: format!("{}{}", "— ".repeat(depth), c.name) });
            if depth < 8 {
                walk(all, Some(c.id), depth + 1, out);
            }
        }
    }
    walk(&all, None, 0, &mut out);
    Ok(out)
}

fn field_inputs(defs: &[CustomFieldDef]) -> Vec<FieldInput> {
    defs.iter()
        .map(|d| FieldInput {
            key: d.key.clone(),
            label: d.label.clone(),
            kind: d.kind.as_str(),
            options: d.options.clone(),
            required: d.required,
            types: d.ticket_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" "),
            applies: if d.ticket_types.is_empty() {
                String::new()
            } else {
                d.ticket_types.iter().map(|t| t.as_str().replace('_', " ")).collect::<Vec<_>>().join(", ")
            },
        })
        .collect()
}

async fn new_page(state: &AppState, viewer: &Viewer, error: Option<String>) -> Result<Response, UiError> {
    let defs = state.store.custom_fields().await.map_err(api)?;
    let page = NewPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        categories: category_options(state).await?,
        fields: field_inputs(&defs),
        urgencies: URGENCY_WORDS.iter().map(|(u, w)| (u.as_str(), *w)).collect(),
        error,
    };
    Ok(render(&page))
}

pub async fn new_form(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    new_page(&state, &viewer, None).await
}

/// Custom field values from a form, typed by their definitions; empty inputs are left out.
pub(crate) fn custom_values(
    defs: &[CustomFieldDef],
    form: &FormData,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut values = serde_json::Map::new();
    for d in defs {
        let name = format!("cf_{}", d.key);
        let raw = form.get(&name).trim().to_owned();
        let value = match d.kind {
            FieldKind::Checkbox => serde_json::Value::Bool(!raw.is_empty()),
            FieldKind::MultiSelect => {
                let picked = form.all(&name);
                if picked.is_empty() {
                    continue;
                }
                serde_json::Value::Array(picked.into_iter().map(serde_json::Value::String).collect())
            }
            _ if raw.is_empty() => continue,
            FieldKind::Number => match raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => serde_json::Value::Number(n),
                None => return Err(format!("{} must be a number", d.label)),
            },
            _ => serde_json::Value::String(raw),
        };
        if d.kind == FieldKind::Checkbox && value == serde_json::Value::Bool(false) {
            continue;
        }
        values.insert(d.key.clone(), value);
    }
    Ok(values)
}

pub async fn create(State(state): State<AppState>, viewer: Viewer, form: Multipart) -> Result<Response, UiError> {
    let form = FormData::read(form, state.limits.attachment_bytes).await?;
    viewer.check_csrf(form.get("csrf"))?;
    let defs = state.store.custom_fields().await.map_err(api)?;
    let ticket_type =
        if form.get("type") == "service_request" { TicketType::ServiceRequest } else { TicketType::Incident };
    let urgency = Urgency::parse(form.get("urgency"), "urgency").unwrap_or(Urgency::Medium);
    let custom_fields = match custom_values(&defs, &form) {
        Ok(v) => v,
        Err(e) => {
            return new_page(&state, &viewer, Some(e)).await.map(|r| with_status(r, StatusCode::UNPROCESSABLE_ENTITY));
        }
    };
    let body = CreateTicket {
        subject: form.get("subject").to_owned(),
        description: form.get("description").to_owned(),
        ticket_type,
        impact: Impact::Medium,
        urgency,
        priority: None,
        category_id: form.get("category_id").parse().ok(),
        requester_id: None,
        group_id: None,
        assignee_id: None,
        channel: None,
        tags: vec![],
        watchers: vec![],
        custom_fields,
    };
    let (mut draft, matrix) = match usecases::ticket_draft(&state, &viewer.actor, body).await {
        Ok(d) => d,
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            return new_page(&state, &viewer, Some(e.detail))
                .await
                .map(|r| with_status(r, StatusCode::UNPROCESSABLE_ENTITY));
        }
        Err(e) => return Err(e.into()),
    };
    draft.channel = Channel::Web;
    let ticket =
        state.store.create_ticket(draft, &matrix, Some(viewer.user.id), state.now(), None).await.map_err(api)?;
    let mut failed = 0;
    for (name, content_type, data) in form.files {
        if usecases::attach_file(&state, &viewer.actor, &ticket, &name, &content_type, data, None, false).await.is_err()
        {
            failed += 1;
        }
    }
    let flag = if failed > 0 { "&attach_failed=1" } else { "" };
    Ok(Redirect::to(&format!("/portal/tickets/{}?created=1{flag}", ticket.number.0)).into_response())
}

fn with_status(mut r: Response, s: StatusCode) -> Response {
    *r.status_mut() = s;
    r
}

pub struct Message {
    pub author: String,
    pub body: String,
    pub when: String,
    pub from_desk: bool,
    pub files: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/ticket.html")]
struct TicketPage {
    css: String,
    viewer_name: String,
    csrf: String,
    number: i64,
    subject: String,
    description: String,
    status: &'static str,
    status_class: &'static str,
    created: bool,
    attach_failed: bool,
    messages: Vec<Message>,
    files: Vec<(String, String)>,
    can_reply: bool,
    can_confirm: bool,
    can_cancel: bool,
    resolution: Option<String>,
}

#[derive(Deserialize)]
pub struct TicketParams {
    created: Option<String>,
    attach_failed: Option<String>,
}

pub async fn ticket(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
    Query(p): Query<TicketParams>,
) -> Result<Response, UiError> {
    let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Read).await?;
    let comments = state.store.comments(t.id, false).await.map_err(api)?;
    let attachments = state.store.attachments(t.id, false).await.map_err(api)?;
    let mut ids: Vec<_> = comments.iter().filter_map(|c| c.author_id).collect();
    ids.sort();
    ids.dedup();
    let people = state.store.users_by_ids(&ids).await.map_err(api)?;
    let messages = comments
        .into_iter()
        .map(|c| {
            let author = people.iter().find(|u| Some(u.id) == c.author_id);
            Message {
                author: author.map(|u| u.name.clone()).unwrap_or_else(|| "Service desk".into()),
                from_desk: author.is_some_and(|u| u.role.is_staff()),
                body: c.body,
                when: when(c.created_at),
                files: attachments
                    .iter()
                    .filter(|a| a.comment_id == Some(c.id))
                    .map(|a| (a.id.to_string(), a.filename.clone()))
                    .collect(),
            }
        })
        .collect();
    let facts = TicketFacts::from(&t);
    let allowed = |a: Action| decide(&viewer.actor, Resource::Ticket(&facts), a).is_allowed();
    let page = TicketPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        number: t.number.0,
        subject: t.subject.clone(),
        description: t.description.clone(),
        status: status_for_requester(t.status),
        status_class: status_class(t.status),
        created: p.created.is_some(),
        attach_failed: p.attach_failed.is_some(),
        messages,
        files: attachments
            .iter()
            .filter(|a| a.comment_id.is_none())
            .map(|a| (a.id.to_string(), a.filename.clone()))
            .collect(),
        can_reply: t.status != Status::Closed && allowed(Action::Reply),
        can_confirm: t.status == Status::Resolved && allowed(Action::Close),
        can_cancel: t.status.is_active() && allowed(Action::Close),
        resolution: t.resolution_note.clone().filter(|_| t.status == Status::Resolved || t.status == Status::Closed),
    };
    Ok(render(&page))
}

pub async fn reply(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
    form: Multipart,
) -> Result<Response, UiError> {
    let form = FormData::read(form, state.limits.attachment_bytes).await?;
    viewer.check_csrf(form.get("csrf"))?;
    let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Reply).await?;
    let text = usecases::comment_text(form.get("body"))?;
    let comment = usecases::new_comment(&viewer.actor, &t, text, false, state.now())?;
    usecases::save_comment(&state, &viewer.actor, &t, comment.clone(), None).await.map_err(api)?;
    for (name, content_type, data) in form.files {
        usecases::attach_file(&state, &viewer.actor, &t, &name, &content_type, data, Some(comment.id), false).await?;
    }
    Ok(Redirect::to(&format!("/portal/tickets/{}", t.number.0)).into_response())
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// confirm (close a resolved ticket), reopen, cancel (close an unfinished one).
pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&form.csrf)?;
    let (permission, by_requester) = match action.as_str() {
        "confirm" | "cancel" => (Action::Close, false),
        "reopen" => (Action::Reopen, !viewer.is_staff()),
        _ => return Err(UiError::from(ApiError::not_found())),
    };
    let t = usecases::find_ticket(&state, &viewer.actor, &number, permission).await?;
    let version = t.version;
    let reason = form.reason;
    usecases::change_ticket(&state, &viewer.actor, t.clone(), version, move |t, m, now| match action.as_str() {
        "reopen" => t.reopen(Some(&reason), by_requester, m, now),
        "confirm" if t.status != Status::Resolved => {
            Err(ferrodesk_core::DomainError::invalid("status", "only a resolved request can be confirmed"))
        }
        _ => t.close(None, m, now),
    })
    .await?;
    Ok(Redirect::to(&format!("/portal/tickets/{}", t.number.0)).into_response())
}

#[derive(Template)]
#[template(path = "by_mail.html")]
struct ByMailPage {
    css: String,
    heading: String,
    message: String,
    show_form: bool,
    button: &'static str,
    t: String,
    a: String,
    e: String,
    s: String,
}

/// The parts of a signed link from a "resolved" mail.
#[derive(Deserialize)]
pub struct ByMail {
    #[serde(default)]
    t: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    e: String,
    #[serde(default)]
    s: String,
}

fn by_mail_page(status: StatusCode, heading: &str, message: String, form: Option<(&'static str, &ByMail)>) -> Response {
    let (button, link) = form.map_or(("", None), |(b, l)| (b, Some(l)));
    let page = ByMailPage {
        css: crate::assets::url("app.css"),
        heading: heading.to_owned(),
        message,
        show_form: link.is_some(),
        button,
        t: link.map(|l| l.t.clone()).unwrap_or_default(),
        a: link.map(|l| l.a.clone()).unwrap_or_default(),
        e: link.map(|l| l.e.clone()).unwrap_or_default(),
        s: link.map(|l| l.s.clone()).unwrap_or_default(),
    };
    let mut resp = render(&page);
    *resp.status_mut() = status;
    resp
}

/// Checks a link; returns the ticket and the action, or the page that says why not.
async fn checked_link(
    state: &AppState,
    link: &ByMail,
) -> Result<(ferrodesk_core::ticket::Ticket, ferrodesk_mail::links::LinkAction), Response> {
    let invalid = || {
        by_mail_page(
            StatusCode::BAD_REQUEST,
            "This link does not work any more",
            "It is too old, or not complete. Open your request in the portal instead.".into(),
            None,
        )
    };
    let (Ok(ticket), Some(action), Ok(expires)) =
        (link.t.parse::<uuid::Uuid>(), ferrodesk_mail::links::LinkAction::parse(&link.a), link.e.parse::<i64>())
    else {
        return Err(invalid());
    };
    let ticket = ferrodesk_core::ids::TicketId(ticket);
    let links = ferrodesk_mail::links::TicketLinks::load(&state.store, state.secrets.as_ref())
        .await
        .map_err(|e| UiError::from(ApiError::from(e)).into_response())?;
    if !links.verify(ticket, action, expires, &link.s, state.now()) {
        return Err(invalid());
    }
    let ticket = state
        .store
        .ticket(ticket)
        .await
        .map_err(|e| UiError::from(ApiError::from(e)).into_response())?
        .ok_or_else(invalid)?;
    Ok((ticket, action))
}

/// A link from a "resolved" mail: shows what it will do; only the button (a POST) does it.
pub async fn by_mail_page_get(State(state): State<AppState>, Query(link): Query<ByMail>) -> Response {
    let (ticket, action) = match checked_link(&state, &link).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (heading, button) = match action {
        ferrodesk_mail::links::LinkAction::Confirm => ("Is your request solved?", "Yes, it is solved"),
        ferrodesk_mail::links::LinkAction::Reopen => ("Is your request not solved?", "Reopen it"),
    };
    let message = format!("Request #{}: {}", ticket.number.0, ticket.subject);
    by_mail_page(StatusCode::OK, heading, message, Some((button, &link)))
}

/// Does what a checked link says, as the ticket's requester.
pub async fn by_mail_post(State(state): State<AppState>, Form(link): Form<ByMail>) -> Response {
    let (ticket, action) = match checked_link(&state, &link).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let actor = match state.store.actor(ticket.requester_id).await {
        Ok(Some(a)) => a,
        _ => {
            return by_mail_page(
                StatusCode::FORBIDDEN,
                "This link does not work any more",
                "The account is not active.".into(),
                None,
            );
        }
    };
    let version = ticket.version;
    let number = ticket.number.0;
    let result = usecases::change_ticket(&state, &actor, ticket, version, move |t, m, now| match action {
        ferrodesk_mail::links::LinkAction::Reopen => t.reopen(Some("reopened from the e-mail link"), true, m, now),
        ferrodesk_mail::links::LinkAction::Confirm if t.status != Status::Resolved => {
            Err(ferrodesk_core::DomainError::invalid("status", "only a resolved request can be confirmed"))
        }
        ferrodesk_mail::links::LinkAction::Confirm => t.close(None, m, now),
    })
    .await;
    match result {
        Ok(_) => {
            let done = match action {
                ferrodesk_mail::links::LinkAction::Confirm => "Thank you: the request is closed.",
                ferrodesk_mail::links::LinkAction::Reopen => "The request is open again; the desk will be back to you.",
            };
            by_mail_page(StatusCode::OK, &format!("Request #{number}"), done.into(), None)
        }
        Err(e) => by_mail_page(
            StatusCode::CONFLICT,
            &format!("Request #{number}"),
            format!("Nothing was changed: {}", e.detail),
            None,
        ),
    }
}
