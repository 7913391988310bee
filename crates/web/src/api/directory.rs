//! How the desk is organised: organisations, support groups and their members, the category
//! tree, and instance settings (priority matrix, visibility).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::custom_field::{CustomFieldDef, FieldKind};
use ferrodesk_core::ids::{CategoryId, CustomFieldId, GroupId, OrganisationId, UserId};
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
use crate::views::{CategoryView, CustomFieldView, GroupView, OrganisationView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organisation, list_organisations))
        .routes(routes!(create_group, list_groups))
        .routes(routes!(add_member, list_members))
        .routes(routes!(remove_member))
        .routes(routes!(create_category, list_categories))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(create_custom_field, list_custom_fields))
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
#[utoipa::path(get, path = "/organisations", tag = "directory", responses((status = 200, body = Vec<OrganisationView>)))]
async fn list_organisations(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<OrganisationView>>, ApiError> {
    if !actor.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    Ok(Json(state.store.list_organisations().await?.into_iter().map(Into::into).collect()))
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
#[utoipa::path(get, path = "/groups", tag = "directory", responses((status = 200, body = Vec<GroupView>)))]
async fn list_groups(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Vec<GroupView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(Json(state.store.list_groups().await?.into_iter().map(Into::into).collect()))
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
#[utoipa::path(get, path = "/groups/{id}/members", tag = "directory", params(("id" = String, Path)), responses((status = 200, body = Vec<UserId>)))]
async fn list_members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<UserId>>, ApiError> {
    let group: GroupId = parse_id(&id)?;
    authorise(&actor, Resource::GroupMembers(group), Action::Read)?;
    state.store.group(group).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(state.store.group_members(group).await?))
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
#[utoipa::path(get, path = "/categories", tag = "directory", responses((status = 200, body = Vec<CategoryView>)))]
async fn list_categories(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<CategoryView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(Json(state.store.list_categories().await?.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsView {
    /// Rows: impact low, medium, high; columns: urgency low, medium, high.
    priority_matrix: PriorityMatrix,
    /// Agents see every ticket, not only their groups'.
    agents_see_all: bool,
}

/// Instance settings (staff only).
#[utoipa::path(get, path = "/settings", tag = "directory", responses((status = 200, body = SettingsView)))]
async fn get_settings(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<SettingsView>, ApiError> {
    if !actor.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    let s = state.store.settings().await?;
    Ok(Json(SettingsView { priority_matrix: s.priority_matrix, agents_see_all: s.agents_see_all }))
}

/// Replace instance settings. Admins only.
#[utoipa::path(put, path = "/settings", tag = "directory", request_body = SettingsView, responses((status = 200, body = SettingsView)))]
async fn put_settings(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<SettingsView>,
) -> Result<Json<SettingsView>, ApiError> {
    authorise(&actor, Resource::Config, Action::Update)?;
    state
        .store
        .save_settings(&Settings { priority_matrix: body.priority_matrix.clone(), agents_see_all: body.agents_see_all })
        .await?;
    Ok(Json(body))
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
#[utoipa::path(get, path = "/custom-fields", tag = "directory", responses((status = 200, body = Vec<CustomFieldView>)))]
async fn list_custom_fields(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<CustomFieldView>>, ApiError> {
    authorise(&actor, Resource::Config, Action::Read)?;
    Ok(Json(state.store.custom_fields().await?.into_iter().map(Into::into).collect()))
}
