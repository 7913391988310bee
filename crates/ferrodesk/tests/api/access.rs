//! The access rules over every route: role × route → status, table-driven. The table must name
//! every operation in the OpenAPI document, so a new route cannot ship without its rules.

use std::collections::BTreeSet;

use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    every_route_enforces_roles,
    visibility_follows_groups_and_membership_changes_apply_at_once,
    deactivated_users_lose_access_at_once,
    invisible_and_missing_tickets_answer_identically
);

/// Columns of the table, in order.
const ROLES: [&str; 6] = ["admin", "supervisor", "agent", "other_agent", "requester", "other_requester"];

struct Cell {
    method: Method,
    /// Path with placeholders: {ticket} {user} {group} {member} {token}.
    path: &'static str,
    body: Option<Value>,
    /// What to prepare on the fresh ticket first.
    setup: Setup,
    expect: [u16; 6],
    /// Open to everyone by design (answers without credentials too).
    public: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Nothing,
    /// Resolve the ticket.
    Resolved,
    /// Link {other} to the ticket.
    Linked,
    /// Attach a file to the ticket as {attachment}.
    Attached,
}

fn cell(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 6]) -> Cell {
    Cell { method, path, body, setup: Setup::Nothing, expect, public: false }
}

/// A route open to anyone by design: the same answer with or without credentials.
fn public_cell(method: Method, path: &'static str, body: Value, expect: u16) -> Cell {
    Cell { public: true, ..cell(method, path, Some(body), [expect; 6]) }
}

