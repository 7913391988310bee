//! People: create, list, read and change user accounts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::ids::{OrganisationId, UserId};
use ferrodesk_core::user::{EmailAddress, Role, User, validate_name, validate_password};
use ferrodesk_store::UserQuery;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, page_limit, parse_id};
use crate::AppState;
use crate::auth::{Auth, Caller, hash_password};
use crate::error::ApiError;
use crate::json::{ApiJson, ApiQuery, double_option};
use crate::views::{Page, UserView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(current_user))
        .routes(routes!(get_user, update_user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    email: String,
    name: String,
    #[serde(default = "default_role")]
    role: Role,
    /// At least 10 characters. Without one the user cannot sign in until a password is set.
    password: Option<String>,
    organisation_id: Option<OrganisationId>,
}

fn default_role() -> Role {
    Role::Requester
}

/// Create a user. Staff may register requesters; only admins create staff accounts.
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::Problem)))]
async fn create_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    authorise(&actor, Resource::Users { role: body.role }, Action::Create)?;
    let user = User {
        id: UserId::generate(),
        email: EmailAddress::parse(&body.email)?,
        name: validate_name("name", &body.name)?,
        role: body.role,
        organisation_id: body.organisation_id,
        active: true,
        created_at: state.now(),
    };
    let hash = match body.password {
        Some(pw) => {
            validate_password(&pw)?;
            Some(hash_password(pw).await?)
        }
        None => None,
    };
    state.store.create_account(&user, hash.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    role: Option<Role>,
    organisation_id: Option<OrganisationId>,
    /// Part of the name or e-mail address.
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// List users (staff only), ordered by e-mail address.
#[utoipa::path(get, path = "/users", tag = "users", params(UserListParams), responses((status = 200, body = Page<UserView>)))]
async fn list_users(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(p): ApiQuery<UserListParams>,
) -> Result<Json<Page<UserView>>, ApiError> {
    authorise(&actor, Resource::Users { role: Role::Requester }, Action::Read)?;
    let limit = page_limit(p.limit)?;
    if p.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::bad_request("invalid_query", "q is at most 200 characters"));
    }
    let query = UserQuery {
        role: p.role,
        staff_only: false,
        organisation_id: p.organisation_id,
        text: p.q,
        after_email: p.cursor,
        limit: limit + 1,
    };
    let mut users = state.store.list_users(&query).await?;
    let more = users.len() > limit as usize;
    users.truncate(limit as usize);
    let next_cursor = if more { users.last().map(|u| u.email.to_string()) } else { None };
    Ok(Json(Page { items: users.into_iter().map(UserView::from).collect(), next_cursor }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/users/me", tag = "users", responses((status = 200, body = UserView)))]
async fn current_user(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<UserView>, ApiError> {
    let user = state.store.user(actor.user_id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(user.into()))
}

/// One user. Requesters may only see themselves.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = String, Path)), responses((status = 200, body = UserView)))]
async fn get_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let id: UserId = parse_id(&id)?;
    authorise(&actor, Resource::User(id), Action::Read)?;
    let user = state.store.user(id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(user.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    /// Admins only.
    role: Option<Role>,
    /// Admins only. Deactivated users' tokens and sessions stop working at once.
    active: Option<bool>,
    /// Admins only.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<OrganisationId>)]
    organisation_id: Option<Option<OrganisationId>>,
}

/// Change a user. People may change their own name, address and password; role, activation
/// and organisation are for admins.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UpdateUser, params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = crate::error::Problem)))]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    let actor = &caller.actor;
    let id: UserId = parse_id(&id)?;
    authorise(actor, Resource::User(id), Action::Update)?;
    if body.role.is_some() || body.active.is_some() || body.organisation_id.is_some() {
        authorise(actor, Resource::User(id), Action::Administer)?;
    }
    let mut user = state.store.user(id).await?.ok_or_else(ApiError::not_found)?;
    if let Some(n) = body.name {
        user.name = validate_name("name", &n)?;
    }
    if let Some(e) = body.email {
        user.email = EmailAddress::parse(&e)?;
    }
    if let Some(r) = body.role {
        user.role = r;
    }
    if let Some(a) = body.active {
        user.active = a;
    }
    if let Some(o) = body.organisation_id {
        user.organisation_id = o;
    }
    if let Some(pw) = body.password {
        validate_password(&pw)?;
        let hash = hash_password(pw).await?;
        state.store.set_password_hash(id, &hash).await?;
        // A new password ends every other session of the account (a thief's included).
        let keep = caller.session.as_ref().filter(|s| s.user_id == id).map(|s| s.id);
        state.store.delete_sessions(id, keep).await?;
    }
    state.store.update_user(&user).await?;
    Ok(Json(user.into()))
}
