//! Admin pages: people, groups and their members, organisations, categories, custom fields,
//! the priority matrix and visibility, API tokens and sessions. Every handler asks the core's
//! `decide` (through `authorise`) before it reads or writes anything.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::custom_field::{CustomFieldDef, FieldKind};
use ferrodesk_core::ids::*;
use ferrodesk_core::mail::{AfterProcessing, ImapSecurity, InboundStatus};
use ferrodesk_core::priority::{Impact, Priority, PriorityMatrix, Urgency};
use ferrodesk_core::ticket::{SupportLevel, TicketType};
use ferrodesk_core::user::{EmailAddress, Role, User, validate_name, validate_password};
use ferrodesk_store::{ApiToken, Category, Group, Organisation, Settings, UserQuery};
use ferrodesk_web::AppState;
use ferrodesk_web::api::authorise;
use ferrodesk_web::api::mail as mail_api;
use ferrodesk_web::auth::{generate_token, hash_password, hash_token};
use ferrodesk_web::error::ApiError;
use serde::Deserialize;

use crate::error::{UiError, render};
use crate::forms::when;
use crate::viewer::Viewer;

fn api(e: impl Into<ApiError>) -> UiError {
    UiError::from(e.into())
}

fn admin_only(viewer: &Viewer) -> Result<(), UiError> {
    authorise(&viewer.actor, Resource::Config, Action::Update).map_err(UiError::from)
}

fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub groups: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    css: String,
    viewer_name: String,
    csrf: String,
    q: String,
    users: Vec<UserRow>,
    roles: Vec<&'static str>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct UserSearch {
    q: Option<String>,
    done: Option<String>,
}

pub async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(p): Query<UserSearch>,
) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    let q = p.q.unwrap_or_default();
    let text = Some(q.trim().to_owned()).filter(|t| !t.is_empty() && t.chars().count() <= 200);
    let list = state.store.list_users(&UserQuery { text, limit: 200, ..UserQuery::default() }).await.map_err(api)?;
    let groups = state.store.list_groups().await.map_err(api)?;
    let mut membership: Vec<(GroupId, Vec<UserId>)> = Vec::new();
    for g in &groups {
        membership.push((g.id, state.store.group_members(g.id).await.map_err(api)?));
    }
    let users = list
        .into_iter()
        .map(|u| UserRow {
            groups: groups
                .iter()
                .filter(|g| membership.iter().any(|(id, m)| *id == g.id && m.contains(&u.id)))
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            id: u.id.to_string(),
            name: u.name,
            email: u.email.to_string(),
            role: u.role.as_str(),
            active: u.active,
        })
        .collect();
    let page = UsersPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        q,
        users,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        done: p.done,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    password: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<NewUserForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    let role = Role::parse(&f.role, "role")?;
    authorise(&viewer.actor, Resource::Users { role }, Action::Create)?;
    let user = User {
        id: UserId::generate(),
        email: EmailAddress::parse(&f.email)?,
        name: validate_name("name", &f.name)?,
        role,
        organisation_id: None,
        active: true,
        created_at: state.now(),
    };
    let hash = if f.password.is_empty() {
        None
    } else {
        validate_password(&f.password)?;
        Some(hash_password(f.password).await?)
    };
    state.store.create_account(&user, hash.as_deref()).await.map_err(api)?;
    Ok(back("/admin/users?done=created"))
}

#[derive(Deserialize)]
pub struct UserChangeForm {
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    password: String,
}

/// Role and activation changes; `end-sessions` logs the user out everywhere; `password` sets a
/// new password (until reset by e-mail exists, this is how someone who forgot theirs gets back
/// in) and ends the account's sessions.
pub async fn change_user(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<UserChangeForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    let id: UserId = id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
    authorise(&viewer.actor, Resource::User(id), Action::Administer)?;
    let mut user = state.store.user(id).await.map_err(api)?.ok_or_else(|| UiError::from(ApiError::not_found()))?;
    match action.as_str() {
        "role" => user.role = Role::parse(&f.role, "role")?,
        "active" => user.active = f.active == "true",
        "end-sessions" => {
            state.store.delete_sessions(id, None).await.map_err(api)?;
            return Ok(back("/admin/users?done=signed-out"));
        }
        "password" => {
            validate_password(&f.password)?;
            let hash = hash_password(f.password).await?;
            state.store.set_password_hash(id, &hash).await.map_err(api)?;
            // Every session of the account ends (an admin setting their own keeps this one).
            let keep = (id == viewer.user.id).then_some(viewer.session.id);
            state.store.delete_sessions(id, keep).await.map_err(api)?;
            return Ok(back("/admin/users?done=password-set"));
        }
        _ => return Err(UiError::from(ApiError::not_found())),
    }
    if user.id == viewer.user.id && (user.role != Role::Admin || !user.active) {
        return Err(UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot remove your own admin rights or deactivate yourself.",
        ));
    }
    state.store.update_user(&user).await.map_err(api)?;
    Ok(back("/admin/users?done=saved"))
}

pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub level: &'static str,
    pub members: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    css: String,
    viewer_name: String,
    csrf: String,
    groups: Vec<GroupRow>,
    staff: Vec<(String, String)>,
    levels: Vec<&'static str>,
    done: Option<String>,
}

pub async fn groups(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    // Only staff can be group members; the directory may hold many thousands of requesters.
    let all_users = state
        .store
        .list_users(&UserQuery { staff_only: true, limit: 1000, ..UserQuery::default() })
        .await
        .map_err(api)?;
    let mut rows = Vec::new();
    for g in state.store.list_groups().await.map_err(api)? {
        let members = state.store.group_members(g.id).await.map_err(api)?;
        rows.push(GroupRow {
            id: g.id.to_string(),
            name: g.name,
            level: g.support_level.as_str(),
            members: all_users
                .iter()
                .filter(|u| members.contains(&u.id))
                .map(|u| (u.id.to_string(), u.name.clone()))
                .collect(),
        });
    }
    let page = GroupsPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        groups: rows,
        staff: all_users
            .iter()
            .filter(|u| u.role.is_staff() && u.active)
            .map(|u| (u.id.to_string(), u.name.clone()))
            .collect(),
        levels: SupportLevel::ALL.iter().map(|l| l.as_str()).collect(),
        done: n.done,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct GroupForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    support_level: String,
    #[serde(default)]
    user_id: String,
}

pub async fn create_group(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<GroupForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    admin_only(&viewer)?;
    let level = SupportLevel::parse(&f.support_level, "support_level")?;
    let g = Group {
        id: GroupId::generate(),
        name: validate_name("name", &f.name)?,
        support_level: level,
        created_at: state.now(),
    };
    state.store.create_group(&g).await.map_err(api)?;
    Ok(back("/admin/groups?done=created"))
}

/// add / remove a member (admins, or supervisors of that group).
pub async fn group_member(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<GroupForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    let group: GroupId = id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
    authorise(&viewer.actor, Resource::GroupMembers(group), Action::Update)?;
    let user: UserId =
        f.user_id.parse().map_err(|_| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Choose a person."))?;
    match action.as_str() {
        "add" => {
            let target = state.store.user(user).await.map_err(api)?;
            if !target.is_some_and(|u| u.role.is_staff()) {
                return Err(UiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Only agents, supervisors and admins can be group members.",
                ));
            }
            state.store.add_group_member(group, user).await.map_err(api)?;
        }
        "remove" => {
            state.store.remove_group_member(group, user).await.map_err(api)?;
        }
        _ => return Err(UiError::from(ApiError::not_found())),
    }
    Ok(back("/admin/groups?done=saved"))
}