fn table() -> Vec<Cell> {
    use Method as M;
    let name = || json!({"name": format!("n-{}", uuid::Uuid::now_v7().simple())});
    vec![
        cell(M::GET, "/api/v1/tickets", None, [200, 200, 200, 200, 200, 200]),
        cell(M::POST, "/api/v1/tickets", Some(json!({"subject": "New"})), [201, 201, 201, 201, 201, 201]),
        cell(M::GET, "/api/v1/tickets/{ticket}", None, [200, 200, 200, 404, 200, 404]),
        cell(M::PATCH, "/api/v1/tickets/{ticket}", Some(json!({"urgency": "low"})), [200, 200, 200, 404, 403, 404]),
        cell(M::POST, "/api/v1/tickets/{ticket}/comments", Some(json!({"body": "hi"})), [201, 201, 201, 404, 201, 404]),
        cell(M::GET, "/api/v1/tickets/{ticket}/comments", None, [200, 200, 200, 404, 200, 404]),
        cell(M::GET, "/api/v1/tickets/{ticket}/history", None, [200, 200, 200, 404, 403, 404]),
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/assign",
            Some(json!({"assignee_id": null})),
            [200, 200, 200, 404, 403, 404],
        ),
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/escalate",
            Some(json!({"reason": "needs L2"})),
            [200, 200, 200, 404, 403, 404],
        ),
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/resolve",
            Some(json!({"resolution_note": "fixed"})),
            [200, 200, 200, 404, 403, 404],
        ),
        cell(M::POST, "/api/v1/tickets/{ticket}/close", Some(json!({})), [200, 200, 200, 404, 200, 404]),
        Cell {
            setup: Setup::Resolved,
            ..cell(M::POST, "/api/v1/tickets/{ticket}/reopen", Some(json!({})), [200, 200, 200, 404, 200, 404])
        },
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/merge",
            Some(json!({"into": "{other}"})),
            [200, 200, 200, 404, 403, 404],
        ),
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/links",
            Some(json!({"ticket": "{other}", "kind": "related"})),
            [204, 204, 204, 404, 403, 404],
        ),
        cell(M::GET, "/api/v1/tickets/{ticket}/links", None, [200, 200, 200, 404, 200, 404]),
        Cell {
            setup: Setup::Linked,
            ..cell(M::DELETE, "/api/v1/tickets/{ticket}/links/{other}", None, [204, 204, 204, 404, 403, 404])
        },
        cell(
            M::POST,
            "/api/v1/tickets/{ticket}/time-entries",
            Some(json!({"minutes": 15, "note": "diagnosis"})),
            [201, 201, 201, 404, 403, 404],
        ),
        cell(M::GET, "/api/v1/tickets/{ticket}/time-entries", None, [200, 200, 200, 404, 403, 404]),
        cell(
            M::POST,
            "/api/v1/custom-fields",
            Some(json!({"key": "{key}", "label": "Asset tag", "kind": "text"})),
            [201, 403, 403, 403, 403, 403],
        ),
        cell(M::GET, "/api/v1/custom-fields", None, [200, 200, 200, 200, 200, 200]),
        cell(M::PATCH, "/api/v1/organisations/{org}", Some(json!({"name": "{key}"})), [200, 403, 403, 403, 403, 403]),
        cell(M::PATCH, "/api/v1/groups/{group}", Some(json!({"support_level": "l1"})), [200, 403, 403, 403, 403, 403]),
        cell(M::PATCH, "/api/v1/categories/{category}", Some(json!({"name": "{key}"})), [200, 403, 403, 403, 403, 403]),
        cell(
            M::PATCH,
            "/api/v1/custom-fields/{field}",
            Some(json!({"label": "{key}"})),
            [200, 403, 403, 403, 403, 403],
        ),
        // Sent as a multipart upload by the loop below.
        cell(M::POST, "/api/v1/tickets/{ticket}/attachments", None, [201, 201, 201, 404, 201, 404]),
        cell(M::GET, "/api/v1/tickets/{ticket}/attachments", None, [200, 200, 200, 404, 200, 404]),
        Cell {
            setup: Setup::Attached,
            ..cell(M::GET, "/api/v1/attachments/{attachment}", None, [200, 200, 200, 404, 200, 404])
        },
        cell(
            M::POST,
            "/api/v1/users",
            Some(json!({"email": "{unique}", "name": "New Agent", "role": "agent"})),
            [201, 403, 403, 403, 403, 403],
        ),
        cell(M::GET, "/api/v1/users", None, [200, 200, 200, 200, 403, 403]),
        cell(M::GET, "/api/v1/users/me", None, [200, 200, 200, 200, 200, 200]),
        cell(M::GET, "/api/v1/users/{user}", None, [200, 200, 200, 200, 200, 404]),
        cell(M::PATCH, "/api/v1/users/{user}", Some(json!({"name": "Renamed"})), [200, 403, 403, 403, 200, 404]),
        cell(M::POST, "/api/v1/tokens", Some(json!({"name": "integration"})), [201, 201, 201, 201, 201, 201]),
        cell(M::GET, "/api/v1/tokens", None, [200, 200, 200, 200, 200, 200]),
        cell(M::DELETE, "/api/v1/tokens/{token}", None, [204, 204, 204, 204, 204, 204]),
        cell(M::POST, "/api/v1/organisations", Some(name()), [201, 403, 403, 403, 403, 403]),
        cell(M::GET, "/api/v1/organisations", None, [200, 200, 200, 200, 403, 403]),
        cell(M::POST, "/api/v1/groups", Some(name()), [201, 403, 403, 403, 403, 403]),
        cell(M::GET, "/api/v1/groups", None, [200, 200, 200, 200, 200, 200]),
        cell(
            M::POST,
            "/api/v1/groups/{group}/members",
            Some(json!({"user_id": "{member}"})),
            [204, 204, 403, 403, 403, 403],
        ),
        cell(M::GET, "/api/v1/groups/{group}/members", None, [200, 200, 200, 200, 403, 403]),
        cell(M::DELETE, "/api/v1/groups/{group}/members/{member}", None, [204, 204, 403, 403, 403, 403]),
        cell(M::POST, "/api/v1/categories", Some(name()), [201, 403, 403, 403, 403, 403]),
        cell(M::GET, "/api/v1/categories", None, [200, 200, 200, 200, 200, 200]),
        cell(
            M::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "{unique}", "password": "wrong password"})),
            [401, 401, 401, 401, 401, 401],
        ),
        cell(M::POST, "/api/v1/auth/logout", None, [204, 204, 204, 204, 204, 204]),
        cell(M::GET, "/api/v1/auth/sessions", None, [200, 200, 200, 200, 200, 200]),
        cell(M::DELETE, "/api/v1/auth/sessions", None, [204, 204, 204, 204, 204, 204]),
        cell(M::DELETE, "/api/v1/auth/sessions/{session}", None, [404, 404, 404, 404, 404, 404]),
        cell(M::DELETE, "/api/v1/users/{user}/sessions", None, [204, 403, 403, 403, 403, 404]),
        cell(M::GET, "/api/v1/settings", None, [200, 200, 200, 200, 403, 403]),
        cell(
            M::PUT,
            "/api/v1/settings",
            Some(
                json!({"priority_matrix": {"cells": [["planning","low","medium"],["low","medium","high"],["medium","high","critical"]]}, "agents_see_all": false}),
            ),
            [200, 403, 403, 403, 403, 403],
        ),
        cell(M::POST, "/api/v1/mailboxes", Some(json!({"name": "{key}", "address": "{unique}"})), ADMIN_ONLY_CREATE),
        cell(M::GET, "/api/v1/mailboxes", None, ADMIN_ONLY),
        cell(M::PATCH, "/api/v1/mailboxes/{mailbox}", Some(json!({"active": true})), ADMIN_ONLY),
        // A JSON body is not a message: the admin passes the access check and is told so.
        cell(M::POST, "/api/v1/mail/inbound", Some(json!({})), [415, 403, 403, 403, 403, 403]),
        cell(M::GET, "/api/v1/mail/inbound", None, ADMIN_ONLY),
        cell(M::GET, "/api/v1/mail/inbound/{inbound}", None, ADMIN_ONLY),
        cell(M::GET, "/api/v1/mail/inbound/{inbound}/raw", None, ADMIN_ONLY),
        // The probe message was processed, so there is nothing to retry or discard.
        cell(M::POST, "/api/v1/mail/inbound/{inbound}/retry", None, [409, 403, 403, 403, 403, 403]),
        cell(M::POST, "/api/v1/mail/inbound/{inbound}/discard", None, [409, 403, 403, 403, 403, 403]),
        // Held mail is seen and decided by those who see the ticket's internal notes; the
        // probe message is held on no ticket, so those allowed are told it is not there.
        cell(M::GET, "/api/v1/tickets/{ticket}/held-mail", None, [200, 200, 200, 404, 403, 404]),
        cell(M::POST, "/api/v1/tickets/{ticket}/held-mail/{inbound}/accept", None, [404, 404, 404, 404, 403, 404]),
        cell(M::POST, "/api/v1/tickets/{ticket}/held-mail/{inbound}/discard", None, [404, 404, 404, 404, 403, 404]),
        // Public by design: the same answer for everyone, signed in or not.
        public_cell(M::POST, "/api/v1/auth/password-reset", json!({"email": "{unique}"}), 202),
        public_cell(
            M::POST,
            "/api/v1/auth/password-reset/confirm",
            json!({"token": "not-a-token", "password": "a long enough password"}),
            400,
        ),
    ]
}

