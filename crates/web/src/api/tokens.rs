//! Personal API tokens: created for oneself, shown once, stored hashed, revocable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::ids::TokenId;
use ferrodesk_core::user::validate_name;
use ferrodesk_store::ApiToken;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, parse_id};
use crate::AppState;
use crate::auth::{Auth, generate_token, hash_token};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::{Page, TokenView, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token, list_tokens)).routes(routes!(revoke_token))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label to recognise the token by, e.g. "monitoring integration".
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: TokenId,
    pub name: String,
    /// The secret. Shown only now; store it safely.
    pub token: String,
}

/// Create a personal API token with the caller's own rights.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = CreatedToken)))]
async fn create_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    authorise(&actor, Resource::Credentials(actor.user_id), Action::Create)?;
    let name = validate_name("name", &body.name)?;
    let secret = generate_token();
    let token = ApiToken {
        id: TokenId::generate(),
        user_id: actor.user_id,
        name: name.clone(),
        created_at: state.now(),
        last_used_at: None,
        revoked_at: None,
    };
    state.store.create_token(&token, &hash_token(&secret)).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { id: token.id, name, token: secret })))
}

/// The caller's tokens (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Page<TokenView>)))]
async fn list_tokens(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Page<TokenView>>, ApiError> {
    let tokens = state.store.list_tokens(actor.user_id).await?;
    Ok(page(tokens.into_iter().map(TokenView::from).collect()))
}

/// Revoke one of the caller's tokens; it stops working at once.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 204)))]
async fn revoke_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: TokenId = parse_id(&id)?;
    if state.store.revoke_token(actor.user_id, id, state.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