#[derive(Template)]
#[template(path = "admin/directory.html")]
struct DirectoryPage {
    css: String,
    viewer_name: String,
    csrf: String,
    organisations: Vec<(String, String, bool)>,
    categories: Vec<(String, String)>,
    /// (id, name, parent id) of each category, for its edit form.
    category_edits: Vec<(String, String, String)>,
    /// (id, key, label, kind, options, required)
    fields: Vec<(String, String, String, &'static str, String, bool)>,
    kinds: Vec<&'static str>,
    types: Vec<&'static str>,
    done: Option<String>,
}

pub async fn directory(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    let cats = state.store.list_categories().await.map_err(api)?;
    let mut categories = Vec::new();
    fn walk(all: &[Category], parent: Option<CategoryId>, depth: usize, out: &mut Vec<(String, String)>) {
        for c in all.iter().filter(|c| c.parent_id == parent) {
            out.push((c.id.to_string(), format!("{}{}", "— ".repeat(depth), c.name)));
            if depth < 8 {
                walk(all, Some(c.id), depth + 1, out);
            }
        }
    }
    walk(&cats, None, 0, &mut categories);
    let page = DirectoryPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        organisations: state
            .store
            .list_organisations()
            .await
            .map_err(api)?
            .into_iter()
            .map(|o| (o.id.to_string(), o.name, o.shares_tickets))
            .collect(),
        category_edits: cats
            .iter()
            .map(|c| (c.id.to_string(), c.name.clone(), c.parent_id.map(|p| p.to_string()).unwrap_or_default()))
            .collect(),
        categories,
        fields: state
            .store
            .custom_fields()
            .await
            .map_err(api)?
            .into_iter()
            .map(|d| (d.id.to_string(), d.key, d.label, d.kind.as_str(), d.options.join(", "), d.required))
            .collect(),
        kinds: FieldKind::ALL.iter().map(|k| k.as_str()).collect(),
        types: TicketType::ALL.iter().map(|t| t.as_str()).collect(),
        done: n.done,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct DirectoryForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    shares_tickets: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    options: String,
    #[serde(default)]
    required: String,
    #[serde(default)]
    ticket_type: String,
}

/// Creates an organisation, a category or a custom field.
pub async fn create_entry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(what): Path<String>,
    Form(f): Form<DirectoryForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    admin_only(&viewer)?;
    let now = state.now();
    match what.as_str() {
        "organisation" => {
            let org = Organisation {
                id: OrganisationId::generate(),
                name: validate_name("name", &f.name)?,
                shares_tickets: f.shares_tickets == "on",
                created_at: now,
            };
            state.store.create_organisation(&org).await.map_err(api)?;
        }
        "category" => {
            let parent = if f.parent_id.is_empty() {
                None
            } else {
                Some(
                    f.parent_id
                        .parse()
                        .map_err(|_| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Unknown parent."))?,
                )
            };
            let c = Category {
                id: CategoryId::generate(),
                parent_id: parent,
                name: validate_name("name", &f.name)?,
                created_at: now,
            };
            state.store.create_category(&c).await.map_err(api)?;
        }
        "field" => {
            let def = CustomFieldDef {
                id: CustomFieldId::generate(),
                key: f.key.trim().to_owned(),
                label: validate_name("label", &f.name)?,
                kind: FieldKind::parse(&f.kind, "kind")?,
                options: f.options.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect(),
                required: f.required == "on",
                ticket_types: if f.ticket_type.is_empty() {
                    vec![]
                } else {
                    vec![TicketType::parse(&f.ticket_type, "ticket_type")?]
                },
            };
            def.validate()?;
            state.store.create_custom_field(&def).await.map_err(api)?;
        }
        _ => return Err(UiError::from(ApiError::not_found())),
    }
    Ok(back("/admin/directory?done=created"))
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    css: String,
    viewer_name: String,
    csrf: String,
    /// Rows: (impact, [(urgency, current priority)]).
    matrix: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
    priorities: Vec<&'static str>,
    agents_see_all: bool,
    mail_allow: String,
    mail_deny: String,
    mail_authserv: String,
    /// (name, what it is, switched on)
    notifications: Vec<(&'static str, &'static str, bool)>,
    done: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    let s = state.store.settings().await.map_err(api)?;
    let matrix = Impact::ALL
        .iter()
        .map(|i| {
            (i.as_str(), Urgency::ALL.iter().map(|u| (u.as_str(), s.priority_matrix.derive(*i, *u).as_str())).collect())
        })
        .collect();
    let page = SettingsPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        matrix,
        priorities: Priority::ALL.iter().map(|p| p.as_str()).collect(),
        agents_see_all: s.agents_see_all,
        mail_allow: s.mail_senders.allow.join("\n"),
        mail_deny: s.mail_senders.deny.join("\n"),
        mail_authserv: s.mail_trust.authserv_ids.join("\n"),
        notifications: ferrodesk_mail::outbound::Notification::SWITCHABLE
            .iter()
            .map(|(_, name, label)| (*name, *label, !s.disabled_notifications.iter().any(|d| d == name)))
            .collect(),
        done: n.done,
    };
    Ok(render(&page))
}

