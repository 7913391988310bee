//! The `ferrodesk` binary as a user runs it: exit codes, messages, migrations, serve, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dual;
use crate::helpers::{Backend, ferrodesk, fresh_database};

dual!(
    user_and_token_commands_then_serve_and_drain_on_sigterm,
    edited_or_newer_migrations_stop_start_up_cases_82_83,
    import_keeps_good_lines_and_reports_bad_ones,
    compact_search_leaves_one_index_segment_and_every_ticket_findable
);

async fn user_and_token_commands_then_serve_and_drain_on_sigterm(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    let ok = ferrodesk(
        &url,
        &["user", "create", "--email", "Ada@Example.org", "--name", "Ada", "--role", "admin", "--password-stdin"],
        Some("a long enough password\n"),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("created admin ada@example.org"), "{}", ok.stdout);
    assert!(!ok.stderr.contains("a long enough password"), "secrets never logged");

    let dup =
        ferrodesk(&url, &["user", "create", "--email", "ada@example.org", "--name", "Ada", "--role", "agent"], None);
    assert_eq!(dup.code, 1);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    let bad = ferrodesk(&url, &["user", "create", "--email", "not-an-address", "--name", "X", "--role", "agent"], None);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("email"), "{}", bad.stderr);
    let weak = ferrodesk(
        &url,
        &["user", "create", "--email", "b@example.org", "--name", "B", "--role", "agent", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(weak.code, 1);
    assert!(weak.stderr.contains("password"), "{}", weak.stderr);
    let role =
        ferrodesk(&url, &["user", "create", "--email", "c@example.org", "--name", "C", "--role", "wizard"], None);
    assert_eq!(role.code, 2, "usage errors exit 2");

    let none = ferrodesk(&url, &["token", "create", "--user", "nobody@example.org"], None);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no user"), "{}", none.stderr);
    let token = ferrodesk(&url, &["token", "create", "--user", "ada@example.org", "--name", "laptop"], None);
    assert_eq!(token.code, 0, "{}", token.stderr);
    let secret = token.stdout.trim().to_owned();
    assert!(secret.starts_with("fdk_"));

    let mut server = Command::new(env!("CARGO_BIN_EXE_ferrodesk"))
        .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
        .env("FERRODESK_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn serve: {e}"));
    let mut line = String::new();
    if let Some(out) = server.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(me["email"], "ada@example.org");

    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ada@example.org", "password": "a long enough password"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cookie = crate::helpers::set_cookie(login.headers(), "__Host-fd_session");
    let login: serde_json::Value = login.json().await.unwrap_or_default();
    assert_eq!(login["user"]["email"], "ada@example.org");

    // A live-update stream stays open across the shutdown: it must not keep the server alive.
    let t: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"subject": "Watched"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let stream = reqwest::Client::new()
        .get(format!("{base}/desk/tickets/{}/events", t["number"]))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));

    // A request in flight when SIGTERM arrives is finished, not cut off.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_owned();
    let body = br#"{"subject": "Sent across a shutdown"}"#;
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "POST /api/v1/tickets HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(&body[..10]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tcp.write_all(&body[10..]).await;
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut reply))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let reply = String::from_utf8_lossy(&reply[..n]).to_string();
    assert!(reply.starts_with("HTTP/1.1 201"), "the in-flight request completes: {reply}");
    drop(tcp);
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = server.try_wait() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = server.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.is_some_and(|s| s.success()), "SIGTERM ends the server cleanly: {status:?}");
    drop(stream);
    let mut log = String::new();
    if let Some(mut err) = server.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut log);
    }
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(!log.contains(&secret), "tokens never logged");
    assert!(!log.contains("a long enough password"), "passwords never logged");
}

