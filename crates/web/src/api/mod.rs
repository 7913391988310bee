//! The REST API under `/api/v1`. Every route is registered through `utoipa_axum::routes!`, so
//! the OpenAPI document cannot miss one (a test checks that no route bypasses it).

mod attachments;
mod directory;
pub mod held_mail;
pub mod mail;
pub mod password_reset;
pub mod sessions;
mod ticket_work;
mod tickets;

pub use tickets::CreateTicket;
mod tokens;
mod users;

use ferrodesk_core::access::{Action, Actor, Decision, Resource, decide};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferrodesk API", description = "IT helpdesk and service desk. Errors are RFC 9457 problem+json with a stable `code`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::Problem, tickets::TicketWithComments))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API router together with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(tickets::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(directory::router())
        .merge(sessions::router())
        .merge(ticket_work::router())
        .merge(attachments::router())
        .merge(mail::router())
        .merge(held_mail::router())
        .merge(password_reset::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}

/// The OpenAPI 3.1 document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().split_for_parts().1
}

/// Enforces a decision of the core's access function.
pub fn authorise(actor: &Actor, resource: Resource<'_>, action: Action) -> Result<(), ApiError> {
    match decide(actor, resource, action) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::NotFound => Err(ApiError::not_found()),
    }
}

/// Parses a path id; anything that is not an id is simply not found.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// A bounded page size: default 50, at most 200.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 200")),
    }
}

/// The `Idempotency-Key` of a create request, with a hash of what was asked, so a retry
/// replays the first result and a different request under the same key is refused.
pub(crate) fn idempotency(
    headers: &axum::http::HeaderMap,
    actor: &Actor,
    route: &str,
    body: &impl serde::Serialize,
) -> Result<Option<ferrodesk_store::Idempotency>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()));
    let Some(key) = key else {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key is 1 to 200 visible ASCII characters",
        ));
    };
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(route.as_bytes());
    hash.update(serde_json::to_vec(body).unwrap_or_default());
    Ok(Some(ferrodesk_store::Idempotency {
        user_id: actor.user_id,
        key: key.to_owned(),
        request_hash: hex::encode(hash.finalize()),
    }))
}

/// The answer to a key already used for a different request.
pub(crate) fn idempotency_reused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was already used for a different request",
    )
}
