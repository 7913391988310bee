//! How the desk is organised: organisations, support groups and their members, the category
//! tree, and instance settings (priority matrix, visibility).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::custom_field::{CustomFieldDef, FieldKind};
use ferrodesk_core::ids::{CategoryId, CustomFieldId, GroupId, OrganisationId, UserId};
use ferrodesk_core::mail::{MailTrust, SenderPolicy};
use ferrodesk_core::priority::PriorityMatrix;
use ferrodesk_core::ticket::SupportLevel;
use ferrodesk_core::ticket::TicketType;
use ferrodesk_core::user::validate_name;
use ferrodesk_store::{Category, Group, Organisation, Settings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, parse_id};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::{CategoryView, CustomFieldView, GroupView, OrganisationView, Page, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organisation, list_organisations))
        .routes(routes!(create_group, list_groups))
        .routes(routes!(add_member, list_members))
        .routes(routes!(remove_member))
        .routes(routes!(create_category, list_categories))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(create_custom_field, list_custom_fields))
        .routes(routes!(update_organisation))
        .routes(routes!(update_group))
        .routes(routes!(update_category))
        .routes(routes!(update_custom_field))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisation {
    name: String,
    /// Members may see each other's tickets.
    #[serde(default)]
    shares_tickets: bool,
}

