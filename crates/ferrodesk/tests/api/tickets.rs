//! Ticket behaviour through the API: lifecycle, concurrency, conversation, history, listing.

use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    filters_by_people_organisation_category_and_update_time,
    lifecycle_with_optimistic_concurrency,
    conversation_and_internal_notes,
    a_ticket_with_its_conversation_in_one_request,
    listing_filters_search_and_pages,
    actions_record_history
);

async fn lifecycle_with_optimistic_concurrency(b: Backend) {
    let app = TestApp::spawn(b).await;
    let t = app.ticket(&app.admin, json!({"subject": "VPN drops every hour", "description": "Since Monday.", "impact": "high", "urgency": "high"})).await;
    assert_eq!(t["priority"], "critical");
    assert_eq!(t["status"], "new");
    assert_eq!(t["version"], 1);
    assert_eq!(t["channel"], "api");
    let number = t["number"].as_i64().unwrap_or_default();
    assert!(number >= 1001, "{number}");
    let id = t["id"].as_str().unwrap_or_default().to_owned();

    let by_number = app.get(&format!("/api/v1/tickets/{number}"), &app.admin).await;
    assert_eq!(by_number.status, StatusCode::OK);
    assert_eq!(by_number.id(), id);
    assert_eq!(by_number.headers.get("etag").and_then(|v| v.to_str().ok()), Some("\"1\""));
    let second = app.ticket(&app.admin, json!({"subject": "Second"})).await;
    assert_eq!(second["number"].as_i64(), Some(number + 1), "numbers are sequential");

    // A stale If-Match is refused and changes nothing.
    let path = format!("/api/v1/tickets/{id}");
    let ok =
        app.call(Method::PATCH, &path, &app.admin, Some(json!({"urgency": "low"})), &[("if-match", "\"1\"")]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["version"], 2);
    assert_eq!(ok.body["priority"], "medium", "re-derived from high × low");
    let stale = app
        .call(Method::PATCH, &path, &app.admin, Some(json!({"subject": "Overwritten"})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "stale_version");
    assert_eq!(stale.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let now = app.get(&path, &app.admin).await;
    assert_eq!(now.body["subject"], "VPN drops every hour");
    assert_eq!(now.body["version"], 2);

    // Agent override of priority is kept and recorded.
    let o = app.patch(&path, &app.admin, json!({"priority": "critical"})).await;
    assert_eq!(o.body["priority"], "critical");
    assert_eq!(o.body["priority_overridden"], true);

    // Lifecycle: resolve, an invalid transition, reopen, close, then closed is final.
    let r = app.post(&format!("{path}/resolve"), &app.admin, json!({"resolution_note": "Replaced the router"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert!(r.body["resolved_at"].is_string());
    let bad = app.patch(&path, &app.admin, json!({"status": "pending"})).await;
    assert_eq!(bad.status, StatusCode::CONFLICT);
    assert_eq!(bad.code(), "invalid_transition");
    let reopened = app.post(&format!("{path}/reopen"), &app.admin, json!({"reason": "still dropping"})).await;
    assert_eq!(reopened.body["status"], "open");
    let closed = app.post(&format!("{path}/close"), &app.admin, json!({})).await;
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["resolution_code"], "cancelled");
    let after = app.patch(&path, &app.admin, json!({"subject": "x"})).await;
    assert_eq!(after.status, StatusCode::CONFLICT);
    assert_eq!(after.code(), "ticket_closed");
    let reply = app.post(&format!("{path}/comments"), &app.admin, json!({"body": "hello?"})).await;
    assert_eq!(reply.code(), "ticket_closed");
}

async fn conversation_and_internal_notes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, requester) = app.user_with_token("rita@example.org", Role::Requester).await;
    let t = app
        .ticket(&requester, json!({"subject": "Printer jams", "description": "Third floor", "type": "incident"}))
        .await;
    let path = format!("/api/v1/tickets/{}", t["id"].as_str().unwrap_or_default());

    let note = app
        .post(
            &format!("{path}/comments"),
            &app.admin,
            json!({"body": "Vendor contract expired — do not promise a date", "internal": true}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    let reply = app.post(&format!("{path}/comments"), &app.admin, json!({"body": "We are on it."})).await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let staff_view = app.get(&format!("{path}/comments"), &app.admin).await;
    assert_eq!(staff_view.body["items"].as_array().map(Vec::len), Some(2));
    let requester_view = app.get(&format!("{path}/comments"), &requester).await;
    let bodies: Vec<&str> =
        requester_view.body["items"].as_array().into_iter().flatten().filter_map(|c| c["body"].as_str()).collect();
    assert_eq!(bodies, vec!["We are on it."], "internal notes never reach requesters");
    let ticket = app.get(&path, &app.admin).await;
    assert!(ticket.body["first_response_at"].is_string(), "a public reply is the first response");

    // Pending on the requester; their reply brings it back to open.
    let p = app.patch(&path, &app.admin, json!({"status": "pending", "pending_reason": "requester"})).await;
    assert_eq!(p.body["status"], "pending");
    let r = app.post(&format!("{path}/comments"), &requester, json!({"body": "Here is the photo."})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(app.get(&path, &app.admin).await.body["status"], "open");

    // Requesters cannot write notes or see history; an empty comment is refused.
    let n = app.post(&format!("{path}/comments"), &requester, json!({"body": "sneaky", "internal": true})).await;
    assert_eq!(n.status, StatusCode::FORBIDDEN);
    let e = app.post(&format!("{path}/comments"), &app.admin, json!({"body": "   "})).await;
    assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Search: the note's words find the ticket for staff, never for the requester.
    let staff = app.get("/api/v1/tickets?q=vendor%20contract", &app.admin).await;
    assert_eq!(staff.body["items"].as_array().map(Vec::len), Some(1));
    let theirs = app.get("/api/v1/tickets?q=vendor%20contract", &requester).await;
    assert_eq!(theirs.body["items"].as_array().map(Vec::len), Some(0), "internal text is not searchable by requesters");
    let public = app.get("/api/v1/tickets?q=photo", &requester).await;
    assert_eq!(public.body["items"].as_array().map(Vec::len), Some(1));
}

async fn a_ticket_with_its_conversation_in_one_request(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, requester) = app.user_with_token("rita@example.org", Role::Requester).await;
    let (_, other) = app.user_with_token("otto@example.org", Role::Requester).await;
    let t = app.ticket(&requester, json!({"subject": "Laptop fan loud", "description": "Since the update."})).await;
    let number = t["number"].as_i64().unwrap_or_default();
    let path = format!("/api/v1/tickets/{}", t["id"].as_str().unwrap_or_default());
    for (body, internal) in [("Asked the requester for a video", false), ("Warranty ends next week", true)] {
        let c = app.post(&format!("{path}/comments"), &app.admin, json!({"body": body, "internal": internal})).await;
        assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    }
    let reply = app.post(&format!("{path}/comments"), &requester, json!({"body": "Video attached"})).await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let bodies = |r: &crate::helpers::Reply| -> Vec<String> {
        r.body["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["body"].as_str().map(str::to_owned))
            .collect()
    };
    // Staff, by number: the ticket's fields, its version as ETag, every comment oldest first.
    let staff = app.get(&format!("/api/v1/tickets/{number}?include=comments"), &app.admin).await;
    assert_eq!(staff.status, StatusCode::OK, "{:?}", staff.body);
    assert_eq!(staff.body["subject"], "Laptop fan loud");
    let version = staff.body["version"].as_i64().unwrap_or_default();
    assert_eq!(version, 4, "created, then three comments");
    assert_eq!(staff.headers.get("etag").and_then(|v| v.to_str().ok()), Some(format!("\"{version}\"").as_str()));
    assert_eq!(bodies(&staff), ["Asked the requester for a video", "Warranty ends next week", "Video attached"]);
    // The same as the two separate requests give.
    let separate = app.get(&format!("{path}/comments"), &app.admin).await;
    assert_eq!(Some(&separate.body["items"]), Some(&staff.body["comments"]));

    // The requester, by id: no internal note.
    let theirs = app.get(&format!("{path}?include=comments"), &requester).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(
        bodies(&theirs),
        ["Asked the requester for a video", "Video attached"],
        "internal notes never reach requesters"
    );

    // Someone else's ticket is not there at all; a ticket without comments has an empty list.
    let stranger = app.get(&format!("{path}?include=comments"), &other).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert!(stranger.body["comments"].is_null());
    let fresh = app.ticket(&other, json!({"subject": "Mouse", "description": "Broken wheel"})).await;
    let empty = app.get(&format!("/api/v1/tickets/{}?include=comments", fresh["number"]), &other).await;
    assert_eq!(empty.body["comments"], json!([]));
    // Without include: the ticket alone, as before.
    assert!(app.get(&path, &app.admin).await.body.get("comments").is_none());

    // Anything else to include is refused, naming the parameter.
    let bad = app.get(&format!("{path}?include=history"), &app.admin).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", bad.body);
    assert_eq!(bad.body["field"], "include");
    let unknown = app.get(&format!("{path}?expand=comments"), &app.admin).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{:?}", unknown.body);
}

async fn listing_filters_search_and_pages(b: Backend) {
    let app = TestApp::spawn(b).await;
    let g = app.group("Network").await;
    for i in 0..7 {
        let impact = if i % 2 == 0 { "high" } else { "low" };
        let group = if i < 3 { json!(g) } else { json!(null) };
        app.ticket(&app.admin, json!({"subject": format!("Outage {i} wifi"), "impact": impact, "urgency": "high", "group_id": group, "tags": if i == 0 { json!(["VIP"]) } else { json!([]) }})).await;
    }
    app.ticket(&app.admin, json!({"subject": "Keyboard broken", "type": "service_request"})).await;

    let all = app.get("/api/v1/tickets?limit=3&sort=number", &app.admin).await;
    assert_eq!(all.status, StatusCode::OK);
    let mut seen: Vec<i64> =
        all.body["items"].as_array().into_iter().flatten().filter_map(|t| t["number"].as_i64()).collect();
    let mut cursor = all.body["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = app.get(&format!("/api/v1/tickets?limit=3&sort=number&cursor={c}"), &app.admin).await;
        seen.extend(page.body["items"].as_array().into_iter().flatten().filter_map(|t| t["number"].as_i64()));
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, (1001..=1008).collect::<Vec<_>>(), "cursor pages cover every ticket once, in order");
    let wrong_sort = app
        .get(
            &format!("/api/v1/tickets?sort=priority&cursor={}", all.body["next_cursor"].as_str().unwrap_or_default()),
            &app.admin,
        )
        .await;
    assert_eq!(wrong_sort.code(), "invalid_cursor");

    let count = |r: &crate::helpers::Reply| r.body["items"].as_array().map(Vec::len).unwrap_or(usize::MAX);
    assert_eq!(count(&app.get(&format!("/api/v1/tickets?group_id={g}"), &app.admin).await), 3);
    assert_eq!(count(&app.get("/api/v1/tickets?group_id=none", &app.admin).await), 5);
    assert_eq!(count(&app.get("/api/v1/tickets?priority=critical", &app.admin).await), 4);
    assert_eq!(count(&app.get("/api/v1/tickets?priority=critical,medium", &app.admin).await), 8);
    assert_eq!(count(&app.get("/api/v1/tickets?type=service_request", &app.admin).await), 1);
    assert_eq!(count(&app.get("/api/v1/tickets?tag=vip", &app.admin).await), 1);
    assert_eq!(count(&app.get("/api/v1/tickets?q=wifi%20outage", &app.admin).await), 7);
    assert_eq!(count(&app.get("/api/v1/tickets?q=keyboard", &app.admin).await), 1);
    // A changed subject is found by its new words only: the ticket's old index entry is gone.
    let renamed = app.patch("/api/v1/tickets/1008", &app.admin, json!({"subject": "Mouse broken"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(count(&app.get("/api/v1/tickets?q=keyboard", &app.admin).await), 0);
    assert_eq!(count(&app.get("/api/v1/tickets?q=mouse%20broken", &app.admin).await), 1);
    assert_eq!(count(&app.get("/api/v1/tickets?status=new&assignee_id=none", &app.admin).await), 8);
    assert_eq!(
        count(
            &app.get(
                "/api/v1/tickets?created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z",
                &app.admin
            )
            .await
        ),
        8
    );
    assert_eq!(count(&app.get("/api/v1/tickets?created_before=2000-01-01T00:00:00Z", &app.admin).await), 0);
    let by_priority = app.get("/api/v1/tickets?sort=priority", &app.admin).await;
    assert_eq!(by_priority.body["items"][0]["priority"], "critical");
    let desc = app.get("/api/v1/tickets?sort=-priority", &app.admin).await;
    assert_eq!(desc.body["items"][0]["priority"], "medium");
}

async fn actions_record_history(b: Backend) {
    let app = TestApp::spawn(b).await;
    let l2 = app.group("Desktop L2").await;
    let (agent, _) = app.user_with_token("agent@example.org", Role::Agent).await;
    let t = app.ticket(&app.admin, json!({"subject": "Laptop will not boot"})).await;
    let path = format!("/api/v1/tickets/{}", t["id"].as_str().unwrap_or_default());

    let a = app.post(&format!("{path}/assign"), &app.admin, json!({"assignee_id": agent})).await;
    assert_eq!(a.body["assignee_id"], json!(agent));
    assert_eq!(a.body["status"], "open", "assigning a new ticket opens it");
    let no_reason = app.post(&format!("{path}/escalate"), &app.admin, json!({"reason": " "})).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = app
        .post(&format!("{path}/escalate"), &app.admin, json!({"reason": "Needs hardware repair", "group_id": l2}))
        .await;
    assert_eq!(e.body["support_level"], "l2");
    assert_eq!(e.body["group_id"], json!(l2));
    let (requester_user, _) = app.user_with_token("someone@example.org", Role::Requester).await;
    let bad_assignee = app.post(&format!("{path}/assign"), &app.admin, json!({"assignee_id": requester_user})).await;
    assert_eq!(bad_assignee.status, StatusCode::UNPROCESSABLE_ENTITY, "requesters cannot be assignees");
    let unknown_group =
        app.post(&format!("{path}/assign"), &app.admin, json!({"group_id": uuid::Uuid::now_v7()})).await;
    assert_eq!(unknown_group.code(), "unknown_reference");
    app.post(
        &format!("{path}/resolve"),
        &app.admin,
        json!({"resolution_note": "Reseated RAM", "resolution_code": "hardware_fixed"}),
    )
    .await;

    let h = app.get(&format!("{path}/history"), &app.admin).await;
    let fields: Vec<&str> =
        h.body["items"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
    for f in [
        "created",
        "assignee_id",
        "status",
        "support_level",
        "group_id",
        "escalation_reason",
        "resolution_note",
        "resolution_code",
    ] {
        assert!(fields.contains(&f), "history lacks {f}: {fields:?}");
    }
    let reason = h.body["items"].as_array().into_iter().flatten().find(|e| e["field"] == "escalation_reason");
    assert_eq!(reason.map(|e| e["new"].clone()), Some(json!("Needs hardware repair")));
    assert!(h.body["items"].as_array().into_iter().flatten().all(|e| e["actor_id"] == json!(app.admin_id)));
}

async fn filters_by_people_organisation_category_and_update_time(b: Backend) {
    let app = TestApp::spawn(b).await;
    let org = app.post("/api/v1/organisations", &app.admin, json!({"name": "Sales"})).await.id();
    let ann = app
        .post("/api/v1/users", &app.admin, json!({"email": "ann@example.org", "name": "Ann", "organisation_id": org}))
        .await
        .id();
    let bob = app.post("/api/v1/users", &app.admin, json!({"email": "bob@example.org", "name": "Bob"})).await.id();
    let cat = app.post("/api/v1/categories", &app.admin, json!({"name": "Network"})).await.id();
    let a = app.ticket(&app.admin, json!({"subject": "Ann's", "requester_id": ann, "category_id": cat})).await;
    assert_eq!(a["organisation_id"], json!(org), "a ticket belongs to its requester's organisation");
    app.ticket(&app.admin, json!({"subject": "Bob's", "requester_id": bob})).await;
    let subjects = |r: crate::helpers::Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["subject"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(subjects(app.get(&format!("/api/v1/tickets?requester_id={bob}"), &app.admin).await), vec!["Bob's"]);
    assert_eq!(subjects(app.get(&format!("/api/v1/tickets?organisation_id={org}"), &app.admin).await), vec!["Ann's"]);
    assert_eq!(subjects(app.get(&format!("/api/v1/tickets?category_id={cat}"), &app.admin).await), vec!["Ann's"]);
    let mark = jiff::Timestamp::now();
    app.clock.advance(std::time::Duration::from_secs(60));
    app.patch(
        &format!("/api/v1/tickets/{}", a["id"].as_str().unwrap_or_default()),
        &app.admin,
        json!({"urgency": "high"}),
    )
    .await;
    let since = mark.checked_add(jiff::SignedDuration::from_secs(30)).unwrap_or(mark);
    assert_eq!(subjects(app.get(&format!("/api/v1/tickets?updated_after={since}"), &app.admin).await), vec!["Ann's"]);
    assert_eq!(subjects(app.get(&format!("/api/v1/tickets?updated_before={since}"), &app.admin).await), vec!["Bob's"]);
    let sorted = subjects(app.get("/api/v1/tickets?sort=-updated_at", &app.admin).await);
    assert_eq!(sorted, vec!["Ann's", "Bob's"]);
}
