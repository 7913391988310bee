//! Health, readiness and the OpenAPI document.

use reqwest::StatusCode;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(health_readiness_and_openapi);

async fn health_readiness_and_openapi(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(app.get("/healthz", "").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", "").await.status, StatusCode::OK);
    let spec = app.get("/api/openapi.json", "").await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", spec.body["openapi"]);
    // Every documented operation is served (no route answers "no such endpoint").
    for (path, ops) in spec.body["paths"].as_object().into_iter().flatten() {
        for (method, _) in ops.as_object().into_iter().flatten() {
            let concrete = path.replace("{id}", "1001").replace("{user_id}", "00000000-0000-0000-0000-000000000000");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap_or(reqwest::Method::GET);
            let r = app.call(m, &concrete, &app.admin, Some(serde_json::json!({})), &[]).await;
            assert_ne!(r.code(), "route_not_found", "{method} {path} is documented but not routed");
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
    let missing = app.get("/api/v1/nothing-here", &app.admin).await;
    assert_eq!(missing.code(), "route_not_found");
}

/// No API route may bypass the OpenAPI router (plain `.route(` calls would be undocumented).
#[test]
fn api_routes_are_registered_only_through_openapi() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/src/api");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains(".route("), "{} registers a route outside utoipa_axum::routes!", entry.path().display());
        checked += 1;
    }
    assert!(checked >= 4, "the API modules were found");
}
