//! The agent workspace: queues with counts, the ticket page with the whole conversation,
//! composer, properties and actions. Staff only — enforced on every handler.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_core::access::{Action, TicketScope};
use ferrodesk_core::ids::{GroupId, UserId};
use ferrodesk_core::priority::{Impact, Priority, Urgency};
use ferrodesk_core::ticket::{PendingReason, Status, Ticket, TicketPatch, TicketType};
use ferrodesk_store::{TicketQuery, TicketSortKey, UserQuery};
use ferrodesk_web::AppState;
use ferrodesk_web::error::ApiError;
use ferrodesk_web::usecases;
use serde::Deserialize;

use crate::error::{UiError, render};
use crate::forms::{FormData, age, highlight, priority_class, status_class, when};
use crate::viewer::Viewer;

fn api(e: impl Into<ApiError>) -> UiError {
    UiError::from(e.into())
}

fn staff_only(viewer: &Viewer) -> Result<(), UiError> {
    if viewer.is_staff() {
        Ok(())
    } else {
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            "This is the service desk's workspace. Your requests are in the portal.",
        ))
    }
}

/// The queue views: (key, label).
const VIEWS: [(&str, &str); 5] = [
    ("mine", "My open tickets"),
    ("unassigned", "Unassigned in my groups"),
    ("open", "All open in my groups"),
    ("pending", "Pending"),
    ("resolved", "Recently resolved"),
];

fn view_query(view: &str, me: UserId) -> TicketQuery {
    let active = vec![Status::New, Status::Open, Status::Pending];
    let base = TicketQuery { sort: TicketSortKey::Priority, descending: false, limit: 50, ..TicketQuery::default() };
    match view {
        "unassigned" => TicketQuery { statuses: vec![Status::New, Status::Open], assignee_id: Some(None), ..base },
        "open" => TicketQuery { statuses: active, ..base },
        "pending" => TicketQuery { statuses: vec![Status::Pending], ..base },
        "resolved" => {
            TicketQuery { statuses: vec![Status::Resolved], sort: TicketSortKey::UpdatedAt, descending: true, ..base }
        }
        _ => TicketQuery { statuses: active, assignee_id: Some(Some(me)), ..base },
    }
}

pub struct ViewTab {
    pub key: &'static str,
    pub label: &'static str,
    pub count: i64,
    pub current: bool,
}

pub struct QueueRow {
    pub number: i64,
    pub subject: Vec<(String, bool)>,
    pub snippet: Option<Vec<(String, bool)>>,
    pub requester: String,
    pub priority: &'static str,
    pub priority_class: &'static str,
    pub status: &'static str,
    pub status_class: &'static str,
    pub group: String,
    pub assignee: String,
    pub updated: String,
    pub age: String,
}

#[derive(Template)]
#[template(path = "desk/queue.html")]
struct QueuePage {
    admin: bool,
    css: String,
    viewer_name: String,
    csrf: String,
    tabs: Vec<ViewTab>,
    view: String,
    q: String,
    rows: Vec<QueueRow>,
    next: Option<String>,
    here: String,
    saved_tabs: Vec<SavedTab>,
    current_filter: Option<String>,
    values: FilterValues,
    statuses: Vec<&'static str>,
    priority_names: Vec<&'static str>,
    type_names: Vec<&'static str>,
    bulk_done: Option<usize>,
    bulk_failed: Option<String>,
    groups: Vec<(String, String)>,
    title: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct QueueParams {
    view: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    bulk: Option<usize>,
    failed: Option<String>,
    saved: Option<String>,
}

/// Query keys of the filter form; they are the API's list parameters.
const FILTER_KEYS: [&str; 7] = ["status", "priority", "type", "group_id", "assignee_id", "tag", "q"];

pub struct SavedTab {
    pub id: String,
    pub name: String,
    pub count: i64,
    pub current: bool,
}

/// The filter form's current values.
#[derive(Default)]
pub struct FilterValues {
    pub status: String,
    pub priority: String,
    pub ticket_type: String,
    pub group_id: String,
    pub assignee_id: String,
    pub tag: String,
    pub q: String,
}

impl FilterValues {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        Self {
            status: get("status"),
            priority: get("priority"),
            ticket_type: get("type"),
            group_id: get("group_id"),
            assignee_id: get("assignee_id"),
            tag: get("tag"),
            q: get("q"),
        }
    }
}