/// Create an organisation (department or customer). Admins only.
#[utoipa::path(post, path = "/organisations", tag = "directory", request_body = CreateOrganisation, responses((status = 201, body = OrganisationView)))]
async fn create_organisation(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateOrganisation>,
) -> Result<(StatusCode, Json<OrganisationView>), ApiError> {
    authorise(&actor, Resource::Config, Action::Create)?;
    let org = Organisation {
        id: OrganisationId::generate(),
        name: validate_name("name", &body.name)?,
        shares_tickets: body.shares_tickets,
        created_at: state.now(),
    };
    state.store.create_organisation(&org).await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// List organisations (staff only).
#[utoipa::path(get, path = "/organisations", tag = "directory", responses((status = 200, body = Page<OrganisationView>)))]
async fn list_organisations(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Page<OrganisationView>>, ApiError> {
    if !actor.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    Ok(page(state.store.list_organisations().await?.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    name: String,
    #[serde(default = "default_level")]
    support_level: SupportLevel,
}

fn default_level() -> SupportLevel {
    SupportLevel::L1
}

/// Create a support group. Admins only.
#[utoipa::path(post, path = "/groups", tag = "directory", request_body = CreateGroup, responses((status = 201, body = GroupView)))]
async fn create_group(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    authorise(&actor, Resource::Config, Action::Create)?;
    let group = Group {
        id: GroupId::generate(),
        name: validate_name("name", &body.name)?,
        support_level: body.support_level,
        created_at: state.now(),
    };
    state.store.create_group(&group).await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// List support groups.
#[utoipa::path(get, path = "/groups", tag = "directory", responses((status = 200, body = Page<GroupView>)))]
async fn list_groups(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Page<GroupView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(page(state.store.list_groups().await?.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    user_id: UserId,
}

/// Add a member of staff to a group. Admins, or supervisors of that group.
#[utoipa::path(post, path = "/groups/{id}/members", tag = "directory", request_body = AddMember, params(("id" = String, Path)), responses((status = 204)))]
async fn add_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<StatusCode, ApiError> {
    let group: GroupId = parse_id(&id)?;
    state.store.group(group).await?.ok_or_else(ApiError::not_found)?;
    authorise(&actor, Resource::GroupMembers(group), Action::Update)?;
    match state.store.user(body.user_id).await? {
        Some(u) if u.role.is_staff() => {}
        Some(_) => {
            return Err(ApiError::invalid("user_id", "only agents, supervisors and admins can be group members"));
        }
        None => return Err(ApiError::invalid("user_id", "no such user")),
    }
    state.store.add_group_member(group, body.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of a group (staff only).
#[utoipa::path(get, path = "/groups/{id}/members", tag = "directory", params(("id" = String, Path)), responses((status = 200, body = Page<UserId>)))]
async fn list_members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Page<UserId>>, ApiError> {
    let group: GroupId = parse_id(&id)?;
    authorise(&actor, Resource::GroupMembers(group), Action::Read)?;
    state.store.group(group).await?.ok_or_else(ApiError::not_found)?;
    Ok(page(state.store.group_members(group).await?))
}

/// Remove a member from a group; their view of its tickets ends at once.
#[utoipa::path(delete, path = "/groups/{id}/members/{user_id}", tag = "directory", params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 204)))]
async fn remove_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let group: GroupId = parse_id(&id)?;
    let user: UserId = parse_id(&user_id)?;
    authorise(&actor, Resource::GroupMembers(group), Action::Update)?;
    if state.store.remove_group_member(group, user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    name: String,
    parent_id: Option<CategoryId>,
}

/// Create a category, optionally under a parent. Admins only.
#[utoipa::path(post, path = "/categories", tag = "directory", request_body = CreateCategory, responses((status = 201, body = CategoryView)))]
async fn create_category(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateCategory>,
) -> Result<(StatusCode, Json<CategoryView>), ApiError> {
    authorise(&actor, Resource::Config, Action::Create)?;
    let category = Category {
        id: CategoryId::generate(),
        parent_id: body.parent_id,
        name: validate_name("name", &body.name)?,
        created_at: state.now(),
    };
    state.store.create_category(&category).await?;
    Ok((StatusCode::CREATED, Json(category.into())))
}

/// The category tree as a flat list (each with its parent).
#[utoipa::path(get, path = "/categories", tag = "directory", responses((status = 200, body = Page<CategoryView>)))]
async fn list_categories(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Page<CategoryView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(page(state.store.list_categories().await?.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsView {
    /// Rows: impact low, medium, high; columns: urgency low, medium, high.
    priority_matrix: PriorityMatrix,
    /// Agents see every ticket, not only their groups'.
    agents_see_all: bool,
    /// Which sender domains may open tickets by mail (deny wins; a non-empty allow list admits
    /// only its domains and their subdomains). Omitted: unchanged.
    #[serde(default)]
    mail_senders: Option<SenderPolicy>,
    /// The authserv-ids of the mail servers whose `Authentication-Results` (DMARC, DKIM) are
    /// believed when judging who sent a message. Omitted: unchanged.
    #[serde(default)]
    mail_trust: Option<MailTrust>,
    /// Mail notifications switched off: `received`, `agent_reply`, `requester_reply`,
    /// `pending_on_you`, `resolved`, `assigned`. Omitted: unchanged.
    #[serde(default)]
    disabled_notifications: Option<Vec<String>>,
}

/// Instance settings (staff only).
#[utoipa::path(get, path = "/settings", tag = "directory", responses((status = 200, body = SettingsView)))]
async fn get_settings(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<SettingsView>, ApiError> {
    if !actor.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    let s = state.store.settings().await?;
    Ok(Json(SettingsView {
        priority_matrix: s.priority_matrix,
        agents_see_all: s.agents_see_all,
        mail_senders: Some(s.mail_senders),
        mail_trust: Some(s.mail_trust),
        disabled_notifications: Some(s.disabled_notifications),
    }))
}

/// Replace instance settings. Admins only.
#[utoipa::path(put, path = "/settings", tag = "directory", request_body = SettingsView, responses((status = 200, body = SettingsView)))]
async fn put_settings(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<SettingsView>,
) -> Result<Json<SettingsView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    let current = state.store.settings().await?;
    let mail_senders = match body.mail_senders {
        Some(p) => p.validated()?,
        None => current.mail_senders,
    };
    let mail_trust = match body.mail_trust {
        Some(t) => t.validated()?,
        None => current.mail_trust,
    };
    let disabled_notifications = match body.disabled_notifications {
        Some(d) => ferrodesk_mail::outbound::validate_disabled(d)?,
        None => current.disabled_notifications,
    };
    let settings = Settings {
        priority_matrix: body.priority_matrix.clone(),
        agents_see_all: body.agents_see_all,
        mail_senders,
        mail_trust,
        disabled_notifications,
    };
    state.store.save_settings(&settings).await?;
    Ok(Json(SettingsView {
        priority_matrix: settings.priority_matrix,
        agents_see_all: settings.agents_see_all,
        mail_senders: Some(settings.mail_senders),
        mail_trust: Some(settings.mail_trust),
        disabled_notifications: Some(settings.disabled_notifications),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomField {
    /// Stable key: a-z, 0-9 and _, starting with a letter.
    key: String,
    label: String,
    kind: FieldKind,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    required: bool,
    /// Ticket types it applies to; empty or absent means all.
    #[serde(default)]
    ticket_types: Vec<TicketType>,
}

/// Define a custom ticket field. Admins only.
#[utoipa::path(post, path = "/custom-fields", tag = "directory", request_body = CreateCustomField, responses((status = 201, body = CustomFieldView)))]
async fn create_custom_field(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateCustomField>,
) -> Result<(StatusCode, Json<CustomFieldView>), ApiError> {
    authorise(&actor, Resource::Config, Action::Create)?;
    let def = CustomFieldDef {
        id: CustomFieldId::generate(),
        key: body.key,
        label: validate_name("label", &body.label)?,
        kind: body.kind,
        options: body.options.into_iter().map(|o| o.trim().to_owned()).collect(),
        required: body.required,
        ticket_types: body.ticket_types,
    };
    def.validate()?;
    state.store.create_custom_field(&def).await?;
    Ok((StatusCode::CREATED, Json(def.into())))
}

/// Custom field definitions (everyone: the portal shows the fields of a request type).
#[utoipa::path(get, path = "/custom-fields", tag = "directory", responses((status = 200, body = Page<CustomFieldView>)))]
async fn list_custom_fields(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Page<CustomFieldView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(page(state.store.custom_fields().await?.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisation {
    name: Option<String>,
    shares_tickets: Option<bool>,
}

/// Rename an organisation or change whether its members see each other's tickets. Admins only.
#[utoipa::path(patch, path = "/organisations/{id}", tag = "directory", request_body = UpdateOrganisation, params(("id" = String, Path)),
    responses((status = 200, body = OrganisationView)))]
async fn update_organisation(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrganisation>,
) -> Result<Json<OrganisationView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    let id: OrganisationId = parse_id(&id)?;
    let mut org =
        state.store.list_organisations().await?.into_iter().find(|o| o.id == id).ok_or_else(ApiError::not_found)?;
    if let Some(n) = body.name {
        org.name = validate_name("name", &n)?;
    }
    if let Some(s) = body.shares_tickets {
        org.shares_tickets = s;
    }
    state.store.update_organisation(&org).await?;
    Ok(Json(org.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    name: Option<String>,
    support_level: Option<SupportLevel>,
}

/// Rename a group or change its support level. Admins only.
#[utoipa::path(patch, path = "/groups/{id}", tag = "directory", request_body = UpdateGroup, params(("id" = String, Path)),
    responses((status = 200, body = GroupView)))]
async fn update_group(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> Result<Json<GroupView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    let id: GroupId = parse_id(&id)?;
    let mut group = state.store.group(id).await?.ok_or_else(ApiError::not_found)?;
    if let Some(n) = body.name {
        group.name = validate_name("name", &n)?;
    }
    if let Some(l) = body.support_level {
        group.support_level = l;
    }
    state.store.update_group(&group).await?;
    Ok(Json(group.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    name: Option<String>,
    /// A new parent; `null` makes it a top-level category.
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<CategoryId>)]
    parent_id: Option<Option<CategoryId>>,
}

/// Rename or move a category in the tree (never under itself). Admins only.
#[utoipa::path(patch, path = "/categories/{id}", tag = "directory", request_body = UpdateCategory, params(("id" = String, Path)),
    responses((status = 200, body = CategoryView)))]
async fn update_category(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateCategory>,
) -> Result<Json<CategoryView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    let id: CategoryId = parse_id(&id)?;
    let all = state.store.list_categories().await?;
    let mut category = all.iter().find(|c| c.id == id).cloned().ok_or_else(ApiError::not_found)?;
    if let Some(n) = body.name {
        category.name = validate_name("name", &n)?;
    }
    if let Some(parent) = body.parent_id {
        if let Some(p) = parent
            && !all.iter().any(|c| c.id == p)
        {
            return Err(ApiError::invalid("parent_id", "no such category"));
        }
        ferrodesk_core::category::check_reparent(id, parent, |c| {
            all.iter().find(|x| x.id == c).and_then(|x| x.parent_id)
        })?;
        category.parent_id = parent;
    }
    state.store.update_category(&category).await?;
    Ok(Json(category.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomField {
    label: Option<String>,
    options: Option<Vec<String>>,
    required: Option<bool>,
    ticket_types: Option<Vec<TicketType>>,
}

/// Change a custom field's label, options, requiredness or ticket types (its key and kind stay).
/// Admins only.
#[utoipa::path(patch, path = "/custom-fields/{id}", tag = "directory", request_body = UpdateCustomField, params(("id" = String, Path)),
    responses((status = 200, body = CustomFieldView)))]
async fn update_custom_field(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateCustomField>,
) -> Result<Json<CustomFieldView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    let id: CustomFieldId = parse_id(&id)?;
    let mut def =
        state.store.custom_fields().await?.into_iter().find(|d| d.id == id).ok_or_else(ApiError::not_found)?;
    if let Some(l) = body.label {
        def.label = validate_name("label", &l)?;
    }
    if let Some(o) = body.options {
        def.options = o.into_iter().map(|o| o.trim().to_owned()).collect();
    }
    if let Some(r) = body.required {
        def.required = r;
    }
    if let Some(t) = body.ticket_types {
        def.ticket_types = t;
    }
    def.validate()?;
    state.store.update_custom_field(&def).await?;
    Ok(Json(def.into()))
}