/// Runs one SQL statement against the test database, whichever dialect.
pub(crate) async fn tamper(b: Backend, url: &str, sql: &str) {
    match b {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let conn = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
        }
        Backend::Postgres => {
            postgres_client(url).await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

async fn edited_or_newer_migrations_stop_start_up_cases_82_83(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    let first = ferrodesk(&url, &["migrate"], None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(ferrodesk(&url, &["migrate"], None).code, 0);

    tamper(b, &url, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1").await;
    for args in [
        &["migrate"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["user", "create", "--email", "x@example.org", "--name", "X", "--role", "agent"][..],
    ] {
        let r = ferrodesk(&url, args, None);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(r.stderr.contains("0001_core") && r.stderr.contains("changed"), "{args:?}: {}", r.stderr);
    }
    tamper(b, &url, "DELETE FROM schema_migrations WHERE version = 1").await;
    tamper(
        b,
        &url,
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (999, '0999_future', 'x', 0)",
    )
    .await;
    let newer =
        ferrodesk(&url, &["user", "create", "--email", "y@example.org", "--name", "Y", "--role", "agent"], None);
    assert_eq!(newer.code, 1);
    assert!(newer.stderr.contains("0999_future") && newer.stderr.contains("newer"), "{}", newer.stderr);
    // Refused without writing: the user was not created, and migration 1 was not re-applied.
    tamper(b, &url, "DELETE FROM schema_migrations WHERE version = 999").await;
    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let email = ferrodesk_core::user::EmailAddress::parse("y@example.org").unwrap_or_else(|e| panic!("{e}"));
    assert!(store.user_by_email(&email).await.ok().flatten().is_none());
}

async fn import_keeps_good_lines_and_reports_bad_ones(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    assert_eq!(
        ferrodesk(&url, &["user", "create", "--email", "agent@example.org", "--name", "Aldo", "--role", "agent"], None)
            .code,
        0
    );
    let lines = [
        r#"{"subject": "VPN drops", "description": "since monday", "requester": "ann@example.org", "requester_name": "Ann Lee", "organisation": "Finance", "group": "Network L3", "category": "Network", "status": "open", "impact": "high", "urgency": "high", "assignee": "agent@example.org", "tags": ["VPN"], "created_at": "2025-03-01T09:00:00Z", "comments": [{"author": "agent@example.org", "body": "Rebooted the concentrator", "created_at": "2025-03-01T10:00:00Z"}, {"author": "agent@example.org", "body": "vendor ticket 4711", "internal": true}]}"#,
        r#"{"subject": "broken json", "requester": "#,
        r#"{"subject": "Printer", "requester": "bob@example.org", "status": "exploded"}"#,
        "",
        r#"{"subject": "Printer jam", "requester": "bob@example.org", "status": "closed", "created_at": "2025-02-01T08:00:00Z", "updated_at": "2025-02-02T08:00:00Z"}"#,
        r#"{"subject": "Nope", "requester": "ann@example.org", "assignee": "bob@example.org"}"#,
        r#"{"subject": "New laptop", "requester": "ann@example.org", "type": "service_request", "surprise": 1}"#,
        r#"{"subject": "Monitor", "requester": "carl@example.org"}"#,
    ];
    let input = lines.join("\n");
    // Two tickets per batch: batches are read while earlier ones are stored, and still numbered
    // in the order of the file.
    let r = ferrodesk(&url, &["import", "--batch", "2"], Some(&input));
    assert_eq!(r.code, 1, "some lines were skipped: {}", r.stderr);
    assert!(r.stdout.contains("imported 3 tickets with 2 comments"), "{}", r.stdout);
    for (line, why) in [(2, "not a ticket object"), (3, "status"), (6, "not an agent"), (7, "unknown field")] {
        assert!(
            r.stderr.contains(&format!("line {line}: ")) && r.stderr.contains(why),
            "line {line} ({why}): {}",
            r.stderr
        );
    }

    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let all = store
        .list_tickets(
            &ferrodesk_store::TicketQuery {
                sort: ferrodesk_store::TicketSortKey::Number,
                descending: false,
                ..Default::default()
            },
            &ferrodesk_core::access::TicketScope::All,
        )
        .await
        .unwrap_or_default();
    let subjects: Vec<(i64, &str)> = all.iter().map(|t| (t.number.0, t.subject.as_str())).collect();
    assert_eq!(subjects, vec![(1001, "VPN drops"), (1002, "Printer jam"), (1003, "Monitor")]);
    let vpn = &all[0];
    assert_eq!(
        (vpn.status.as_str(), vpn.priority.as_str(), vpn.tags.clone()),
        ("open", "critical", vec!["vpn".to_string()])
    );
    assert_eq!(vpn.created_at.to_string(), "2025-03-01T09:00:00Z");
    assert!(
        vpn.first_response_at.is_some()
            && vpn.organisation_id.is_some()
            && vpn.group_id.is_some()
            && vpn.category_id.is_some()
    );
    let closed = &all[1];
    assert!(closed.closed_at.is_some() && closed.resolved_at.is_some(), "lifecycle timestamps follow the status");
    assert_eq!(
        store.comments(vpn.id, false).await.map(|c| c.len()).unwrap_or(0),
        1,
        "the internal note stays internal"
    );
    let ann = store
        .user_by_email(&ferrodesk_core::user::EmailAddress::parse("ann@example.org").unwrap_or_else(|e| panic!("{e}")))
        .await
        .ok()
        .flatten();
    assert_eq!(ann.map(|(u, _)| (u.name, u.role.as_str())), Some(("Ann Lee".to_string(), "requester")));
    // Imported text is searchable at once, internal notes only for staff.
    let search = |terms: &[&str], scope: ferrodesk_core::access::TicketScope| {
        let q =
            ferrodesk_store::TicketQuery { terms: terms.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let store = store.clone();
        async move { store.list_tickets(&q, &scope).await.map(|v| v.len()).unwrap_or(99) }
    };
    assert_eq!(search(&["concentrator"], ferrodesk_core::access::TicketScope::All).await, 1);
    assert_eq!(search(&["4711"], ferrodesk_core::access::TicketScope::All).await, 1);
    let ann_scope = ferrodesk_core::access::TicketScope::Requester { user_id: vpn.requester_id, organisation_id: None };
    assert_eq!(search(&["4711"], ann_scope).await, 0);

    // A second import numbers on; a clean file exits 0.
    let again = ferrodesk(&url, &["import"], Some(r#"{"subject": "Later", "requester": "ann@example.org"}"#));
    assert_eq!(again.code, 0, "{}", again.stderr);
    let last = store.ticket_by_number(ferrodesk_core::ids::TicketNumber(1004)).await.ok().flatten();
    assert_eq!(last.map(|t| t.subject), Some("Later".into()));
}

/// An import ends with the search index merged into one segment, and `ferrodesk compact-search`
/// does the same later; on both backends every word finds what it found.
async fn compact_search_leaves_one_index_segment_and_every_ticket_findable(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let word = ["printer", "vpn", "laptop", "badge"][i % 4];
            format!(r#"{{"subject": "{word} {i}", "description": "case{i} details", "requester": "ann@example.org"}}"#)
        })
        .collect();
    // One ticket per batch: forty segments before the import's own merge.
    let imported = ferrodesk(&url, &["import", "--batch", "1"], Some(&lines.join("\n")));
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let sqlite = (b == Backend::Sqlite)
        .then(|| rusqlite::Connection::open(url.trim_start_matches("sqlite://")).unwrap_or_else(|e| panic!("{e}")));
    let segments = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(DISTINCT segid) FROM ticket_search_idx", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let counts = || {
        let store = store.clone();
        async move {
            let mut found = Vec::new();
            for terms in [vec!["printer"], vec!["vpn"], vec!["case7"], vec!["badge", "case39"], vec!["nothing"]] {
                let q = ferrodesk_store::TicketQuery {
                    terms: terms.iter().map(|t| (*t).to_owned()).collect(),
                    limit: 100,
                    ..Default::default()
                };
                found.push(store.count_tickets(&q, &ferrodesk_core::access::TicketScope::All).await.unwrap_or(-1));
            }
            found
        }
    };
    assert_eq!(counts().await, vec![10, 10, 1, 1, 0]);
    if let Some(conn) = &sqlite {
        assert_eq!(segments(conn), 1, "the import merged the index");
        // Later writes add segments of their own (one per transaction).
        for n in 0..5 {
            conn.execute(
                "INSERT INTO ticket_search (rowid, subject, description, public_text, internal_text) \
                 VALUES (?1, 'later', '', '', '')",
                [9000 + n],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(segments(conn), 6);
    }

    let compacted = ferrodesk(&url, &["compact-search"], None);
    assert_eq!(compacted.code, 0, "{}", compacted.stderr);
    assert!(compacted.stdout.contains("search index merged"), "{}", compacted.stdout);
    if let Some(conn) = &sqlite {
        assert_eq!(segments(conn), 1);
    }
    assert_eq!(counts().await, vec![10, 10, 1, 1, 0], "the same words find the same tickets");
    // Once merged, there is nothing left to do.
    let again = ferrodesk(&url, &["compact-search"], None);
    assert!(again.stdout.contains("(0 steps"), "{}", again.stdout);
}

/// A fresh PostgreSQL database, migrated, then put back into an older shape by `sql` (an
/// upgrade test's starting point); `None` when PostgreSQL tests are skipped.
async fn postgres_put_back(sql: &str) -> Option<(String, Option<crate::helpers::TempDir>)> {
    if crate::helpers::postgres_skipped() {
        return None;
    }
    let (url, dir) = fresh_database(Backend::Postgres).await;
    assert_eq!(ferrodesk(&url, &["migrate"], None).code, 0);
    tamper(Backend::Postgres, &url, sql).await;
    Some((url, dir))
}

/// A connection to the test's PostgreSQL database, driven in the background.
async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
}

/// The first column of every row `sql` returns on PostgreSQL, as text.
async fn postgres_texts(url: &str, sql: &str) -> Vec<String> {
    let rows = postgres_client(url).await.query(sql, &[]).await.unwrap_or_else(|e| panic!("{e}"));
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

/// A first import into an empty PostgreSQL database sets the ticket tables' secondary indexes
/// aside and builds them once at the end; an import that dies with them aside gets them back at
/// the next start of any command; an import into a database with tickets keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_import_builds_the_ticket_indexes_at_the_end_and_a_crash_loses_none() {
    if crate::helpers::postgres_skipped() {
        return;
    }
    let b = Backend::Postgres;
    let (url, _dir) = fresh_database(b).await;
    assert_eq!(ferrodesk(&url, &["migrate"], None).code, 0);
    const INDEXES: &str = "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
                           AND tablename IN ('tickets', 'comments', 'ticket_history', 'ticket_tags', 'ticket_watchers') \
                           ORDER BY 1";
    const SET_ASIDE: &str = "SELECT name FROM set_aside_indexes";
    let before = postgres_texts(&url, INDEXES).await;
    assert!(before.contains(&"tickets_search".to_owned()) && before.contains(&"comments_ticket".to_owned()));

    let lines = r#"{"subject": "VPN drops", "requester": "ann@example.org", "comments": [{"body": "concentrator rebooted"}]}
{"subject": "Printer jam", "requester": "bob@example.org", "tags": ["printer"]}"#;
    let first = ferrodesk(&url, &["import"], Some(lines));
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("building 15 indexes"), "{}", first.stderr);
    assert_eq!(postgres_texts(&url, INDEXES).await, before, "every index is back");
    assert!(postgres_texts(&url, SET_ASIDE).await.is_empty());
    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let q = ferrodesk_store::TicketQuery { terms: vec!["concentrator".into()], ..Default::default() };
    assert_eq!(store.count_tickets(&q, &ferrodesk_core::access::TicketScope::All).await.unwrap_or(-1), 1);

    // The import died after setting two indexes aside: the next command builds them.
    tamper(
        b,
        &url,
        "INSERT INTO set_aside_indexes (name, definition) SELECT indexname, indexdef FROM pg_indexes
              WHERE schemaname = current_schema() AND indexname IN ('tickets_search', 'comments_ticket');
         DROP INDEX tickets_search; DROP INDEX comments_ticket;",
    )
    .await;
    assert_eq!(postgres_texts(&url, INDEXES).await.len(), before.len() - 2);
    let restarted = ferrodesk(&url, &["migrate"], None);
    assert_eq!(restarted.code, 0, "{}", restarted.stderr);
    assert_eq!(postgres_texts(&url, INDEXES).await, before);
    assert!(postgres_texts(&url, SET_ASIDE).await.is_empty());

    // With tickets in the database the indexes stay while importing.
    let later = ferrodesk(&url, &["import"], Some(r#"{"subject": "Later", "requester": "ann@example.org"}"#));
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert!(!later.stderr.contains("building"), "{}", later.stderr);
    assert_eq!(postgres_texts(&url, INDEXES).await, before);
}

/// Runs `ferrodesk migrate`, then counts the tickets each query's words find for staff and for
/// the requester Ann (user ...0001), as (staff, requester); -1 on a store error.
async fn migrated_search_counts(url: &str, queries: &[&[&str]]) -> Vec<(i64, i64)> {
    let migrated = ferrodesk(url, &["migrate"], None);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    let store = ferrodesk_store::open(url).await.unwrap_or_else(|e| panic!("{e}"));
    let ann = ferrodesk_core::ids::UserId(
        uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000001").unwrap_or_else(|e| panic!("{e}")),
    );
    let requester = ferrodesk_core::access::TicketScope::Requester { user_id: ann, organisation_id: None };
    let mut counts = Vec::new();
    for terms in queries {
        let query = ferrodesk_store::TicketQuery {
            terms: terms.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        };
        let staff = store.count_tickets(&query, &ferrodesk_core::access::TicketScope::All).await.unwrap_or(-1);
        counts.push((staff, store.count_tickets(&query, &requester).await.unwrap_or(-1)));
    }
    counts
}

/// Migration 0016 (SQLite) rebuilds the search index without its copy of the text and without
/// word positions. The database is put back into its 0015 shape (the old FTS5 table with text,
/// no record of 0016) with tickets indexed the old way; `ferrodesk migrate` copies the entries,
/// and the same words find the same tickets: for staff everything, for a requester public text only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lean_search_index_migration_keeps_every_ticket_findable() {
    let b = Backend::Sqlite;
    let (url, _dir) = fresh_database(b).await;
    assert_eq!(ferrodesk(&url, &["migrate"], None).code, 0);
    tamper(
        b,
        &url,
        "DELETE FROM schema_migrations WHERE version = 16;
         DROP TABLE ticket_search;
         CREATE VIRTUAL TABLE ticket_search USING fts5(
             subject, description, public_text, internal_text, tokenize = 'unicode61 remove_diacritics 2');
         INSERT INTO users (id, email, name, role, created_at, updated_at)
              VALUES ('00000000-0000-7000-8000-000000000001', 'ann@example.org', 'Ann', 'requester', 0, 0);
         WITH RECURSIVE n(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < 3)
         INSERT INTO tickets (id, number, ticket_type, subject, description, status, impact, urgency, priority,
                              priority_overridden, support_level, requester_id, channel, tags, watchers,
                              custom_fields, created_at, updated_at, version)
              SELECT '00000000-0000-7000-8000-00000000010' || n, 1000 + n, 'incident', 'Printer ' || n,
                     'toner streaks', 'open', 'low', 'low', 4, 0, 'l1', '00000000-0000-7000-8000-000000000001',
                     'email', '[]', '[]', '{}', 0, 0, 1 FROM n;
         INSERT INTO ticket_search (rowid, subject, description, public_text, internal_text)
              SELECT number, subject, description, 'réponse', 'vendor' || (number - 1000) FROM tickets;",
    )
    .await;
    let found = migrated_search_counts(&url, &[&["toner"], &["printer", "2"], &["reponse"], &["vendor2"]]).await;
    // (staff, requester): the same tokenizer (accents folded); internal words stay staff-only.
    assert_eq!(found, vec![(3, 3), (1, 1), (3, 3), (1, 0)]);
    let conn = rusqlite::Connection::open(url.trim_start_matches("sqlite://")).unwrap_or_else(|e| panic!("{e}"));
    let shape: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'ticket_search'", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(shape.contains("detail = column") && shape.contains("content = ''"), "{shape}");
}

/// Migration 0015 (PostgreSQL) turns the two search vectors into one weighted vector. The
/// database is put back into its 0014 shape (the two columns, their indexes, no record of
/// 0015) with tickets searchable the old way; `ferrodesk migrate` then converts it, and the same
/// words find the same tickets: for staff everything, for a requester public text only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_vector_migration_keeps_every_ticket_findable() {
    let Some((url, _dir)) = postgres_put_back(
        "DELETE FROM schema_migrations WHERE version = 15;
         DROP INDEX tickets_search; ALTER TABLE tickets DROP COLUMN search;
         ALTER TABLE tickets ADD COLUMN search_public TSVECTOR NOT NULL DEFAULT ''::tsvector,
                             ADD COLUMN search_all TSVECTOR NOT NULL DEFAULT ''::tsvector;
         CREATE INDEX tickets_search_public ON tickets USING GIN (search_public);
         CREATE INDEX tickets_search_all ON tickets USING GIN (search_all);
         INSERT INTO users (id, email, name, role, created_at, updated_at)
              VALUES ('00000000-0000-7000-8000-000000000001', 'ann@example.org', 'Ann', 'requester', 0, 0);
         INSERT INTO tickets (id, number, ticket_type, subject, description, status, impact, urgency, priority,
                              priority_overridden, support_level, requester_id, channel, tags, watchers,
                              custom_fields, created_at, updated_at, version, search_public, search_all)
              SELECT ('00000000-0000-7000-8000-00000000010' || n)::uuid, 1000 + n, 'incident', 'Printer ' || n,
                     'toner streaks', 'open', 'low', 'low', 4, false, 'l1', '00000000-0000-7000-8000-000000000001',
                     'email', '[]', '[]', '{}', 0, 0, 1,
                     to_tsvector('simple', 'Printer ' || n || ' toner streaks'),
                     to_tsvector('simple', 'Printer ' || n || ' toner streaks vendor' || n)
                FROM generate_series(1, 3) AS n;",
    )
    .await
    else {
        return;
    };
    let found = migrated_search_counts(&url, &[&["toner"], &["printer", "2"], &["vendor2"]]).await;
    // (staff, requester): words only in the old staff vector stay staff-only.
    assert_eq!(found, vec![(3, 3), (1, 1), (1, 0)]);
}

/// Migration 0021 (PostgreSQL) adds the view counters. The database is put back into its 0020
/// shape (no counters, no record of 0021) with tickets in several groups, statuses and
/// assignees; `ferrodesk migrate` counts them all, and every view count then matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_counter_migration_counts_every_existing_ticket() {
    let Some((url, _dir)) = postgres_put_back(
        "DELETE FROM schema_migrations WHERE version = 21;
         DROP TRIGGER ticket_counts_insert ON tickets; DROP TRIGGER ticket_counts_delete ON tickets;
         DROP TRIGGER ticket_counts_update ON tickets;
         DROP FUNCTION ticket_counts_added_or_removed(); DROP FUNCTION ticket_counts_moved();
         DROP TABLE ticket_counts;
         INSERT INTO users (id, email, name, role, created_at, updated_at) VALUES
             ('00000000-0000-7000-8000-000000000001', 'ann@example.org', 'Ann', 'requester', 0, 0),
             ('00000000-0000-7000-8000-000000000002', 'bo@example.org', 'Bo', 'agent', 0, 0);
         INSERT INTO support_groups (id, name, support_level, created_at)
              VALUES ('00000000-0000-7000-8000-000000000003', 'Network', 'l1', 0);
         INSERT INTO tickets (id, number, ticket_type, subject, description, status, impact, urgency, priority,
                              priority_overridden, support_level, requester_id, channel, tags, watchers,
                              custom_fields, created_at, updated_at, version, group_id, assignee_id)
              SELECT ('00000000-0000-7000-8000-00000000010' || n)::uuid, 1000 + n, 'incident', 'Printer ' || n,
                     'toner streaks', (ARRAY['new', 'new', 'new', 'open', 'open', 'resolved'])[n], 'low', 'low', 4,
                     false, 'l1', '00000000-0000-7000-8000-000000000001', 'email', '[]', '[]', '{}', 0, 0, 1,
                     CASE WHEN n > 3 THEN '00000000-0000-7000-8000-000000000003'::uuid END,
                     CASE WHEN n IN (4, 5) THEN '00000000-0000-7000-8000-000000000002'::uuid END
                FROM generate_series(1, 6) AS n;",
    )
    .await
    else {
        return;
    };
    let migrated = ferrodesk(&url, &["migrate"], None);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let bo = ferrodesk_core::ids::UserId(
        uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000002").unwrap_or_else(|e| panic!("{e}")),
    );
    let network = ferrodesk_core::ids::GroupId(
        uuid::Uuid::parse_str("00000000-0000-7000-8000-000000000003").unwrap_or_else(|e| panic!("{e}")),
    );
    use ferrodesk_core::ticket::Status;
    let views = [
        (vec![Status::New], None, 3),
        (vec![Status::Open], Some(Some(bo)), 2),
        (vec![Status::New, Status::Open], Some(None), 3),
        (vec![Status::Resolved], None, 1),
        (vec![], None, 6),
    ];
    let agent = ferrodesk_core::access::TicketScope::Groups { user_id: bo, group_ids: vec![network] };
    for (statuses, assignee_id, expected) in views {
        let q = ferrodesk_store::TicketQuery { statuses: statuses.clone(), assignee_id, ..Default::default() };
        for scope in [&ferrodesk_core::access::TicketScope::All, &agent] {
            let counted = store.count_tickets(&q, scope).await.unwrap_or(-1);
            assert_eq!(counted, expected, "{statuses:?} {assignee_id:?} {scope:?}");
        }
    }
}
