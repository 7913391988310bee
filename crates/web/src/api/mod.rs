//! The REST API under `/api/v1`. Every route is registered through `utoipa_axum::routes!`, so
//! the OpenAPI document cannot miss one (a test checks that no route bypasses it).

mod directory;
pub mod sessions;
mod tickets;
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
    components(schemas(crate::error::Problem))
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
        .merge(sessions::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}

/// The OpenAPI 3.1 document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().split_for_parts().1
}

/// Enforces a decision of the core's access function.
pub(crate) fn authorise(actor: &Actor, resource: Resource<'_>, action: Action) -> Result<(), ApiError> {
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
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 200")),
    }
}
