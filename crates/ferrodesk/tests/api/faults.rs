//! Faults under load (QUALITY-CASES 71 and 75), against the real binary: `ferrodesk serve` and
//! `ferrodesk import` as separate processes on one database, and a server killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::dual;
use crate::helpers::{Backend, ferrodesk, fresh_database, get_json, post_json};

dual!(agents_on_one_ticket_while_an_import_runs_case_71, acknowledged_writes_survive_a_crash_case_75);

/// A `ferrodesk serve` process on 127.0.0.1 and its address.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(url: &str) -> Server {
        Self::start_with(url, &[])
    }

    /// With extra environment (e.g. `FERRODESK_SMTP_URL`).
    pub(crate) fn start_with(url: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrodesk"))
            .args(["--database-url", url, "serve", "--listen", "127.0.0.1:0"])
            .env("FERRODESK_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn serve: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "serve printed {line:?}");
        Server { child, base }
    }

    fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// A command that must succeed; its standard output, trimmed.
pub(crate) fn cli(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    let run = ferrodesk(url, args, stdin);
    assert_eq!(run.code, 0, "ferrodesk {args:?}: {}", run.stderr);
    run.stdout.trim().to_owned()
}

/// An administrator and their token, made with the CLI as an operator would.
pub(crate) fn admin_token(url: &str) -> String {
    cli(
        url,
        &["user", "create", "--email", "ops@example.org", "--name", "Ops", "--role", "admin", "--password-stdin"],
        Some("a long enough password\n"),
    );
    cli(url, &["token", "create", "--user", "ops@example.org"], None)
}

/// Many agents change one ticket and comment on it while `ferrodesk import` writes thousands
/// of tickets into the same database from another process. Nobody sees "database is locked"
/// or any 5xx; a stale edit is refused with 412; every accepted change is in the history.
async fn agents_on_one_ticket_while_an_import_runs_case_71(b: Backend) {
    let (url, dir) = fresh_database(b).await;
    let token = admin_token(&url);
    let server = Server::start(&url);
    let http = reqwest::Client::new();
    let created: Value = post_json(
        &http,
        format!("{}/api/v1/tickets", server.base),
        &token,
        &json!({"subject": "Shared printer on fire"}),
    )
    .await;
    let number = created["number"].as_i64().unwrap_or_default();
    assert!(number > 0, "{created}");

    // The import: 4,000 tickets with comments, in its own process, while the agents work.
    let scratch = crate::helpers::TempDir::new();
    let file = scratch.path.join("tickets.jsonl");
    let mut lines = String::new();
    for i in 0..4000 {
        lines.push_str(
            &json!({
                "subject": format!("Imported {i}"),
                "description": "moved from the old helpdesk",
                "requester": format!("user{}@example.org", i % 50),
                "status": "closed",
                "comments": [{"body": "first"}, {"body": "second"}, {"body": "third"}],
            })
            .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&file, lines).unwrap_or_else(|e| panic!("{e}"));
    let file_arg = file.display().to_string();
    let import = Command::new(env!("CARGO_BIN_EXE_ferrodesk"))
        .args(["--database-url", &url, "import", "--file", &file_arg, "--batch", "500"])
        .env("FERRODESK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn import: {e}"));

    let outcomes = Arc::new(Mutex::new(Vec::<(u16, String, &'static str)>::new()));
    let mut agents = Vec::new();
    for a in 0..8 {
        let (http, base, token, outcomes) = (http.clone(), server.base.clone(), token.clone(), outcomes.clone());
        agents.push(tokio::spawn(async move {
            for round in 0..12 {
                let got = http
                    .get(format!("{base}/api/v1/tickets/{number}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let etag = got.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("\"0\"").to_owned();
                let urgency = ["low", "medium", "high"][(a + round) % 3];
                let patched = http
                    .patch(format!("{base}/api/v1/tickets/{number}"))
                    .bearer_auth(&token)
                    .header("if-match", etag)
                    .json(&json!({"subject": format!("Agent {a} round {round}"), "urgency": urgency}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let status = patched.status().as_u16();
                outcomes.lock().await.push((status, patched.text().await.unwrap_or_default(), "patch"));
                let commented = http
                    .post(format!("{base}/api/v1/tickets/{number}/comments"))
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("note {a}.{round}"), "internal": true}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let status = commented.status().as_u16();
                outcomes.lock().await.push((status, commented.text().await.unwrap_or_default(), "comment"));
            }
        }));
    }
    for agent in agents {
        agent.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let import = import.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(import.status.success(), "import: {}", String::from_utf8_lossy(&import.stderr));

    let outcomes = outcomes.lock().await;
    for (status, body, what) in outcomes.iter() {
        assert!(!body.to_lowercase().contains("locked"), "{what}: {status} {body}");
        match *what {
            "patch" => assert!(*status == 200 || *status == 412, "patch answered {status}: {body}"),
            _ => assert_eq!(*status, 201, "comment answered {status}: {body}"),
        }
    }
    let accepted_patches = outcomes.iter().filter(|(s, _, w)| *w == "patch" && *s == 200).count();
    let comments = outcomes.iter().filter(|(_, _, w)| *w == "comment").count();
    assert!(accepted_patches >= 1, "at least one edit wins");
    let history: Value =
        get_json(&http, format!("{}/api/v1/tickets/{number}/history?limit=1000", server.base), &token).await;
    let subject_changes =
        history["items"].as_array().map(|h| h.iter().filter(|e| e["field"] == "subject").count()).unwrap_or(0);
    assert_eq!(subject_changes, accepted_patches, "every accepted edit, and only those, is in the history");
    let listed: Value =
        get_json(&http, format!("{}/api/v1/tickets/{number}/comments?limit=1000", server.base), &token).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(comments), "every acknowledged comment is stored");
    let all: Value = get_json(&http, format!("{}/api/v1/tickets?status=closed&limit=1", server.base), &token).await;
    assert!(all["items"].as_array().is_some_and(|i| !i.is_empty()), "the import landed");
    drop(dir);
}

/// Clients create tickets and add comments; the server is killed with SIGKILL mid-stream.
/// After a restart every write that was answered 2xx is there, and SQLite's integrity check
/// passes.
async fn acknowledged_writes_survive_a_crash_case_75(b: Backend) {
    let (url, dir) = fresh_database(b).await;
    let token = admin_token(&url);
    let mut server = Server::start(&url);
    let http = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Vec::<(i64, Option<String>)>::new()));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (http, base, token, acknowledged) =
            (http.clone(), server.base.clone(), token.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            let mut last: Option<i64> = None;
            for i in 0..10_000 {
                let sent = match last {
                    Some(n) if i % 2 == 1 => http
                        .post(format!("{base}/api/v1/tickets/{n}/comments"))
                        .bearer_auth(&token)
                        .json(&json!({"body": format!("client {c} comment {i}")}))
                        .send()
                        .await
                        .map(|r| (r, Some(n))),
                    _ => http
                        .post(format!("{base}/api/v1/tickets"))
                        .bearer_auth(&token)
                        .json(&json!({"subject": format!("client {c} ticket {i}")}))
                        .send()
                        .await
                        .map(|r| (r, None)),
                };
                // Once the server is gone, requests fail: the client stops.
                let Ok((response, on)) = sent else { break };
                if response.status().as_u16() != 201 {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else { break };
                match on {
                    Some(n) => acknowledged.lock().await.push((n, body["id"].as_str().map(str::to_owned))),
                    None => {
                        let n = body["number"].as_i64().unwrap_or_default();
                        last = Some(n);
                        acknowledged.lock().await.push((n, None));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill_hard();
    for client in clients {
        let _ = client.await;
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() > 50, "the clients wrote before the crash ({})", acknowledged.len());

    if let Some(path) = url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
        let check: String =
            conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(check, "ok");
    }
    let server = Server::start(&url);
    for (number, comment) in &acknowledged {
        let path = match comment {
            None => format!("{}/api/v1/tickets/{number}", server.base),
            Some(_) => format!("{}/api/v1/tickets/{number}/comments?limit=1000", server.base),
        };
        let found: Value = get_json(&http, path, &token).await;
        match comment {
            None => assert_eq!(found["number"].as_i64(), Some(*number), "ticket #{number} survived: {found}"),
            Some(id) => assert!(
                found["items"].as_array().is_some_and(|c| c.iter().any(|x| x["id"].as_str() == Some(id))),
                "comment {id} on #{number} survived"
            ),
        }
    }
    drop(dir);
}
