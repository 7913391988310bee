//! Two `ferrodesk serve` processes on one PostgreSQL database, as a scaled-out deployment runs
//! them behind a load balancer: a session made on one works on the other, concurrent edits
//! through both lose nothing, a viewer on one sees changes made through the other, and
//! background jobs (queued mail) run exactly once although both nodes run the job worker.

use std::time::Duration;

use serde_json::{Value, json};

use crate::faults::{Server, admin_token};
use crate::helpers::{Backend, fresh_database, get_json, post_json, postgres_skipped, set_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_sessions_edits_and_live_updates() {
    if postgres_skipped() {
        return;
    }
    let (url, _dir) = fresh_database(Backend::Postgres).await;
    let token = admin_token(&url);
    let nodes = [Server::start(&url), Server::start(&url)];
    let (a, b) = (&nodes[0].base, &nodes[1].base);
    let http = reqwest::Client::new();

    // A session made on node A is valid on node B (sessions live in the database).
    let login = http
        .post(format!("{a}/api/v1/auth/login"))
        .json(&json!({"email": "ops@example.org", "password": "a long enough password"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cookie = set_cookie(login.headers(), "__Host-fd_session");
    assert!(!cookie.is_empty());
    let me: Value = http
        .get(format!("{b}/api/v1/users/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(me["email"], "ops@example.org", "node B knows node A's session");

    let created: Value =
        post_json(&http, format!("{a}/api/v1/tickets"), &token, &json!({"subject": "VPN drops every hour"})).await;
    let number = created["number"].as_i64().unwrap_or_default();

    // A viewer on node B; the change is made through node A.
    let mut stream = http
        .get(format!("{b}/desk/tickets/{number}/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.status().as_u16(), 200);
    let changed = http
        .post(format!("{a}/api/v1/tickets/{number}/comments"))
        .bearer_auth(&token)
        .json(&json!({"body": "Looking into it"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changed.status().as_u16(), 201);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: changed") {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("no live update on node B for a change on node A: {other:?} after {seen:?}"),
        }
    }
    assert!(seen.contains("data: 2"), "the new version is announced: {seen:?}");

    // Agents editing one ticket through both nodes: each accepted edit recorded, stale ones refused.
    let mut agents = Vec::new();
    for i in 0..8 {
        let (http, base, token) = (http.clone(), nodes[i % 2].base.clone(), token.clone());
        agents.push(tokio::spawn(async move {
            let mut accepted = 0;
            for round in 0..8 {
                let got = http.get(format!("{base}/api/v1/tickets/{number}")).bearer_auth(&token).send().await;
                let Ok(got) = got else { continue };
                let etag = got.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("\"0\"").to_owned();
                let patched = http
                    .patch(format!("{base}/api/v1/tickets/{number}"))
                    .bearer_auth(&token)
                    .header("if-match", etag)
                    .json(&json!({"subject": format!("Edit {i}.{round}")}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                match patched.status().as_u16() {
                    200 => accepted += 1,
                    412 => {}
                    other => panic!("edit answered {other}: {}", patched.text().await.unwrap_or_default()),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for agent in agents {
        accepted += agent.await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(accepted >= 1);
    let history: Value = get_json(&http, format!("{b}/api/v1/tickets/{number}/history?limit=1000"), &token).await;
    let edits = history["items"].as_array().map(|h| h.iter().filter(|e| e["field"] == "subject").count());
    assert_eq!(edits, Some(accepted), "every accepted edit on either node is in the history, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_queued_mail_exactly_once() {
    if postgres_skipped() {
        return;
    }
    let (url, _dir) = fresh_database(Backend::Postgres).await;
    let token = admin_token(&url);
    crate::faults::cli(&url, &["mailbox", "add", "support", "--address", "help@desk.example"], None);
    crate::faults::cli(
        &url,
        &["user", "create", "--email", "rita@customer.example", "--name", "Rita", "--role", "requester"],
        None,
    );
    let smtp = crate::mail::SmtpCapture::start();
    let smtp_url = smtp.url();
    let env = [("FERRODESK_SMTP_URL", smtp_url.as_str()), ("FERRODESK_SECRET_KEY", crate::helpers::TEST_SECRET_KEY)];
    let nodes = [Server::start_with(&url, &env), Server::start_with(&url, &env)];
    let http = reqwest::Client::new();
    let rita: Value = get_json(&http, format!("{}/api/v1/users?q=rita", nodes[0].base), &token).await;
    let rita = rita["items"][0]["id"].clone();
    let ticket: Value = post_json(
        &http,
        format!("{}/api/v1/tickets", nodes[0].base),
        &token,
        &json!({"subject": "Printer queue stuck", "requester_id": rita}),
    )
    .await;
    let id = ticket["id"].as_str().unwrap_or_default().to_owned();
    // Answers through both nodes: each queues one mail to Rita; both nodes' workers claim jobs.
    const ANSWERS: usize = 30;
    for i in 0..ANSWERS {
        let base = &nodes[i % 2].base;
        let r = http
            .post(format!("{base}/api/v1/tickets/{id}/comments"))
            .bearer_auth(&token)
            .json(&json!({"body": format!("Answer number {i}.")}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 201);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while smtp.messages().len() < ANSWERS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a second delivery, were there one, time to arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent: Vec<_> = smtp.messages().iter().map(|m| crate::mail::read(m)).collect();
    let mut answers: Vec<usize> = sent
        .iter()
        .filter_map(|m| m.text.split("Answer number ").nth(1).and_then(|t| t.split('.').next()?.parse().ok()))
        .collect();
    answers.sort_unstable();
    assert_eq!(answers, (0..ANSWERS).collect::<Vec<_>>(), "each answer mailed once, none twice");
    let mut ids: Vec<_> = sent.iter().filter_map(|m| m.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ANSWERS);
}