/// The names of the tickets' requesters and assignees.
async fn user_names(state: &AppState, tickets: &[Ticket]) -> Result<HashMap<UserId, String>, UiError> {
    let mut ids: Vec<UserId> = tickets.iter().flat_map(|t| [Some(t.requester_id), t.assignee_id]).flatten().collect();
    ids.sort();
    ids.dedup();
    Ok(state.store.users_by_ids(&ids).await.map_err(api)?.into_iter().map(|u| (u.id, u.name)).collect())
}

pub async fn queue(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(p): Query<QueueParams>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    let scope = TicketScope::of(&viewer.actor);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|_| UiError::new(StatusCode::BAD_REQUEST, "The address has a malformed query."))?;
    let q = p.q.clone().unwrap_or_default();
    // A filter: a saved one, or the filter form's fields (the API's own list parameters).
    let saved = state.store.saved_filters(viewer.user.id).await.map_err(api)?;
    let filter: Option<(String, String)> = match &p.saved {
        Some(id) => {
            let f =
                saved.iter().find(|f| f.id.to_string() == *id).ok_or_else(|| UiError::from(ApiError::not_found()))?;
            Some((f.name.clone(), f.query.clone()))
        }
        None => {
            let fields: Vec<&(String, String)> =
                pairs.iter().filter(|(k, v)| FILTER_KEYS.contains(&k.as_str()) && !v.trim().is_empty()).collect();
            if fields.is_empty() {
                None
            } else {
                let title =
                    if fields.len() == 1 && fields[0].0 == "q" { format!("Search: {q}") } else { "Filter".to_owned() };
                Some((title, serde_urlencoded::to_string(&fields).unwrap_or_default()))
            }
        }
    };
    let view = if filter.is_some() {
        String::new()
    } else {
        p.view.clone().filter(|v| VIEWS.iter().any(|(k, _)| k == v)).unwrap_or_else(|| "mine".into())
    };
    // The views' counts, then the saved filters' (one that no longer parses counts 0; it is
    // shown with its error when opened).
    let mut counted: Vec<TicketQuery> = VIEWS.iter().map(|(key, _)| view_query(key, viewer.user.id)).collect();
    let saved_count_at: Vec<Option<usize>> = saved
        .iter()
        .map(|f| {
            let q = serde_urlencoded::from_str::<usecases::ListParams>(&f.query)
                .ok()
                .and_then(|lp| usecases::to_query(&lp, &viewer.actor).ok())?;
            counted.push(q);
            Some(counted.len() - 1)
        })
        .collect();
    let filter_values: Vec<(String, String)> =
        filter.as_ref().map(|(_, fq)| serde_urlencoded::from_str(fq).unwrap_or_default()).unwrap_or_default();
    let mut error = None;
    let mut query = match &filter {
        Some((_, fq)) => match serde_urlencoded::from_str::<usecases::ListParams>(fq)
            .map_err(|e| e.to_string())
            .and_then(|lp| usecases::to_query(&lp, &viewer.actor).map_err(|e| e.detail))
        {
            Ok(query) => query,
            Err(e) => {
                error = Some(e);
                TicketQuery { limit: 50, ..TicketQuery::default() }
            }
        },
        None => view_query(&view, viewer.user.id),
    };
    let sort = p.sort.unwrap_or_default();
    match sort.as_str() {
        "number" => (query.sort, query.descending) = (TicketSortKey::Number, true),
        "updated" => (query.sort, query.descending) = (TicketSortKey::UpdatedAt, true),
        "age" => (query.sort, query.descending) = (TicketSortKey::CreatedAt, false),
        "priority" => (query.sort, query.descending) = (TicketSortKey::Priority, false),
        _ => {}
    }

    let here = match (&p.saved, &filter) {
        (Some(id), _) => format!("/desk?saved={id}&sort={sort}"),
        (None, Some((_, fq))) => format!("/desk?{fq}&sort={sort}"),
        (None, None) => format!("/desk?view={view}&sort={sort}"),
    };
    if let Some(c) = p.cursor.as_deref() {
        query.after = Some(usecases::decode_cursor(query.sort, c)?);
    }
    let limit = query.limit as usize;
    query.limit += 1;
    // The page, its counts and the group names at once: none needs another.
    let listed = async { if error.is_none() { state.store.list_tickets(&query, &scope).await } else { Ok(vec![]) } };
    let (mut tickets, counts, groups) =
        tokio::try_join!(listed, state.store.count_tickets_each(&counted, &scope), state.store.list_groups())
            .map_err(api)?;
    let tabs: Vec<ViewTab> = VIEWS
        .iter()
        .zip(&counts)
        .map(|((key, label), count)| ViewTab { key, label, count: *count, current: *key == view })
        .collect();
    let saved_tabs: Vec<SavedTab> = saved
        .iter()
        .zip(saved_count_at)
        .map(|(f, at)| SavedTab {
            id: f.id.to_string(),
            name: f.name.clone(),
            count: at.and_then(|i| counts.get(i).copied()).unwrap_or(0),
            current: p.saved.as_deref() == Some(&f.id.to_string()),
        })
        .collect();
    let groups: HashMap<GroupId, String> = groups.into_iter().map(|g| (g.id, g.name)).collect();
    let next = if tickets.len() > limit {
        tickets.truncate(limit);
        tickets.last().map(|t| format!("{here}&cursor={}", usecases::encode_cursor(query.sort, t)))
    } else {
        None
    };
    let users = user_names(&state, &tickets).await?;
    let group_choices: Vec<(String, String)> = groups.iter().map(|(id, name)| (id.to_string(), name.clone())).collect();
    let terms = query.terms.clone();
    let now = state.now();
    let rows = tickets
        .into_iter()
        .map(|t| QueueRow {
            number: t.number.0,
            snippet: if terms.is_empty() {
                None
            } else {
                crate::forms::snippet(&t.description, &terms).map(|s| highlight(&s, &terms))
            },
            subject: highlight(&t.subject, &terms),
            requester: users.get(&t.requester_id).cloned().unwrap_or_default(),
            priority: t.priority.as_str(),
            priority_class: priority_class(t.priority),
            status: t.status.as_str(),
            status_class: status_class(t.status),
            group: t.group_id.and_then(|g| groups.get(&g).cloned()).unwrap_or_else(|| "—".into()),
            assignee: t.assignee_id.and_then(|a| users.get(&a).cloned()).unwrap_or_else(|| "—".into()),
            updated: when(t.updated_at),
            age: age(t.created_at, now),
        })
        .collect();
    let title = match &filter {
        Some((name, _)) => name.clone(),
        None => VIEWS.iter().find(|(k, _)| *k == view).map(|(_, l)| l.to_string()).unwrap_or_default(),
    };
    let current_filter = filter.map(|(_, fq)| fq);
    let page = QueuePage {
        admin: viewer.actor.role == ferrodesk_core::user::Role::Admin,
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name,
        csrf: viewer.session.csrf_token,
        tabs,
        view,
        q,
        rows,
        next,
        here,
        saved_tabs,
        current_filter,
        values: FilterValues::from_pairs(&filter_values),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        priority_names: Priority::ALL.iter().map(|s| s.as_str()).collect(),
        type_names: TicketType::ALL.iter().map(|s| s.as_str()).collect(),
        bulk_done: p.bulk,
        bulk_failed: p.failed,
        groups: group_choices,
        title,
        error,
    };
    Ok(render(&page))
}