const ADMIN_ONLY: [u16; 6] = [200, 403, 403, 403, 403, 403];
const ADMIN_ONLY_CREATE: [u16; 6] = [201, 403, 403, 403, 403, 403];

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn fill_json(v: &Value, vars: &[(&str, String)]) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), fill_json(v, vars))).collect()),
        other => other.clone(),
    }
}

async fn every_route_enforces_roles(b: Backend) {
    let app = TestApp::spawn(b).await;
    let g1 = app.group("Service Desk").await;
    let g2 = app.group("Other Desk").await;
    let (supervisor, supervisor_t) = app.user_with_token("sup@example.org", Role::Supervisor).await;
    let (agent, agent_t) = app.user_with_token("agent@example.org", Role::Agent).await;
    let (other_agent, other_agent_t) = app.user_with_token("agent2@example.org", Role::Agent).await;
    let (requester, requester_t) = app.user_with_token("req@example.org", Role::Requester).await;
    let (_, other_requester_t) = app.user_with_token("req2@example.org", Role::Requester).await;
    app.add_member(&g1, supervisor).await;
    app.add_member(&g1, agent).await;
    app.add_member(&g2, other_agent).await;
    let tokens = [app.admin.clone(), supervisor_t, agent_t, other_agent_t, requester_t, other_requester_t];

    // The table covers exactly the operations the API documents.
    let spec = app.get("/api/openapi.json", "").await.body;
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, ops)| {
            ops.as_object().into_iter().flatten().map(move |(m, _)| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let tabled: BTreeSet<String> = table().iter().map(|c| format!("{} {}", c.method, c.path)).collect();
    // Parameter names differ (the table names what it fills in); compare the shapes.
    let shape = |s: &String| -> String {
        let mut out = String::new();
        let mut inside = false;
        for ch in s.chars() {
            match ch {
                '{' => {
                    inside = true;
                    out.push_str("{}");
                }
                '}' => inside = false,
                c if !inside => out.push(c),
                _ => {}
            }
        }
        out
    };
    let documented: BTreeSet<String> = documented.iter().map(shape).collect();
    let tabled: BTreeSet<String> = tabled.iter().map(shape).collect();
    assert_eq!(documented.len(), table().len(), "one row per operation");
    assert_eq!(tabled, documented, "every documented route has a row of access rules, and no more");

    let org = app.post("/api/v1/organisations", &app.admin, json!({"name": "Probe org"})).await.id();
    let category = app.post("/api/v1/categories", &app.admin, json!({"name": "Probe category"})).await.id();
    let field = app
        .post("/api/v1/custom-fields", &app.admin, json!({"key": "probe", "label": "Probe", "kind": "text"}))
        .await
        .id();
    let mailbox =
        app.post("/api/v1/mailboxes", &app.admin, json!({"name": "probe", "address": "probe@desk.example"})).await.id();
    let delivered = app
        .raw(
            Method::POST,
            "/api/v1/mail/inbound?mailbox=probe",
            &app.admin,
            "message/rfc822",
            b"From: someone@customer.example\r\nSubject: Probe\r\nMessage-ID: <probe@customer.example>\r\n\r\nHello"
                .to_vec(),
        )
        .await;
    assert_eq!(delivered.status, StatusCode::CREATED, "{}", delivered.body);
    let inbound = delivered.body["message"]["id"].as_str().unwrap_or_default().to_owned();
    let mut failures = Vec::new();
    for cell in table() {
        for (i, role) in ROLES.iter().enumerate() {
            // Fresh objects per cell so that one call cannot change the next one's outcome.
            let ticket = app
                .ticket(&app.admin, json!({"subject": "Access probe", "requester_id": requester, "group_id": g1}))
                .await;
            let ticket_id = ticket["id"].as_str().unwrap_or_default().to_owned();
            let other = app
                .ticket(&app.admin, json!({"subject": "Other probe", "requester_id": requester, "group_id": g1}))
                .await;
            let other_id = other["id"].as_str().unwrap_or_default().to_owned();
            let mut attachment_id = String::new();
            match cell.setup {
                Setup::Nothing => {}
                Setup::Attached => {
                    attachment_id =
                        app.upload(&ticket_id, &app.admin, "a.txt", "text/plain", b"hello".to_vec(), &[]).await.id();
                }
                Setup::Resolved => {
                    app.post(
                        &format!("/api/v1/tickets/{ticket_id}/resolve"),
                        &app.admin,
                        json!({"resolution_note": "done"}),
                    )
                    .await;
                }
                Setup::Linked => {
                    let r = app
                        .post(
                            &format!("/api/v1/tickets/{ticket_id}/links"),
                            &app.admin,
                            json!({"ticket": other_id, "kind": "related"}),
                        )
                        .await;
                    assert_eq!(r.status, StatusCode::NO_CONTENT);
                }
            }
            let (member, _) =
                app.user_with_token(&format!("m-{}@example.org", uuid::Uuid::now_v7().simple()), Role::Agent).await;
            if cell.method == Method::DELETE && cell.path.contains("members") {
                app.add_member(&g1, member).await;
            }
            let token_id = app.post("/api/v1/tokens", &tokens[i], json!({"name": "to revoke"})).await.id();
            let vars = [
                ("ticket", ticket_id),
                ("other", other_id),
                ("org", org.clone()),
                ("category", category.clone()),
                ("field", field.clone()),
                ("attachment", attachment_id),
                ("key", format!("k{}", uuid::Uuid::now_v7().simple())),
                ("user", requester.to_string()),
                ("group", g1.clone()),
                ("member", member.to_string()),
                ("token", token_id),
                ("session", uuid::Uuid::now_v7().to_string()),
                ("mailbox", mailbox.clone()),
                ("inbound", inbound.clone()),
                ("unique", format!("u-{}@example.org", uuid::Uuid::now_v7().simple())),
            ];
            let path = fill(cell.path, &vars);
            let body = cell.body.as_ref().map(|b| fill_json(b, &vars));
            let reply = if cell.method == Method::POST && cell.path.ends_with("/attachments") {
                let ticket = path.trim_start_matches("/api/v1/tickets/").trim_end_matches("/attachments");
                app.upload(ticket, &tokens[i], "probe.txt", "text/plain", b"probe".to_vec(), &[]).await
            } else {
                app.call(cell.method.clone(), &path, &tokens[i], body, &[]).await
            };
            if reply.status.as_u16() != cell.expect[i] {
                failures.push(format!(
                    "{} {} as {role}: got {} ({}), expected {}",
                    cell.method, cell.path, reply.status, reply.body, cell.expect[i]
                ));
            }
        }
        // Without credentials, every route answers 401; a public one answers as it does to all.
        let anon = app
            .call(cell.method.clone(), &fill(cell.path, &[("ticket", "1001".into())]), "", cell.body.clone(), &[])
            .await;
        let expected =
            if cell.public { StatusCode::from_u16(cell.expect[0]).ok() } else { Some(StatusCode::UNAUTHORIZED) };
        if Some(anon.status) != expected {
            failures.push(format!("{} {} anonymous: got {}", cell.method, cell.path, anon.status));
        }
    }
    assert!(failures.is_empty(), "access rule violations:\n{}", failures.join("\n"));
}

async fn visibility_follows_groups_and_membership_changes_apply_at_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let g1 = app.group("Desk").await;
    let g2 = app.group("Elsewhere").await;
    let (agent, agent_t) = app.user_with_token("agent@example.org", Role::Agent).await;
    app.add_member(&g1, agent).await;
    let (_, req_t) = app.user_with_token("req@example.org", Role::Requester).await;
    let mine = app.ticket(&app.admin, json!({"subject": "In my group", "group_id": g1})).await;
    app.ticket(&app.admin, json!({"subject": "In another group", "group_id": g2})).await;
    app.ticket(&app.admin, json!({"subject": "Not routed yet"})).await;
    app.ticket(&req_t, json!({"subject": "Requester's own"})).await;

    let subjects = |r: crate::helpers::Reply| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["subject"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        subjects(app.get("/api/v1/tickets", &agent_t).await),
        vec!["In my group", "Not routed yet", "Requester's own"]
    );
    assert_eq!(subjects(app.get("/api/v1/tickets", &req_t).await), vec!["Requester's own"]);
    assert_eq!(subjects(app.get("/api/v1/tickets?q=group", &agent_t).await), vec!["In my group"]);

    // Widening to all by setting.
    let s = app.get("/api/v1/settings", &app.admin).await.body;
    let put = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            &app.admin,
            Some(json!({"priority_matrix": s["priority_matrix"], "agents_see_all": true})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(subjects(app.get("/api/v1/tickets", &agent_t).await).len(), 4);
    app.call(
        Method::PUT,
        "/api/v1/settings",
        &app.admin,
        Some(json!({"priority_matrix": s["priority_matrix"], "agents_see_all": false})),
        &[],
    )
    .await;

    // Removed from the group: the group's ticket disappears on the next request (case 26).
    let path = format!("/api/v1/tickets/{}", mine["id"].as_str().unwrap_or_default());
    assert_eq!(app.get(&path, &agent_t).await.status, StatusCode::OK);
    let del = app.call(Method::DELETE, &format!("/api/v1/groups/{g1}/members/{agent}"), &app.admin, None, &[]).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &agent_t).await.status, StatusCode::NOT_FOUND);
}