pub async fn save_settings(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or_default();
    viewer.check_csrf(get("csrf"))?;
    admin_only(&viewer)?;
    let mut matrix = PriorityMatrix::default();
    for (row, i) in Impact::ALL.iter().enumerate() {
        for (col, u) in Urgency::ALL.iter().enumerate() {
            matrix.cells[row][col] = Priority::parse(get(&format!("m_{i}_{u}")), "priority_matrix")?;
        }
    }
    let lines = |k: &str| get(k).lines().map(str::to_owned).collect::<Vec<_>>();
    let mail_senders =
        ferrodesk_core::mail::SenderPolicy { allow: lines("mail_allow"), deny: lines("mail_deny") }.validated()?;
    let mail_trust = ferrodesk_core::mail::MailTrust { authserv_ids: lines("mail_authserv") }.validated()?;
    // A ticked box means "send it"; the unticked ones are switched off.
    let disabled = ferrodesk_mail::outbound::Notification::SWITCHABLE
        .iter()
        .filter(|(_, name, _)| get(&format!("notify_{name}")) != "on")
        .map(|(_, name, _)| (*name).to_owned())
        .collect();
    state
        .store
        .save_settings(&Settings {
            priority_matrix: matrix,
            agents_see_all: get("agents_see_all") == "on",
            mail_senders,
            mail_trust,
            disabled_notifications: disabled,
        })
        .await
        .map_err(api)?;
    Ok(back("/admin/settings?done=saved"))
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    css: String,
    viewer_name: String,
    csrf: String,
    tokens: Vec<(String, String, String, String, bool)>,
    new_token: Option<String>,
}

/// Your own API tokens (every signed-in user): create, list, revoke; and log out everywhere.
pub async fn tokens(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    authorise(&viewer.actor, Resource::Credentials(viewer.user.id), Action::Read)?;
    tokens_page(&state, &viewer, None).await
}

/// The tokens page; a just-created secret is shown in this response only, never in a URL.
async fn tokens_page(state: &AppState, viewer: &Viewer, new_token: Option<String>) -> Result<Response, UiError> {
    let tokens = state
        .store
        .list_tokens(viewer.user.id)
        .await
        .map_err(api)?
        .into_iter()
        .map(|t| {
            (
                t.id.to_string(),
                t.name,
                when(t.created_at),
                t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                t.revoked_at.is_some(),
            )
        })
        .collect();
    let page = TokensPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        tokens,
        new_token,
    };
    let mut resp = render(&page);
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
}

pub async fn token_action(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(action): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    authorise(&viewer.actor, Resource::Credentials(viewer.user.id), Action::Update)?;
    match action.as_str() {
        "create" => {
            let secret = generate_token();
            let token = ApiToken {
                id: TokenId::generate(),
                user_id: viewer.user.id,
                name: validate_name("name", &f.name)?,
                created_at: state.now(),
                last_used_at: None,
                revoked_at: None,
            };
            state.store.create_token(&token, &hash_token(&secret)).await.map_err(api)?;
            tokens_page(&state, &viewer, Some(secret)).await
        }
        "revoke" => {
            let id: TokenId = f.id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
            state.store.revoke_token(viewer.user.id, id, state.now()).await.map_err(api)?;
            Ok(back("/account/tokens"))
        }
        "sign-out-everywhere" => {
            state.store.delete_sessions(viewer.user.id, None).await.map_err(api)?;
            Ok(back("/login"))
        }
        _ => Err(UiError::from(ApiError::not_found())),
    }
}

#[derive(Template)]
#[template(path = "admin/all_tokens.html")]
struct AllTokensPage {
    css: String,
    viewer_name: String,
    csrf: String,
    /// (token id, owner id, owner, name, created, last used, revoked)
    tokens: Vec<(String, String, String, String, String, String, bool)>,
}