pub struct Entry {
    pub id: String,
    /// The e-mail it came in, for the "as sent" view.
    pub mail: Option<String>,
    pub author: String,
    pub body: String,
    pub when: String,
    pub internal: bool,
    pub files: Vec<(String, String)>,
    /// The mail this note holds, when it did not prove its sender.
    pub held: Option<crate::held_mail::HeldEntry>,
}

/// A custom field in the properties form, with its current value.
pub struct FieldEdit {
    pub key: String,
    pub label: String,
    pub kind: &'static str,
    pub options: Vec<Choice>,
    pub value: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices<T: Copy + PartialEq>(all: &[T], current: T, text: impl Fn(T) -> &'static str) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice { value: text(*v).to_owned(), label: text(*v).replace('_', " "), selected: *v == current })
        .collect()
}

#[derive(Template)]
#[template(path = "desk/ticket.html")]
struct TicketPage {
    admin: bool,
    css: String,
    viewer_name: String,
    csrf: String,
    number: i64,
    subject: String,
    description: String,
    /// The e-mail that opened the ticket, if any.
    description_mail: Option<String>,
    status: &'static str,
    status_class: &'static str,
    priority: &'static str,
    priority_class: &'static str,
    impact: &'static str,
    urgency: &'static str,
    level: String,
    version: i64,
    requester_name: String,
    requester_email: String,
    requester_org: String,
    other_open: Vec<(i64, String)>,
    entries: Vec<Entry>,
    files: Vec<(String, String)>,
    statuses: Vec<Choice>,
    impacts: Vec<Choice>,
    urgencies: Vec<Choice>,
    priorities: Vec<Choice>,
    types: Vec<Choice>,
    groups: Vec<Choice>,
    assignees: Vec<Choice>,
    tags: String,
    history: Vec<(String, String, String)>,
    links: Vec<(&'static str, i64, String, &'static str)>,
    time_entries: Vec<(String, i64, String)>,
    time_total: i64,
    categories: Vec<Choice>,
    fields: Vec<FieldEdit>,
    assigned_to_me: bool,
    closed: bool,
}

pub async fn ticket(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Read).await?;
    // Everything the page shows, read at once: on PostgreSQL each read is a round trip, and
    // SQLite answers them on several read connections.
    let store = &state.store;
    let scope = TicketScope::of(&viewer.actor);
    let others_query = TicketQuery {
        requester_id: Some(t.requester_id),
        statuses: vec![Status::New, Status::Open, Status::Pending],
        limit: 6,
        ..TicketQuery::default()
    };
    let staff_query = UserQuery { staff_only: true, limit: 1000, ..UserQuery::default() };
    let (comments, attachments, history, mails, held, orgs, others, links, entries, defs, groups, staff) =
        tokio::try_join!(
            store.comments(t.id, true),
            store.attachments(t.id, true),
            store.history(t.id),
            store.ticket_inbound(t.id),
            store.held_inbound(t.id),
            store.list_organisations(),
            store.list_tickets(&others_query, &scope),
            store.ticket_links(t.id),
            store.time_entries(t.id),
            store.custom_fields(),
            store.list_groups(),
            store.list_users(&staff_query),
        )
        .map_err(api)?;
    let mail_of = |comment: Option<ferrodesk_core::ids::CommentId>| {
        mails.iter().find(|m| m.comment_id == comment).map(|m| m.id.to_string())
    };
    let mut ids: Vec<UserId> = comments
        .iter()
        .filter_map(|c| c.author_id)
        .chain(history.iter().filter_map(|h| h.actor_id))
        .chain(held.iter().filter_map(|m| m.decided_by))
        .collect();
    ids.push(t.requester_id);
    ids.sort();
    ids.dedup();
    let mut time_ids: Vec<UserId> = entries.iter().map(|e| e.user_id).collect();
    time_ids.sort();
    time_ids.dedup();
    let (people, time_people) =
        tokio::try_join!(store.users_by_ids(&ids), store.users_by_ids(&time_ids)).map_err(api)?;
    let name = |id: Option<UserId>| {
        people.iter().find(|u| Some(u.id) == id).map(|u| u.name.clone()).unwrap_or_else(|| "System".into())
    };
    let requester = people.iter().find(|u| u.id == t.requester_id);
    let links = links
        .into_iter()
        .filter(|(_, other)| {
            ferrodesk_core::access::decide(
                &viewer.actor,
                ferrodesk_core::access::Resource::Ticket(&ferrodesk_core::access::TicketFacts::from(other)),
                Action::Read,
            )
            .is_allowed()
        })
        .map(|(kind, other)| (kind.as_str(), other.number.0, other.subject, other.status.as_str()))
        .collect();
    let time_total = entries.iter().map(|e| e.minutes).sum();
    let time_entries = entries
        .into_iter()
        .map(|e| {
            (
                time_people.iter().find(|u| u.id == e.user_id).map(|u| u.name.clone()).unwrap_or_default(),
                e.minutes,
                e.note,
            )
        })
        .collect();
    let mut categories =
        vec![Choice { value: String::new(), label: "— none —".into(), selected: t.category_id.is_none() }];
    categories.extend(crate::portal::category_options(&state).await?.into_iter().map(|c| Choice {
        selected: t.category_id.map(|id| id.to_string()) == Some(c.id.clone()),
        value: c.id,
        label: c.label,
    }));
    let fields = defs
        .iter()
        .filter(|d| d.applies_to(t.ticket_type))
        .map(|d| {
            let current = t.custom_fields.get(&d.key);
            let value = match current {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => {
                    if *b {
                        "on".into()
                    } else {
                        String::new()
                    }
                }
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let picked = |o: &str| match current {
                Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(o)),
                Some(serde_json::Value::String(s)) => s == o,
                _ => false,
            };
            FieldEdit {
                key: d.key.clone(),
                label: d.label.clone(),
                kind: d.kind.as_str(),
                options: d
                    .options
                    .iter()
                    .map(|o| Choice { value: o.clone(), label: o.clone(), selected: picked(o) })
                    .collect(),
                value,
            }
        })
        .collect();
    let mut group_choices =
        vec![Choice { value: String::new(), label: "— none —".into(), selected: t.group_id.is_none() }];
    group_choices.extend(groups.iter().map(|g| Choice {
        value: g.id.to_string(),
        label: g.name.clone(),
        selected: Some(g.id) == t.group_id,
    }));
    let mut assignee_choices =
        vec![Choice { value: String::new(), label: "— unassigned —".into(), selected: t.assignee_id.is_none() }];
    assignee_choices.extend(staff.iter().filter(|u| u.role.is_staff() && u.active).map(|u| Choice {
        value: u.id.to_string(),
        label: u.name.clone(),
        selected: Some(u.id) == t.assignee_id,
    }));
    let mut priority_choices =
        vec![Choice { value: String::new(), label: "from impact × urgency".into(), selected: !t.priority_overridden }];
    priority_choices.extend(Priority::ALL.iter().map(|p| Choice {
        value: p.as_str().into(),
        label: p.as_str().into(),
        selected: t.priority_overridden && *p == t.priority,
    }));
    let page = TicketPage {
        admin: viewer.actor.role == ferrodesk_core::user::Role::Admin,
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        number: t.number.0,
        subject: t.subject.clone(),
        description: t.description.clone(),
        description_mail: mail_of(None),
        status: t.status.as_str(),
        status_class: status_class(t.status),
        priority: t.priority.as_str(),
        priority_class: priority_class(t.priority),
        impact: t.impact.as_str(),
        urgency: t.urgency.as_str(),
        level: t.support_level.as_str().to_uppercase(),
        version: t.version,
        requester_name: requester.map(|u| u.name.clone()).unwrap_or_default(),
        requester_email: requester.map(|u| u.email.to_string()).unwrap_or_default(),
        requester_org: requester
            .and_then(|u| u.organisation_id)
            .and_then(|o| orgs.iter().find(|x| x.id == o))
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        other_open: others.into_iter().filter(|o| o.id != t.id).map(|o| (o.number.0, o.subject)).collect(),
        entries: comments
            .into_iter()
            .map(|c| Entry {
                id: c.id.to_string(),
                held: held
                    .iter()
                    .find(|m| m.held_note_id == Some(c.id))
                    .map(|m| crate::held_mail::HeldEntry::of(m, &name)),
                mail: mail_of(Some(c.id))
                    .or_else(|| held.iter().find(|m| m.held_note_id == Some(c.id)).map(|m| m.id.to_string())),
                author: name(c.author_id),
                when: when(c.created_at),
                internal: c.internal,
                files: attachments
                    .iter()
                    .filter(|a| a.comment_id == Some(c.id))
                    .map(|a| (a.id.to_string(), a.filename.clone()))
                    .collect(),
                body: c.body,
            })
            .collect(),
        files: attachments
            .iter()
            .filter(|a| a.comment_id.is_none())
            .map(|a| (a.id.to_string(), a.filename.clone()))
            .collect(),
        statuses: choices(Status::ALL, t.status, Status::as_str),
        impacts: choices(Impact::ALL, t.impact, Impact::as_str),
        urgencies: choices(Urgency::ALL, t.urgency, Urgency::as_str),
        priorities: priority_choices,
        types: choices(TicketType::ALL, t.ticket_type, TicketType::as_str),
        groups: group_choices,
        assignees: assignee_choices,
        tags: t.tags.join(", "),
        history: history
            .into_iter()
            .map(|h| {
                (
                    when(h.at),
                    format!("{} — {}", name(h.actor_id), h.field),
                    format!("{} → {}", h.old_value.unwrap_or_default(), h.new_value.unwrap_or_default()),
                )
            })
            .collect(),
        links,
        time_entries,
        time_total,
        categories,
        fields,
        assigned_to_me: t.assignee_id == Some(viewer.user.id),
        closed: t.status == Status::Closed,
    };
    Ok(render(&page))
}

pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
    form: Multipart,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    let form = FormData::read(form, state.limits.attachment_bytes).await?;
    viewer.check_csrf(form.get("csrf"))?;
    let internal = form.get("kind") == "note";
    let t = usecases::find_ticket(
        &state,
        &viewer.actor,
        &number,
        if internal { Action::InternalNote } else { Action::Reply },
    )
    .await?;
    let text = usecases::comment_text(form.get("body"))?;
    let comment = usecases::new_comment(&viewer.actor, &t, text, internal, state.now())?;
    usecases::save_comment(&state, &viewer.actor, &t, comment.clone(), None).await.map_err(api)?;
    for (name, content_type, data) in form.files {
        usecases::attach_file(&state, &viewer.actor, &t, &name, &content_type, data, Some(comment.id), internal)
            .await?;
    }
    Ok(Redirect::to(&format!("/desk/tickets/{}", t.number.0)).into_response())
}

/// Saves the side panel. The version the page was rendered with guards the change: if someone
/// else changed the ticket meanwhile, nothing is overwritten and the agent is told.
pub async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    let form = FormData {
        fields: pairs.iter().fold(std::collections::HashMap::new(), |mut m, (k, v)| {
            m.entry(k.clone()).or_insert_with(Vec::new).push(v.clone());
            m
        }),
        files: vec![],
    };
    viewer.check_csrf(form.get("csrf"))?;
    let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Update).await?;
    let bad = || UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "An unknown choice was sent.");
    let parse_id = |raw: &str| -> Result<Option<uuid::Uuid>, UiError> {
        if raw.is_empty() { Ok(None) } else { raw.parse().map(Some).map_err(|_| bad()) }
    };
    let assignee = parse_id(form.get("assignee_id"))?.map(UserId);
    usecases::check_assignee(&state, assignee).await?;
    let ticket_type = TicketType::parse(form.get("type"), "type")?;
    let defs: Vec<_> =
        state.store.custom_fields().await.map_err(api)?.into_iter().filter(|d| d.applies_to(ticket_type)).collect();
    let mut custom =
        crate::portal::custom_values(&defs, &form).map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    // Fields of this type left empty in the form are cleared.
    for d in &defs {
        custom.entry(d.key.clone()).or_insert(serde_json::Value::Null);
    }
    let version: i64 = form.get("version").parse().map_err(|_| bad())?;
    let priority = form.get("priority");
    let patch = TicketPatch {
        status: Some(Status::parse(form.get("status"), "status")?),
        pending_reason: Some(PendingReason::parse(form.get("pending_reason"), "pending_reason").ok()),
        impact: Some(Impact::parse(form.get("impact"), "impact")?),
        urgency: Some(Urgency::parse(form.get("urgency"), "urgency")?),
        priority: Some(if priority.is_empty() { None } else { Some(Priority::parse(priority, "priority")?) }),
        ticket_type: Some(ticket_type),
        category_id: Some(parse_id(form.get("category_id"))?.map(ferrodesk_core::ids::CategoryId)),
        group_id: Some(parse_id(form.get("group_id"))?.map(GroupId)),
        assignee_id: Some(assignee),
        tags: Some(form.get("tags").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()),
        custom_fields: Some(custom),
        ..TicketPatch::default()
    };
    if t.version != version {
        return Err(ApiError::from(ferrodesk_store::StoreError::Conflict { current: t.version }).into());
    }
    let all_defs = state.store.custom_fields().await.map_err(api)?;
    usecases::change_ticket(&state, &viewer.actor, t.clone(), version, |t, m, now| {
        let changes = t.apply(patch, m, now)?;
        ferrodesk_core::custom_field::validate_values(&all_defs, t.ticket_type, &t.custom_fields, false)?;
        Ok(changes)
    })
    .await?;
    Ok(Redirect::to(&format!("/desk/tickets/{}", t.number.0)).into_response())
}