async fn deactivated_users_lose_access_at_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (agent, agent_t) = app.user_with_token("leaver@example.org", Role::Agent).await;
    assert_eq!(app.get("/api/v1/users/me", &agent_t).await.status, StatusCode::OK);
    let r = app.patch(&format!("/api/v1/users/{agent}"), &app.admin, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/users/me", &agent_t).await.status,
        StatusCode::UNAUTHORIZED,
        "case 26: token dies with the account"
    );
    app.patch(&format!("/api/v1/users/{agent}"), &app.admin, json!({"active": true})).await;
    assert_eq!(app.get("/api/v1/users/me", &agent_t).await.status, StatusCode::OK);

    // Revoked tokens stop at once; another user's token cannot be revoked by id.
    let mine = app.post("/api/v1/tokens", &agent_t, json!({"name": "ci"})).await;
    let secret = mine.body["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.get("/api/v1/users/me", &secret).await.status, StatusCode::OK);
    let foreign = app.call(Method::DELETE, &format!("/api/v1/tokens/{}", mine.id()), &app.admin, None, &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let revoke = app.call(Method::DELETE, &format!("/api/v1/tokens/{}", mine.id()), &agent_t, None, &[]).await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/users/me", &secret).await.status, StatusCode::UNAUTHORIZED);
    let listed = app.get("/api/v1/tokens", &agent_t).await;
    assert!(
        listed.body["items"].as_array().into_iter().flatten().all(|t| t.get("token").is_none()),
        "secrets are never listed"
    );

    // Mass assignment (case 25): an agent cannot make themself admin; a requester cannot file for someone else.
    let me = app.patch(&format!("/api/v1/users/{agent}"), &agent_t, json!({"role": "admin"})).await;
    assert_eq!(me.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/users/me", &agent_t).await.body["role"], "agent");
    let (_, req_t) = app.user_with_token("req@example.org", Role::Requester).await;
    let other = app.post("/api/v1/tickets", &req_t, json!({"subject": "on behalf", "requester_id": agent})).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other.code(), "field_not_allowed");
    let unknown = app.patch(&format!("/api/v1/users/{agent}"), &agent_t, json!({"is_admin": true})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused, not ignored");
}

async fn invisible_and_missing_tickets_answer_identically(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, ann) = app.user_with_token("ann@example.org", Role::Requester).await;
    let (_, bob) = app.user_with_token("bob@example.org", Role::Requester).await;
    let t = app.ticket(&ann, json!({"subject": "Private matter"})).await;
    let number = t["number"].as_i64().unwrap_or_default();
    for (existing, missing) in [
        (
            format!("/api/v1/tickets/{}", t["id"].as_str().unwrap_or_default()),
            format!("/api/v1/tickets/{}", uuid::Uuid::now_v7()),
        ),
        (format!("/api/v1/tickets/{number}"), format!("/api/v1/tickets/{}", number + 1000)),
        (format!("/api/v1/tickets/{number}/comments"), format!("/api/v1/tickets/{}/comments", number + 1000)),
    ] {
        let a = app.get(&existing, &bob).await;
        let b = app.get(&missing, &bob).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{existing} vs {missing}");
        let mut ha: Vec<_> = a.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "date").collect();
        let mut hb: Vec<_> = b.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "date").collect();
        ha.sort();
        hb.sort();
        assert_eq!(ha, hb);
    }
    let write = app.post(&format!("/api/v1/tickets/{number}/comments"), &bob, json!({"body": "let me in"})).await;
    assert_eq!(write.status, StatusCode::NOT_FOUND);
    let c = app.get(&format!("/api/v1/tickets/{number}/comments"), &ann).await;
    assert_eq!(c.body["items"].as_array().map(Vec::len), Some(0), "nothing was written");
}
