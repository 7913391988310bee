//! Merge, links, time entries, custom fields and idempotent creates through the API.

use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    merge_moves_the_conversation_and_closes_the_duplicate,
    links_form_one_level_major_incidents,
    time_entries_add_up,
    custom_fields_are_validated,
    idempotency_keys_make_creates_safe_to_retry
);

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

async fn merge_moves_the_conversation_and_closes_the_duplicate(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (ann, ann_t) = app.user_with_token("ann@example.org", Role::Requester).await;
    let (bob, bob_t) = app.user_with_token("bob@example.org", Role::Requester).await;
    let original = app.ticket(&ann_t, json!({"subject": "Email is down"})).await;
    let dup = app.ticket(&bob_t, json!({"subject": "Cannot send email"})).await;
    app.post(&format!("/api/v1/tickets/{}/comments", id(&dup)), &bob_t, json!({"body": "Outlook says offline"})).await;

    let merged = app
        .post(
            &format!("/api/v1/tickets/{}/merge", id(&dup)),
            &app.admin,
            json!({"into": original["number"].to_string()}),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{:?}", merged.body);
    assert_eq!(merged.id(), id(&original), "answers with the target");
    assert!(
        merged.body["watchers"].as_array().is_some_and(|w| w.contains(&json!(bob))),
        "the duplicate's requester is kept"
    );
    assert_eq!(merged.body["requester_id"], json!(ann));

    let d = app.get(&format!("/api/v1/tickets/{}", id(&dup)), &app.admin).await;
    assert_eq!((d.body["status"].as_str(), d.body["resolution_code"].as_str()), (Some("closed"), Some("merged")));
    assert_eq!(d.body["merged_into"], original["id"]);
    let conv = app.get(&format!("/api/v1/tickets/{}/comments", id(&original)), &app.admin).await;
    assert!(
        conv.body["items"].as_array().into_iter().flatten().any(|c| c["body"] == "Outlook says offline"),
        "comments moved"
    );
    // Bob, now a watcher, sees the surviving ticket and his words in it; search finds it there.
    assert_eq!(app.get(&format!("/api/v1/tickets/{}", id(&original)), &bob_t).await.status, StatusCode::OK);
    let found = app.get("/api/v1/tickets?q=outlook", &app.admin).await;
    assert_eq!(
        found.body["items"].as_array().map(|v| v.iter().filter_map(|t| t["id"].as_str()).collect::<Vec<_>>()),
        Some(vec![original["id"].as_str().unwrap_or_default()])
    );
    let again =
        app.post(&format!("/api/v1/tickets/{}/merge", id(&dup)), &app.admin, json!({"into": id(&original)})).await;
    assert_eq!(again.code(), "ticket_closed");
    let into_self =
        app.post(&format!("/api/v1/tickets/{}/merge", id(&original)), &app.admin, json!({"into": id(&original)})).await;
    assert_eq!(into_self.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn links_form_one_level_major_incidents(b: Backend) {
    let app = TestApp::spawn(b).await;
    let major =
        app.ticket(&app.admin, json!({"subject": "Major: WAN outage", "impact": "high", "urgency": "high"})).await;
    let mut children = Vec::new();
    for i in 0..3 {
        let c = app.ticket(&app.admin, json!({"subject": format!("Site {i} offline")})).await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{}/links", id(&c)),
                &app.admin,
                json!({"ticket": id(&major), "kind": "parent"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        children.push(c);
    }
    let links = app.get(&format!("/api/v1/tickets/{}/links", id(&major)), &app.admin).await;
    let kinds: Vec<&str> =
        links.body["items"].as_array().into_iter().flatten().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["child", "child", "child"]);
    let up = app.get(&format!("/api/v1/tickets/{}/links", id(&children[0])), &app.admin).await;
    assert_eq!(up.body["items"][0]["kind"], "parent");
    assert_eq!(up.body["items"][0]["ticket"]["id"], major["id"]);

    let other = app.ticket(&app.admin, json!({"subject": "Another major"})).await;
    let second_parent = app
        .post(
            &format!("/api/v1/tickets/{}/links", id(&children[0])),
            &app.admin,
            json!({"ticket": id(&other), "kind": "parent"}),
        )
        .await;
    assert_eq!((second_parent.status, second_parent.code()), (StatusCode::CONFLICT, "refused"));
    let nested = app
        .post(
            &format!("/api/v1/tickets/{}/links", id(&other)),
            &app.admin,
            json!({"ticket": id(&children[1]), "kind": "parent"}),
        )
        .await;
    assert_eq!(nested.status, StatusCode::CONFLICT, "a child cannot become a parent");
    let twice = app
        .post(
            &format!("/api/v1/tickets/{}/links", id(&major)),
            &app.admin,
            json!({"ticket": id(&children[2]), "kind": "related"}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "already linked");
    let selfie = app
        .post(
            &format!("/api/v1/tickets/{}/links", id(&major)),
            &app.admin,
            json!({"ticket": id(&major), "kind": "related"}),
        )
        .await;
    assert_eq!(selfie.status, StatusCode::CONFLICT);

    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tickets/{}/links/{}", id(&major), id(&children[2])),
            &app.admin,
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tickets/{}/links/{}", id(&major), id(&children[2])),
            &app.admin,
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let h = app.get(&format!("/api/v1/tickets/{}/history", id(&major)), &app.admin).await;
    assert_eq!(
        h.body["items"].as_array().into_iter().flatten().filter(|e| e["field"] == "link").count(),
        4,
        "three links and one unlink"
    );
}

async fn time_entries_add_up(b: Backend) {
    let app = TestApp::spawn(b).await;
    let t = app.ticket(&app.admin, json!({"subject": "Reimage laptop"})).await;
    let path = format!("/api/v1/tickets/{}/time-entries", id(&t));
    for (minutes, status) in [(30, 201), (45, 201), (0, 422), (1441, 422), (-5, 422)] {
        let r = app.post(&path, &app.admin, json!({"minutes": minutes, "note": "work"})).await;
        assert_eq!(r.status.as_u16(), status, "{minutes}");
    }
    let sheet = app.get(&path, &app.admin).await;
    assert_eq!(sheet.body["total_minutes"], 75);
    assert_eq!(sheet.body["items"].as_array().map(Vec::len), Some(2));
}

async fn custom_fields_are_validated(b: Backend) {
    let app = TestApp::spawn(b).await;
    let os = app
        .post("/api/v1/custom-fields", &app.admin, json!({"key": "os", "label": "Operating system", "kind": "select", "options": ["linux", "windows"], "required": true, "ticket_types": ["incident"]}))
        .await;
    assert_eq!(os.status, StatusCode::CREATED, "{:?}", os.body);
    app.post("/api/v1/custom-fields", &app.admin, json!({"key": "asset_tag", "label": "Asset tag", "kind": "text"}))
        .await;
    let bad =
        app.post("/api/v1/custom-fields", &app.admin, json!({"key": "Bad Key", "label": "x", "kind": "text"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let dup =
        app.post("/api/v1/custom-fields", &app.admin, json!({"key": "os", "label": "again", "kind": "text"})).await;
    assert_eq!(dup.code(), "duplicate");

    let missing = app.post("/api/v1/tickets", &app.admin, json!({"subject": "Crash", "type": "incident"})).await;
    assert_eq!(
        (missing.status, missing.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("custom_fields.os"))
    );
    let wrong =
        app.post("/api/v1/tickets", &app.admin, json!({"subject": "Crash", "custom_fields": {"os": "amiga"}})).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app
        .post(
            "/api/v1/tickets",
            &app.admin,
            json!({"subject": "Crash", "custom_fields": {"os": "linux", "colour": "red"}}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let request =
        app.post("/api/v1/tickets", &app.admin, json!({"subject": "New monitor", "type": "service_request"})).await;
    assert_eq!(request.status, StatusCode::CREATED, "os is only required for incidents");
    let t = app
        .ticket(&app.admin, json!({"subject": "Crash", "custom_fields": {"os": "linux", "asset_tag": "LAP-042"}}))
        .await;
    assert_eq!(t["custom_fields"]["asset_tag"], "LAP-042");

    let path = format!("/api/v1/tickets/{}", id(&t));
    let changed = app.patch(&path, &app.admin, json!({"custom_fields": {"os": "windows", "asset_tag": null}})).await;
    assert_eq!(changed.body["custom_fields"], json!({"os": "windows"}), "null removes a value");
    let cleared = app.patch(&path, &app.admin, json!({"custom_fields": {"os": null}})).await;
    assert_eq!(cleared.status, StatusCode::UNPROCESSABLE_ENTITY, "a required field cannot be cleared");
    let still = app.get(&path, &app.admin).await;
    assert_eq!(still.body["custom_fields"]["os"], "windows");
}

async fn idempotency_keys_make_creates_safe_to_retry(b: Backend) {
    let app = TestApp::spawn(b).await;
    let body = json!({"subject": "Printer on fire"});
    let send = |key: &'static str, body: serde_json::Value| {
        let app = &app;
        async move { app.call(Method::POST, "/api/v1/tickets", &app.admin, Some(body), &[("idempotency-key", key)]).await }
    };
    let first = send("create-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = send("create-1", body.clone()).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.id(), first.id(), "a retry answers with the same ticket");
    assert_eq!(retry.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let other = send("create-1", json!({"subject": "Something else"})).await;
    assert_eq!((other.status, other.code()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    let count = app.get("/api/v1/tickets", &app.admin).await.body["items"].as_array().map(Vec::len);
    assert_eq!(count, Some(1), "one ticket however often it is retried");

    // Concurrent retries of one key still make one ticket.
    let racers: Vec<_> = (0..8).map(|_| send("create-2", json!({"subject": "Race"}))).collect();
    let mut ids = Vec::new();
    for r in racers {
        let reply = r.await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        ids.push(reply.id());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);

    // Keys are per user, and expire after a day.
    let (_, agent) = app.user_with_token("agent@example.org", Role::Agent).await;
    let theirs =
        app.call(Method::POST, "/api/v1/tickets", &agent, Some(body.clone()), &[("idempotency-key", "create-1")]).await;
    assert_ne!(theirs.id(), first.id());
    app.clock.advance(std::time::Duration::from_secs(25 * 3600));
    let later = send("create-1", body.clone()).await;
    assert_ne!(later.id(), first.id(), "an expired key starts afresh");
    let bad = app.call(Method::POST, "/api/v1/tickets", &app.admin, Some(body), &[("idempotency-key", "")]).await;
    assert_eq!(bad.code(), "invalid_idempotency_key");

    // Comments too.
    let path = format!("/api/v1/tickets/{}/comments", first.id());
    let c1 = app
        .call(Method::POST, &path, &app.admin, Some(json!({"body": "on my way"})), &[("idempotency-key", "c-1")])
        .await;
    let c2 = app
        .call(Method::POST, &path, &app.admin, Some(json!({"body": "on my way"})), &[("idempotency-key", "c-1")])
        .await;
    assert_eq!((c1.status, c2.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(c1.id(), c2.id());
    assert_eq!(app.get(&path, &app.admin).await.body["items"].as_array().map(Vec::len), Some(1));
}