#[derive(Deserialize)]
pub struct ActForm {
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    other: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    minutes: String,
}

/// assign-me, resolve (with a note), escalate (with a reason).
pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, action)): Path<(String, String)>,
    Form(f): Form<ActForm>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    viewer.check_csrf(&f.csrf)?;
    let back = |n: i64| Redirect::to(&format!("/desk/tickets/{n}")).into_response();
    match action.as_str() {
        "merge" => {
            let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Merge).await?;
            let version = t.version;
            let target = usecases::merge_into(&state, &viewer.actor, t, version, f.other.trim()).await?;
            return Ok(back(target.number.0));
        }
        "link" | "unlink" => {
            let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Link).await?;
            let other = usecases::find_ticket(&state, &viewer.actor, f.other.trim(), Action::Link).await?;
            if action == "unlink" {
                state.store.unlink_tickets(t.id, other.id, Some(viewer.user.id), state.now()).await.map_err(api)?;
            } else {
                let kind = match f.kind.as_str() {
                    "parent" => ferrodesk_store::LinkKind::Parent,
                    "child" => ferrodesk_store::LinkKind::Child,
                    _ => ferrodesk_store::LinkKind::Related,
                };
                state.store.link_tickets(t.id, other.id, kind, Some(viewer.user.id), state.now()).await.map_err(api)?;
            }
            return Ok(back(t.number.0));
        }
        "time" => {
            let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::LogTime).await?;
            let minutes: i64 = f
                .minutes
                .trim()
                .parse()
                .map_err(|_| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Minutes must be a whole number."))?;
            usecases::log_time(&state, &viewer.actor, &t, minutes, &f.note).await?;
            return Ok(back(t.number.0));
        }
        _ => {}
    }
    let permission = match action.as_str() {
        "assign-me" => Action::Assign,
        "resolve" => Action::Resolve,
        "escalate" => Action::Escalate,
        _ => return Err(UiError::from(ApiError::not_found())),
    };
    let t = usecases::find_ticket(&state, &viewer.actor, &number, permission).await?;
    let me = viewer.user.id;
    let version = t.version;
    usecases::change_ticket(&state, &viewer.actor, t.clone(), version, |t, m, now| match action.as_str() {
        "assign-me" => t.apply(TicketPatch { assignee_id: Some(Some(me)), ..TicketPatch::default() }, m, now),
        "resolve" => t.resolve(&f.note, None, m, now),
        _ => t.escalate(&f.note, None, m, now),
    })
    .await?;
    Ok(Redirect::to(&format!("/desk/tickets/{}", t.number.0)).into_response())
}

