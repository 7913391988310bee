//! How the desk is organised: organisations, groups, the category tree, custom fields.

use reqwest::StatusCode;
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(directory_entries_are_created_listed_and_edited, the_category_tree_never_loops);

async fn directory_entries_are_created_listed_and_edited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let org = app.post("/api/v1/organisations", &app.admin, json!({"name": "Finance"})).await;
    assert_eq!(org.body["shares_tickets"], false);
    let renamed = app
        .patch(
            &format!("/api/v1/organisations/{}", org.id()),
            &app.admin,
            json!({"name": "Finance & Controlling", "shares_tickets": true}),
        )
        .await;
    assert_eq!(
        (renamed.body["name"].as_str(), renamed.body["shares_tickets"].as_bool()),
        (Some("Finance & Controlling"), Some(true))
    );
    let listed = app.get("/api/v1/organisations", &app.admin).await;
    assert_eq!(listed.body["items"][0]["name"], "Finance & Controlling");

    let l1 = app.group("Service Desk L1").await;
    let l2 = app.group("Desktop L2").await;
    let g = app.patch(&format!("/api/v1/groups/{l2}"), &app.admin, json!({"support_level": "l2"})).await;
    assert_eq!(g.body["support_level"], "l2");
    let clash = app.patch(&format!("/api/v1/groups/{l2}"), &app.admin, json!({"name": "Service Desk L1"})).await;
    assert_eq!(clash.code(), "duplicate");
    let missing =
        app.patch(&format!("/api/v1/groups/{}", uuid::Uuid::now_v7()), &app.admin, json!({"name": "x"})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let _ = l1;

    let f = app
        .post(
            "/api/v1/custom-fields",
            &app.admin,
            json!({"key": "os", "label": "OS", "kind": "select", "options": ["linux"]}),
        )
        .await;
    let f2 = app
        .patch(
            &format!("/api/v1/custom-fields/{}", f.id()),
            &app.admin,
            json!({"options": ["linux", "windows"], "required": true}),
        )
        .await;
    assert_eq!(f2.body["options"], json!(["linux", "windows"]));
    let emptied = app.patch(&format!("/api/v1/custom-fields/{}", f.id()), &app.admin, json!({"options": []})).await;
    assert_eq!(emptied.status, StatusCode::UNPROCESSABLE_ENTITY, "a select needs options");
    let kind = app.patch(&format!("/api/v1/custom-fields/{}", f.id()), &app.admin, json!({"kind": "text"})).await;
    assert_eq!(kind.status, StatusCode::UNPROCESSABLE_ENTITY, "the kind never changes");
}

async fn the_category_tree_never_loops(b: Backend) {
    let app = TestApp::spawn(b).await;
    let hw = app.post("/api/v1/categories", &app.admin, json!({"name": "Hardware"})).await.id();
    let laptop = app.post("/api/v1/categories", &app.admin, json!({"name": "Laptop", "parent_id": hw})).await.id();
    let battery =
        app.post("/api/v1/categories", &app.admin, json!({"name": "Battery", "parent_id": laptop})).await.id();
    let same = app.post("/api/v1/categories", &app.admin, json!({"name": "Laptop", "parent_id": hw})).await;
    assert_eq!(same.code(), "duplicate", "sibling names are unique");
    let other_branch = app.post("/api/v1/categories", &app.admin, json!({"name": "Laptop"})).await;
    assert_eq!(other_branch.status, StatusCode::CREATED, "the same name under another parent is fine");

    let looped = app.patch(&format!("/api/v1/categories/{hw}"), &app.admin, json!({"parent_id": battery})).await;
    assert_eq!((looped.status, looped.body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("parent_id")));
    let itself = app.patch(&format!("/api/v1/categories/{hw}"), &app.admin, json!({"parent_id": hw})).await;
    assert_eq!(itself.status, StatusCode::UNPROCESSABLE_ENTITY);
    let moved = app.patch(&format!("/api/v1/categories/{battery}"), &app.admin, json!({"parent_id": hw})).await;
    assert_eq!(moved.body["parent_id"], json!(hw));
    let top = app.patch(&format!("/api/v1/categories/{battery}"), &app.admin, json!({"parent_id": null})).await;
    assert_eq!(top.body["parent_id"], json!(null));
    let unknown = app
        .patch(&format!("/api/v1/categories/{battery}"), &app.admin, json!({"parent_id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}