/// Every user's API tokens (admins): who owns which, when last used; revoke any.
pub async fn all_tokens(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    let tokens = state.store.list_all_tokens(500).await.map_err(api)?;
    let mut owners: Vec<UserId> = tokens.iter().map(|t| t.user_id).collect();
    owners.sort();
    owners.dedup();
    let people = state.store.users_by_ids(&owners).await.map_err(api)?;
    let page = AllTokensPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        tokens: tokens
            .into_iter()
            .map(|t| {
                let owner = people
                    .iter()
                    .find(|u| u.id == t.user_id)
                    .map(|u| format!("{} <{}>", u.name, u.email))
                    .unwrap_or_default();
                (
                    t.id.to_string(),
                    t.user_id.to_string(),
                    owner,
                    t.name,
                    when(t.created_at),
                    t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                    t.revoked_at.is_some(),
                )
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct RevokeAnyForm {
    csrf: String,
    id: String,
    user_id: String,
}

pub async fn revoke_any_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<RevokeAnyForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    let owner: UserId = f.user_id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
    authorise(&viewer.actor, Resource::Credentials(owner), Action::Update)?;
    let id: TokenId = f.id.parse().map_err(|_| UiError::from(ApiError::not_found()))?;
    state.store.revoke_token(owner, id, state.now()).await.map_err(api)?;
    Ok(back("/admin/tokens"))
}

/// Edits an organisation (name, sharing), a category (name, parent) or a custom field (label,
/// options, required).
pub async fn edit_entry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((what, id)): Path<(String, String)>,
    Form(f): Form<DirectoryForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    admin_only(&viewer)?;
    let missing = || UiError::from(ApiError::not_found());
    match what.as_str() {
        "organisation" => {
            let id: OrganisationId = id.parse().map_err(|_| missing())?;
            let mut org = state
                .store
                .list_organisations()
                .await
                .map_err(api)?
                .into_iter()
                .find(|o| o.id == id)
                .ok_or_else(missing)?;
            org.name = validate_name("name", &f.name)?;
            org.shares_tickets = f.shares_tickets == "on";
            state.store.update_organisation(&org).await.map_err(api)?;
        }
        "category" => {
            let id: CategoryId = id.parse().map_err(|_| missing())?;
            let all = state.store.list_categories().await.map_err(api)?;
            let mut c = all.iter().find(|c| c.id == id).cloned().ok_or_else(missing)?;
            let parent: Option<CategoryId> =
                if f.parent_id.is_empty() { None } else { Some(f.parent_id.parse().map_err(|_| missing())?) };
            ferrodesk_core::category::check_reparent(id, parent, |x| {
                all.iter().find(|c| c.id == x).and_then(|c| c.parent_id)
            })?;
            c.name = validate_name("name", &f.name)?;
            c.parent_id = parent;
            state.store.update_category(&c).await.map_err(api)?;
        }
        "field" => {
            let id: CustomFieldId = id.parse().map_err(|_| missing())?;
            let mut d =
                state.store.custom_fields().await.map_err(api)?.into_iter().find(|d| d.id == id).ok_or_else(missing)?;
            d.label = validate_name("label", &f.name)?;
            d.options = f.options.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
            d.required = f.required == "on";
            d.validate()?;
            state.store.update_custom_field(&d).await.map_err(api)?;
        }
        _ => return Err(missing()),
    }
    Ok(back("/admin/directory?done=saved"))
}

pub struct MailboxRow {
    pub id: String,
    pub name: String,
    pub address: String,
    pub source: String,
    pub last_poll: String,
    pub last_error: Option<String>,
    pub active: bool,
    pub max_mib: i64,
}

pub struct InboundRow {
    pub id: String,
    pub received: String,
    pub from: String,
    pub subject: String,
    pub error: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "admin/mail.html")]
struct MailPage {
    css: String,
    viewer_name: String,
    csrf: String,
    mailboxes: Vec<MailboxRow>,
    quarantine: Vec<InboundRow>,
    recent: Vec<InboundRow>,
    done: Option<String>,
}

fn mail_admin(viewer: &Viewer) -> Result<(), UiError> {
    authorise(&viewer.actor, Resource::Mail, Action::Update).map_err(UiError::from)
}

fn inbound_row(m: ferrodesk_store::InboundMessage) -> InboundRow {
    let outcome = match (&m.automation, &m.error) {
        (Some(a), _) if m.status == InboundStatus::Processed => format!("{} ({a})", m.status),
        (_, Some(e)) => format!("{}: {e}", m.status),
        _ => m.status.to_string(),
    };
    InboundRow {
        id: m.id.to_string(),
        received: when(m.received_at),
        from: m.from_address.unwrap_or_else(|| "(none)".into()),
        subject: m.subject,
        error: m.error.unwrap_or_default(),
        outcome,
    }
}

