//! Signing in and out (QUALITY-CASES E 44, 45, 47, 48): cookies, CSRF, throttling, revocation.

use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    session_cookie_csrf_and_logout_case_45,
    unknown_account_and_wrong_password_look_the_same,
    parallel_guessing_hits_the_limit_exactly_and_recovers_case_44,
    password_change_and_log_out_everywhere_end_other_sessions,
    forwarded_for_names_the_client_only_behind_a_trusted_proxy
);

const PASSWORD: &str = "correct horse battery staple";

async fn session_cookie_csrf_and_logout_case_45(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (user, _) = app.user_with_token("ana@example.org", Role::Agent).await;
    app.set_password(user, PASSWORD).await;

    let r = app.post("/api/v1/auth/login", "", json!({"email": " Ana@Example.org ", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let set = r.headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    for attr in ["__Host-fd_session=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "cookie lacks {attr}: {set}");
    }
    assert_eq!(r.body["user"]["email"], "ana@example.org");
    let (cookie, csrf) = app.login("ana@example.org", PASSWORD).await;
    assert_ne!(cookie, set.split(';').next().unwrap_or_default(), "every sign-in gets a new session id");

    // A planted (pre-login) cookie is not adopted: it never authenticates.
    let planted = app.with_cookie(Method::GET, "/api/v1/users/me", "__Host-fd_session=fds_planted", None, None).await;
    assert_eq!(planted.status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        app.with_cookie(Method::GET, "/api/v1/users/me", &cookie, None, None).await.body["email"],
        "ana@example.org"
    );
    let body = json!({"subject": "From the browser"});
    let no_csrf = app.with_cookie(Method::POST, "/api/v1/tickets", &cookie, None, Some(body.clone())).await;
    assert_eq!((no_csrf.status, no_csrf.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let (_, other_csrf) = app.login("ana@example.org", PASSWORD).await;
    let wrong = app.with_cookie(Method::POST, "/api/v1/tickets", &cookie, Some(&other_csrf), Some(body.clone())).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "another session's token is not this session's");
    let ok = app.with_cookie(Method::POST, "/api/v1/tickets", &cookie, Some(&csrf), Some(body)).await;
    assert_eq!(ok.status, StatusCode::CREATED);

    let out = app.with_cookie(Method::POST, "/api/v1/auth/logout", &cookie, Some(&csrf), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers.get("set-cookie").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(
        app.with_cookie(Method::GET, "/api/v1/users/me", &cookie, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Idle sessions end on their own.
    let (idle, _) = app.login("ana@example.org", PASSWORD).await;
    app.clock.advance(std::time::Duration::from_secs(9 * 3600));
    assert_eq!(
        app.with_cookie(Method::GET, "/api/v1/users/me", &idle, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn unknown_account_and_wrong_password_look_the_same(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (user, _) = app.user_with_token("ana@example.org", Role::Requester).await;
    app.set_password(user, PASSWORD).await;
    let wrong =
        app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": "not the password"})).await;
    let unknown = app
        .post("/api/v1/auth/login", "", json!({"email": "nobody@example.org", "password": "not the password"}))
        .await;
    let junk =
        app.post("/api/v1/auth/login", "", json!({"email": "victim@x.com,attacker@y.com", "password": "x"})).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
    assert_eq!((wrong.status, &wrong.body), (junk.status, &junk.body));
    assert!(wrong.headers.get("set-cookie").is_none());
    let huge =
        app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": "x".repeat(100_000)})).await;
    assert_eq!(huge.status, StatusCode::UNAUTHORIZED);
    // Deactivated accounts cannot sign in.
    app.patch(&format!("/api/v1/users/{user}"), &app.admin, json!({"active": false})).await;
    let r = app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn parallel_guessing_hits_the_limit_exactly_and_recovers_case_44(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (user, _) = app.user_with_token("ana@example.org", Role::Agent).await;
    app.set_password(user, PASSWORD).await;
    let attempts = (0..50).map(|i| {
        let app = &app;
        async move {
            app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": format!("guess {i}")}))
                .await
        }
    });
    let replies = futures_join_all(attempts).await;
    let wrong = replies.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    let throttled = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((wrong, throttled), (5, 45), "exactly the limit of guesses is checked");
    let t = replies.iter().find(|r| r.status == StatusCode::TOO_MANY_REQUESTS);
    assert!(t.is_some_and(|r| r.headers.contains_key("retry-after") && r.code() == "too_many_attempts"));

    // Locked: even the right password waits; after the window the owner gets in unaided.
    let locked = app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": PASSWORD})).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    let (cookie, _) = app.login("ana@example.org", PASSWORD).await;
    assert!(cookie.starts_with("__Host-fd_session=fds_"));
    // A success clears the account's count.
    for _ in 0..4 {
        app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": "wrong again"})).await;
    }
    app.login("ana@example.org", PASSWORD).await;
}

/// Runs futures concurrently on this task (no extra dependency for a join).
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}

async fn password_change_and_log_out_everywhere_end_other_sessions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (user, token) = app.user_with_token("ana@example.org", Role::Agent).await;
    app.set_password(user, PASSWORD).await;
    let (laptop, laptop_csrf) = app.login("ana@example.org", PASSWORD).await;
    let (phone, _) = app.login("ana@example.org", PASSWORD).await;
    let listed = app.with_cookie(Method::GET, "/api/v1/auth/sessions", &laptop, None, None).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed.body["items"].as_array().into_iter().flatten().filter(|s| s["current"] == true).count(), 1);

    let changed = app
        .with_cookie(
            Method::PATCH,
            &format!("/api/v1/users/{user}"),
            &laptop,
            Some(&laptop_csrf),
            Some(json!({"password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(
        app.with_cookie(Method::GET, "/api/v1/users/me", &phone, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.with_cookie(Method::GET, "/api/v1/users/me", &laptop, None, None).await.status, StatusCode::OK);
    let old = app.post("/api/v1/auth/login", "", json!({"email": "ana@example.org", "password": PASSWORD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);

    let (tablet, _) = app.login("ana@example.org", "a brand new passphrase").await;
    let everywhere = app.call(Method::DELETE, "/api/v1/auth/sessions", &token, None, &[]).await;
    assert_eq!(everywhere.status, StatusCode::NO_CONTENT);
    for c in [&laptop, &tablet] {
        assert_eq!(
            app.with_cookie(Method::GET, "/api/v1/users/me", c, None, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Admins can end a user's sessions (lost laptop).
    let (again, _) = app.login("ana@example.org", "a brand new passphrase").await;
    let r = app.call(Method::DELETE, &format!("/api/v1/users/{user}/sessions"), &app.admin, None, &[]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.with_cookie(Method::GET, "/api/v1/users/me", &again, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// One wrong sign-in for a made-up account, as the client `from` names itself.
async fn guess(app: &TestApp, n: usize, from: &str) -> StatusCode {
    let body = json!({"email": format!("nobody{n}@example.org"), "password": "wrong wrong wrong"});
    app.call(Method::POST, "/api/v1/auth/login", "", Some(body), &[("x-forwarded-for", from)]).await.status
}

/// Behind a reverse proxy every request comes from the proxy's address; its `X-Forwarded-For`
/// names the client, but only when the admin said the proxy is ours (issue 19): otherwise any
/// client could pick a fresh address per guess, or lock others out by naming theirs.
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy(b: Backend) {
    // The tests connect from 127.0.0.1: here it is a trusted proxy.
    let proxies = ferrodesk_web::client::TrustedProxies::parse("127.0.0.1").unwrap_or_default();
    let behind = TestApp::spawn_with(b, |s| {
        s.trusted_proxies = proxies;
        s.limits.sign_ins_per_address = 3;
    })
    .await;
    for n in 0..3 {
        assert_eq!(guess(&behind, n, "198.51.100.7").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(guess(&behind, 3, "198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS, "that client is throttled");
    assert_eq!(guess(&behind, 4, "198.51.100.8").await, StatusCode::UNAUTHORIZED, "another client is not");

    // Without trust, the header is anyone's words: changing it does not escape the limit.
    let direct = TestApp::spawn_with(b, |s| s.limits.sign_ins_per_address = 3).await;
    for n in 0..3 {
        let from = if n % 2 == 0 { "198.51.100.7" } else { "198.51.100.9" };
        assert_eq!(guess(&direct, n, from).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(guess(&direct, 3, "203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
}
