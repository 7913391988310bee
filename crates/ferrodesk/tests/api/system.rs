//! Health, readiness and the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(health_readiness_and_openapi, metrics_count_requests_by_route_and_tickets_by_status);

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

async fn metrics_count_requests_by_route_and_tickets_by_status(b: Backend) {
    let app = TestApp::spawn(b).await;
    let t = app.ticket(&app.admin, serde_json::json!({"subject": "Counted"})).await;
    let id = t["id"].as_str().unwrap_or_default();
    app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    app.get("/api/v1/tickets/1", &app.admin).await;
    let (_, agent) = app.user_with_token("agent@example.org", ferrodesk_core::user::Role::Agent).await;
    assert_eq!(app.get("/metrics", "").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/metrics", &agent).await.status, StatusCode::FORBIDDEN);
    let (status, headers, body) = app.download("/metrics", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/plain")));
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("ferrodesk_tickets{status=\"new\"} 1"), "{text}");
    assert!(text.contains("route=\"/api/v1/tickets/{id}\",status=\"200\"} 1"), "templates, not raw paths: {text}");
    assert!(text.contains("route=\"/api/v1/tickets/{id}\",status=\"404\"} 1"), "{text}");
    assert!(!text.contains(id), "no ids in labels");
    assert!(
        text.contains(
            "ferrodesk_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/tickets\",le=\"+Inf\"} 1"
        ),
        "{text}"
    );
    // The ticket moves on: its old status is no longer listed, its new one is.
    let path = format!("/api/v1/tickets/{id}");
    let moved =
        app.call(Method::PATCH, &path, &app.admin, Some(json!({"status": "open"})), &[("if-match", "\"1\"")]).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let (_, _, body) = app.download("/metrics", &app.admin).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("ferrodesk_tickets{status=\"open\"} 1"), "{text}");
    assert!(!text.contains("ferrodesk_tickets{status=\"new\"}"), "{text}");
}