/// Mailboxes, the quarantine and the latest messages (admins).
pub async fn mail(State(state): State<AppState>, viewer: Viewer, Query(n): Query<Notice>) -> Result<Response, UiError> {
    mail_admin(&viewer)?;
    let mailboxes = state
        .store
        .mailboxes()
        .await
        .map_err(api)?
        .into_iter()
        .map(|m| MailboxRow {
            id: m.id.to_string(),
            name: m.name,
            address: m.address.to_string(),
            source: match &m.imap {
                Some(i) => format!("IMAP {}:{} {}", i.host, i.port, i.folder),
                None => "relay or pipe".into(),
            },
            last_poll: m.imap_state.last_poll_at.map(when).unwrap_or_default(),
            last_error: m.imap_state.last_error,
            active: m.active,
            max_mib: m.max_message_bytes / 1024 / 1024,
        })
        .collect();
    let quarantine = state
        .store
        .list_inbound(Some(InboundStatus::Quarantined), None, 100)
        .await
        .map_err(api)?
        .into_iter()
        .map(inbound_row)
        .collect();
    let recent = state.store.list_inbound(None, None, 30).await.map_err(api)?.into_iter().map(inbound_row).collect();
    let page = MailPage {
        css: crate::assets::url("app.css"),
        viewer_name: viewer.user.name.clone(),
        csrf: viewer.session.csrf_token.clone(),
        mailboxes,
        quarantine,
        recent,
        done: n.done,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct MailboxForm {
    csrf: String,
    name: String,
    address: String,
    #[serde(default)]
    max_mib: String,
    #[serde(default)]
    imap_host: String,
    #[serde(default)]
    imap_security: String,
    #[serde(default)]
    imap_port: String,
    #[serde(default)]
    imap_user: String,
    #[serde(default)]
    imap_password: String,
    #[serde(default)]
    imap_folder: String,
    #[serde(default)]
    move_to: String,
}

pub async fn add_mailbox(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<MailboxForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    mail_admin(&viewer)?;
    let imap = if f.imap_host.trim().is_empty() {
        None
    } else {
        let port = match f.imap_port.trim() {
            "" => None,
            p => Some(p.parse::<u16>().map_err(|_| ApiError::invalid("imap.port", "1 to 65535"))?),
        };
        let move_to = Some(f.move_to.trim().to_owned()).filter(|m| !m.is_empty());
        Some(mail_api::ImapInput {
            host: f.imap_host,
            port,
            security: Some(ImapSecurity::parse(&f.imap_security, "imap.security")?),
            username: f.imap_user,
            password: Some(f.imap_password).filter(|p| !p.is_empty()),
            folder: Some(f.imap_folder).filter(|p| !p.trim().is_empty()),
            poll_seconds: None,
            after_processing: Some(if move_to.is_some() { AfterProcessing::Move } else { AfterProcessing::Seen }),
            move_to,
        })
    };
    let body = mail_api::CreateMailbox {
        name: f.name,
        address: f.address,
        default_group_id: None,
        default_category_id: None,
        default_type: None,
        local_senders_as: None,
        max_message_bytes: match f.max_mib.trim() {
            "" => None,
            n => Some(
                n.parse::<i64>()
                    .map_err(|_| ApiError::invalid("max_message_bytes", "a whole number of MiB"))?
                    .saturating_mul(1024 * 1024),
            ),
        },
        imap,
    };
    mail_api::add_mailbox(&state, body).await?;
    Ok(back("/admin/mail?done=mailbox+added"))
}

pub async fn toggle_mailbox(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<crate::login::CsrfForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    mail_admin(&viewer)?;
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::not_found())?;
    let mut mailbox =
        state.store.mailboxes().await.map_err(api)?.into_iter().find(|m| m.id == id).ok_or_else(ApiError::not_found)?;
    mailbox.active = !mailbox.active;
    mailbox.updated_at = state.now();
    state.store.update_mailbox(&mailbox).await.map_err(api)?;
    Ok(back(if mailbox.active { "/admin/mail?done=switched+on" } else { "/admin/mail?done=switched+off" }))
}

/// retry / discard a quarantined message.
pub async fn inbound_action(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<crate::login::CsrfForm>,
) -> Result<Response, UiError> {
    viewer.check_csrf(&f.csrf)?;
    mail_admin(&viewer)?;
    match action.as_str() {
        "retry" => {
            let outcome = mail_api::retry(&state, &id).await?;
            Ok(back(match outcome {
                ferrodesk_mail::ingest::Ingested::Quarantined { .. } => "/admin/mail?done=retried+(still+quarantined)",
                _ => "/admin/mail?done=retried+and+processed",
            }))
        }
        "discard" => {
            mail_api::discard(&state, &id).await?;
            Ok(back("/admin/mail?done=discarded"))
        }
        _ => Err(ApiError::not_found().into()),
    }
}