/// Live updates of one ticket as server-sent events: `changed` with the new version.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    UiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    staff_only(&viewer)?;
    let t = usecases::find_ticket(&state, &viewer.actor, &number, Action::Read).await?;
    let (changes, closing) = state.events.subscribe();
    let id = t.id;
    let stream = futures_util::stream::unfold((changes, closing), move |(mut changes, mut closing)| async move {
        loop {
            if *closing.borrow() {
                return None;
            }
            tokio::select! {
                received = changes.recv() => match received {
                    Ok(e) if e.id == id => {
                        let event = Event::default().event("changed").data(e.version.to_string());
                        return Some((Ok(event), (changes, closing)));
                    }
                    Ok(_) => {}
                    // Missed some events: say "changed" without a version, the page reloads its parts.
                    Err(RecvError::Lagged(_)) => return Some((Ok(Event::default().event("changed").data("0")), (changes, closing))),
                    Err(RecvError::Closed) => return None,
                },
                _ = closing.changed() => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Bulk action over the checked tickets of a queue. Each ticket is changed on its own, with the
/// same permission check as one at a time; what could not be changed is reported, not hidden.
pub async fn bulk(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    viewer.check_csrf(&get("csrf"))?;
    let back = crate::forms::safe_next(&get("back")).unwrap_or("/desk").to_owned();
    let mut numbers: Vec<String> = form.iter().filter(|(n, _)| n == "ticket").map(|(_, v)| v.clone()).collect();
    numbers.sort_by_key(|n| n.parse::<i64>().unwrap_or(i64::MAX));
    numbers.dedup();
    if numbers.is_empty() || numbers.len() > 200 {
        return Err(UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Select between 1 and 200 tickets."));
    }
    let action = get("action");
    let (verb, value) = action.split_once(':').unwrap_or((action.as_str(), ""));
    let mut failed: Vec<String> = Vec::new();
    let mut done = 0;
    if verb == "merge" {
        let target_ref = numbers[0].clone();
        for n in &numbers[1..] {
            let outcome = async {
                let source = usecases::find_ticket(&state, &viewer.actor, n, Action::Merge).await?;
                let version = source.version;
                usecases::merge_into(&state, &viewer.actor, source, version, &target_ref).await
            }
            .await;
            match outcome {
                Ok(_) => done += 1,
                Err(e) => failed.push(format!("#{n} ({})", e.detail)),
            }
        }
    } else {
        let me = viewer.user.id;
        for n in &numbers {
            let outcome = async {
                let t = usecases::find_ticket(&state, &viewer.actor, n, Action::Update).await?;
                let patch = match verb {
                    "assign" => TicketPatch { assignee_id: Some(Some(me)), ..TicketPatch::default() },
                    "status" => TicketPatch { status: Some(Status::parse(value, "status")?), ..TicketPatch::default() },
                    "priority" => TicketPatch {
                        priority: Some(Some(Priority::parse(value, "priority")?)),
                        ..TicketPatch::default()
                    },
                    "group" => TicketPatch {
                        group_id: Some(Some(GroupId(
                            value.parse().map_err(|_| ApiError::invalid("group_id", "unknown group"))?,
                        ))),
                        ..TicketPatch::default()
                    },
                    "tag" => {
                        let mut tags = t.tags.clone();
                        tags.push(get("tag"));
                        TicketPatch { tags: Some(tags), ..TicketPatch::default() }
                    }
                    _ => return Err(ApiError::invalid("action", "choose an action")),
                };
                let version = t.version;
                usecases::change_ticket(&state, &viewer.actor, t, version, |t, m, now| t.apply(patch, m, now)).await
            }
            .await;
            match outcome {
                Ok(_) => done += 1,
                Err(e) => failed.push(format!("#{n} ({})", e.detail)),
            }
        }
    }
    let sep = if back.contains('?') { '&' } else { '?' };
    let mut target = format!("{back}{sep}bulk={done}");
    if !failed.is_empty() {
        target.push_str(&format!("&failed={}", crate::forms::url_encode(&failed.join("; "))));
    }
    Ok(Redirect::to(&target).into_response())
}

#[derive(Deserialize)]
pub struct SaveFilterForm {
    csrf: String,
    name: String,
    query: String,
}

/// Saves the current filter under a name (personal).
pub async fn save_filter(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<SaveFilterForm>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    viewer.check_csrf(&f.csrf)?;
    let name = ferrodesk_core::user::validate_name("name", &f.name)?;
    // Only a filter the API itself accepts is saved.
    let params: usecases::ListParams = serde_urlencoded::from_str(&f.query)
        .map_err(|_| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "That filter cannot be saved."))?;
    usecases::to_query(&params, &viewer.actor)?;
    let filter = ferrodesk_store::SavedFilter {
        id: uuid::Uuid::now_v7(),
        user_id: viewer.user.id,
        name,
        query: f.query,
        created_at: state.now(),
    };
    state.store.create_saved_filter(&filter).await.map_err(api)?;
    Ok(Redirect::to(&format!("/desk?saved={}", filter.id)).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn delete_filter(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, UiError> {
    staff_only(&viewer)?;
    viewer.check_csrf(&f.csrf)?;
    let id: uuid::Uuid = id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
    state.store.delete_saved_filter(viewer.user.id, id).await.map_err(api)?;
    Ok(Redirect::to("/desk").into_response())
}
