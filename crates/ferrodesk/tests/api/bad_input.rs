//! Bad input and attacks on the API (QUALITY-CASES sections C, E 46, H 61): each gets a clear
//! 4xx problem, the process stays up, and nothing half-written or already stored is lost.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    malformed_bodies_case_30,
    injection_probes_in_sort_filter_and_search_cases_29_61,
    no_hidden_or_header_based_entry_points_cases_27_46,
    cross_origin_requests_get_no_cors_case_31
);

async fn ticket_count(app: &TestApp) -> usize {
    app.get("/api/v1/tickets?limit=200", &app.admin).await.body["items"].as_array().map(Vec::len).unwrap_or(usize::MAX)
}

async fn malformed_bodies_case_30(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.ticket(&app.admin, json!({"subject": "Already stored"})).await;
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", "application/json", b"{\"subject\": ".to_vec(), 400, "malformed_json"),
        ("not JSON at all", "application/json", b"subject=hi".to_vec(), 400, "malformed_json"),
        ("wrong content type", "text/plain", br#"{"subject":"hi"}"#.to_vec(), 415, "unsupported_media_type"),
        ("unknown field", "application/json", br#"{"subject":"hi","is_admin":true}"#.to_vec(), 422, "invalid_body"),
        ("duplicate keys", "application/json", br#"{"subject":"a","subject":"b"}"#.to_vec(), 422, "invalid_body"),
        ("wrong type", "application/json", br#"{"subject":42}"#.to_vec(), 422, "invalid_body"),
        ("unknown enum", "application/json", br#"{"subject":"hi","impact":"extreme"}"#.to_vec(), 422, "invalid_body"),
        (
            "nested 10,000 deep",
            "application/json",
            format!("{{\"subject\":\"x\",\"custom_fields\":{{\"a\":{}1{}}}}}", "[".repeat(10_000), "]".repeat(10_000))
                .into_bytes(),
            400,
            "malformed_json",
        ),
        ("empty subject", "application/json", br#"{"subject":"   "}"#.to_vec(), 422, "validation_failed"),
        ("control characters", "application/json", br#"{"subject":"a\u0007b"}"#.to_vec(), 422, "validation_failed"),
        ("bad tag", "application/json", br#"{"subject":"hi","tags":["<script>"]}"#.to_vec(), 422, "validation_failed"),
    ];
    for (what, ct, body, status, code) in cases {
        let r = app.raw(Method::POST, "/api/v1/tickets", &app.admin, ct, body).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {:?}", r.body);
        assert_eq!(r.code(), code, "{what}");
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: a clear message");
    }
    // Oversize bodies, announced up front (2 MB, 20 MB) or streamed in chunks, are refused with
    // a problem. (Over a raw connection that stops sending once refused, as a client honouring
    // the early answer does: a client that keeps writing into a closed connection may see the
    // reset before the answer, which is the network's doing, not ours.)
    for size in [Some(2 * 1024 * 1024), Some(20 * 1024 * 1024), None] {
        let (status, answer) = oversize(&app, size).await;
        assert_eq!(status, 413, "{size:?}: {answer}");
        assert!(answer.contains("application/problem+json") && answer.contains("payload_too_large"), "{answer}");
    }
    assert_eq!(app.get("/healthz", "").await.status, StatusCode::OK, "the process stays up");
    assert_eq!(ticket_count(&app).await, 1, "nothing half-written, nothing lost");
    let id =
        app.get("/api/v1/tickets", &app.admin).await.body["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let r = app
        .raw(
            Method::PATCH,
            &format!("/api/v1/tickets/{id}"),
            &app.admin,
            "application/json",
            br#"{"status":"resolved","tags":["ok", "bad tag"]}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let t = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    assert_eq!(
        (t.body["status"].as_str(), t.body["version"].as_i64()),
        (Some("new"), Some(1)),
        "a refused patch changes nothing"
    );
}

async fn injection_probes_in_sort_filter_and_search_cases_29_61(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.ticket(&app.admin, json!({"subject": "Mail server down", "description": "OR 1=1 is not SQL here"})).await;
    let long = "x".repeat(5000);
    let bad_queries = [
        "sort=id;--".to_owned(),
        "sort=(SELECT%201)".to_owned(),
        "sort=1%20OR%201=1".to_owned(),
        format!("sort={long}"),
        "limit=1%20OR%201=1".to_owned(),
        "limit=-1".to_owned(),
        "limit=100000".to_owned(),
        "filter=status".to_owned(),
        "order=desc".to_owned(),
        "status=open;DROP%20TABLE%20tickets".to_owned(),
        "group_id=(SELECT%201)".to_owned(),
        "created_after=yesterday".to_owned(),
        "cursor=%27%20OR%201=1".to_owned(),
        format!("q={}", "a".repeat(10 * 1024)),
        "q=*".to_owned(),
        "q=%22".to_owned(),
        "q=%5C".to_owned(),
        "q=(((((((((((((((((".to_owned(),
    ];
    for q in &bad_queries {
        let r = app.get(&format!("/api/v1/tickets?{q}"), &app.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
        let text = r.body.to_string().to_lowercase();
        assert!(
            !text.contains("sqlite") && !text.contains("syntax") && !text.contains("select"),
            "{q}: no SQL in the response: {text}"
        );
    }
    // Probes that are just words: answered safely, and match only what the words match.
    for q in ["OR%201=1", "%27%20OR%20%271%27=%271", "%bf%27", "a%20(b)%20%22c%22", "%D0%B0dmin", "mail%20OR%201=1"] {
        let r = app.get(&format!("/api/v1/tickets?q={q}"), &app.admin).await;
        assert!(r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST, "{q}: {}", r.status);
    }
    let or = app.get("/api/v1/tickets?q=OR%201=1", &app.admin).await;
    assert_eq!(or.body["items"].as_array().map(Vec::len), Some(1), "the words or, 1 are searched literally");
    let nothing = app.get("/api/v1/tickets?q=%27%3B%20DROP%20TABLE%20tickets%3B%20--", &app.admin).await;
    assert_eq!(nothing.body["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(ticket_count(&app).await, 1, "the table is still there");
}

async fn no_hidden_or_header_based_entry_points_cases_27_46(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, agent) = app.user_with_token("agent@example.org", ferrodesk_core::user::Role::Agent).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for path in [
        "/setup",
        "/install",
        "/installer",
        "/debug",
        "/admin",
        "/cron",
        "/api/v1/setup",
        "/api/v1/cron",
        "/api/v1/debug",
        "/api/v1/admin",
        "/.env",
        "/api/v1/users;/",
    ] {
        for token in ["", agent.as_str()] {
            // Without following redirects: the admin pages send strangers to the login page.
            let r = no_redirects
                .get(format!("{}{path}", app.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let to_login =
                r.headers().get("location").and_then(|v| v.to_str().ok()).is_some_and(|l| l.starts_with("/login"));
            let status = r.status().as_u16();
            assert!(matches!(status, 401 | 404) || (status == 303 && to_login), "{path}: {status}");
            if path == "/admin" {
                let page = no_redirects
                    .get(format!("{}/admin/users", app.base))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(page.status().as_u16(), 303, "the people page itself needs a signed-in admin");
            }
        }
    }
    // Path tricks and forwarded identities never authenticate anyone.
    for path in ["/%2e/api/v1/users", "/api/v1/../api/v1/users", "/api/v1//users", "/API/V1/USERS"] {
        let r = app.get(path, "").await;
        assert!(matches!(r.status.as_u16(), 401 | 404), "{path}: {}", r.status);
    }
    for (header, value) in [
        ("x-forwarded-user", "admin@example.org"),
        ("remote-user", "admin@example.org"),
        ("x-remote-user", "admin"),
        ("authorization", "Basic YWRtaW46YWRtaW4="),
    ] {
        let r = app.call(Method::GET, "/api/v1/users", "", None, &[(header, value)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header} must not authenticate");
    }
    let forged = app.get("/api/v1/users/me", "fdk_not-a-real-token").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

async fn cross_origin_requests_get_no_cors_case_31(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app.call(Method::GET, "/api/v1/tickets", &app.admin, None, &[("origin", "https://evil.example")]).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let pre = app
        .call(
            Method::OPTIONS,
            "/api/v1/tickets",
            "",
            None,
            &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
        )
        .await;
    assert!(pre.headers.get("access-control-allow-origin").is_none());
    assert!(pre.headers.get("access-control-allow-credentials").is_none());
    assert_ne!(pre.status, StatusCode::OK);
}

/// Sends an oversize JSON body over a raw connection — announced as 20 MB with only the first
/// 64 KiB sent, or chunked without a length (1.25 MiB) — and reads the status line. A raw
/// socket lets the test read the answer the server gives before it has taken the whole body.
/// Sends the start of a body announced as `announced` bytes (or chunked, endless, when `None`)
/// and reads the answer: its status and its text.
async fn oversize(app: &TestApp, announced: Option<usize>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let framing = match announced {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST /api/v1/tickets HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n",
        app.admin
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let chunk = vec![b' '; 64 * 1024];
    if announced.is_some() {
        let _ = tcp.write_all(&chunk).await;
    } else {
        for _ in 0..20 {
            let _ = tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await;
            let _ = tcp.write_all(&chunk).await;
            let _ = tcp.write_all(b"\r\n").await;
        }
    }
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    // Until the whole problem document is in (or the server is done).
    while n < buf.len() && !String::from_utf8_lossy(&buf[..n]).contains('}') {
        match tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf[n..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(read)) => n += read,
        }
    }
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}
