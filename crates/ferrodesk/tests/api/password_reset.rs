//! Forgotten passwords by e-mail (QUALITY-CASES E40–E43), against a real SMTP server.

use std::time::{Duration, Instant};

use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};
use crate::mail::{SmtpCapture, outbox, read};

dual!(
    the_reset_link_uses_our_address_and_works_once_case_e40_e42,
    answers_do_not_tell_who_has_an_account_case_e41,
    reset_mail_goes_only_to_the_account_address_case_e43,
    stale_superseded_and_outdated_links_fail_case_e42
);

const OLD: &str = "the old password!";
const NEW: &str = "a brand new password";

async fn setup(b: Backend) -> (TestApp, SmtpCapture, ferrodesk_mail::outbox::Outbox) {
    let app = TestApp::spawn(b).await;
    let r = app.post("/api/v1/mailboxes", &app.admin, json!({"name": "support", "address": "help@desk.example"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (ann, _) = app.user_with_token("ann@customer.example", Role::Requester).await;
    app.set_password(ann, OLD).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    (app, smtp, out)
}

async fn ask(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> crate::helpers::Reply {
    app.call(Method::POST, "/api/v1/auth/password-reset", "", Some(json!({"email": email})), headers).await
}

/// Runs the outbox until `count` mails were sent (the request is handled in the background).
async fn mails(app: &TestApp, smtp: &SmtpCapture, out: &ferrodesk_mail::outbox::Outbox, count: usize) -> Vec<Vec<u8>> {
    for _ in 0..100 {
        out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let sent = smtp.messages();
        if sent.len() >= count {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    smtp.messages()
}

fn link(raw: &[u8]) -> String {
    let text = read(raw).text;
    text.split_whitespace().find(|w| w.contains("/reset-password?token=")).unwrap_or_default().to_owned()
}

fn token(link: &str) -> String {
    link.split("token=").nth(1).unwrap_or_default().to_owned()
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> crate::helpers::Reply {
    app.post("/api/v1/auth/password-reset/confirm", "", json!({"token": token, "password": password})).await
}

async fn the_reset_link_uses_our_address_and_works_once_case_e40_e42(b: Backend) {
    let (app, smtp, out) = setup(b).await;
    let (old_session, _) = app.login("ann@customer.example", OLD).await;
    // E40: whatever Host the request names, the link points at the configured base URL.
    let r = ask(&app, "Ann@Customer.example", &[("host", "evil.example"), ("x-forwarded-host", "evil.example")]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let sent = mails(&app, &smtp, &out, 1).await;
    assert_eq!(sent.len(), 1);
    let mail = read(&sent[0]);
    assert_eq!(mail.to[0].address, "ann@customer.example");
    let url = link(&sent[0]);
    assert!(url.starts_with("https://desk.example/reset-password?token="), "{url}");
    assert!(!String::from_utf8_lossy(&sent[0]).contains("evil.example"));
    assert!(mail.automation.is_automatic(), "marked Auto-Submitted");

    let t = token(&url);
    // A weak password is refused and does not use up the link.
    assert_eq!(confirm(&app, &t, "short").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(confirm(&app, &t, NEW).await.status, StatusCode::NO_CONTENT);
    // Every session ended; the new password works, the old one not.
    let me = app.with_cookie(Method::GET, "/api/v1/users/me", &old_session, None, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    app.login("ann@customer.example", NEW).await;
    let old = app.post("/api/v1/auth/login", "", json!({"email": "ann@customer.example", "password": OLD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    // E42: used once.
    let again = confirm(&app, &t, "yet another password").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.code(), "invalid_reset_token");

    // The page flow: the link opens a form; the form needs its own cookie.
    let page =
        app.http.get(format!("{}/reset-password?token={t}", app.base)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), StatusCode::OK);
    let forged = app
        .http
        .post(format!("{}/reset-password", app.base))
        .form(&[("token", t.as_str()), ("password", "whatever password"), ("csrf", "guess")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

async fn answers_do_not_tell_who_has_an_account_case_e41(b: Backend) {
    let (app, _smtp, _out) = setup(b).await;
    let strip = |r: &crate::helpers::Reply| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        h.sort();
        (r.status, r.body.clone(), h)
    };
    let known = ask(&app, "ann@customer.example", &[]).await;
    let unknown = ask(&app, "nobody@customer.example", &[]).await;
    assert_eq!(strip(&known), strip(&unknown));
    assert_eq!(known.status, StatusCode::ACCEPTED);
    // The work happens after the answer: timing does not depend on the account either.
    let mut timings = [Vec::new(), Vec::new()];
    for round in 0..10 {
        for (i, email) in ["ann@customer.example", "nobody@customer.example"].iter().enumerate() {
            let started = Instant::now();
            let r = ask(&app, &format!("{email}{}", if round % 2 == 0 { "" } else { " " }), &[]).await;
            timings[i].push(started.elapsed());
            assert_eq!(r.status, StatusCode::ACCEPTED);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut timings[0]), median(&mut timings[1]));
    let gap = a.abs_diff(b);
    assert!(gap < Duration::from_millis(25), "known {a:?} vs unknown {b:?}");
}

async fn reset_mail_goes_only_to_the_account_address_case_e43(b: Backend) {
    let (app, smtp, out) = setup(b).await;
    for hostile in [
        "ann@customer.example,attacker@evil.example",
        "ann@customer.example attacker@evil.example",
        "ann@customer.example\r\ncc: attacker@evil.example",
        "ann@customer.example%0d%0acc:attacker@evil.example",
    ] {
        assert_eq!(ask(&app, hostile, &[]).await.status, StatusCode::ACCEPTED);
    }
    // Two addresses in one request: refused before anything happens.
    let twice =
        app.call(Method::POST, "/api/v1/auth/password-reset", "", None, &[("content-type", "application/json")]).await;
    assert!(twice.status.is_client_error());
    let raw = app
        .http
        .post(format!("{}/api/v1/auth/password-reset", app.base))
        .header("content-type", "application/json")
        .body(r#"{"email":"ann@customer.example","email":"attacker@evil.example"}"#)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.status().is_client_error());
    let form = app
        .http
        .post(format!("{}/forgot", app.base))
        .form(&[("email", "ann@customer.example"), ("email", "attacker@evil.example"), ("csrf", "x")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(form.status().is_client_error());
    // The one legitimate request: mail to the stored address only.
    ask(&app, "ann@customer.example", &[]).await;
    let sent = mails(&app, &smtp, &out, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = if smtp.messages().len() > sent.len() { smtp.messages() } else { sent };
    assert_eq!(sent.len(), 1, "only the plain address request made a mail");
    for raw in &sent {
        let text = String::from_utf8_lossy(raw);
        assert!(!text.contains("attacker"), "{text}");
        let to = read(raw).to;
        assert_eq!(to.len(), 1);
        assert_eq!(to[0].address, "ann@customer.example");
    }
}

async fn stale_superseded_and_outdated_links_fail_case_e42(b: Backend) {
    let (app, smtp, out) = setup(b).await;
    // Expired: 30 minutes.
    ask(&app, "ann@customer.example", &[]).await;
    let expired = token(&link(&mails(&app, &smtp, &out, 1).await[0]));
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(confirm(&app, &expired, NEW).await.code(), "invalid_reset_token");

    // Superseded by a newer link.
    ask(&app, "ann@customer.example", &[]).await;
    let first = token(&link(&mails(&app, &smtp, &out, 2).await[1]));
    ask(&app, "ann@customer.example", &[]).await;
    let second = token(&link(&mails(&app, &smtp, &out, 3).await[2]));
    assert_ne!(first, second);
    assert_eq!(confirm(&app, &first, NEW).await.code(), "invalid_reset_token");

    // Outdated by a password change made another way.
    let address = ferrodesk_core::user::EmailAddress::parse("ann@customer.example").unwrap_or_else(|e| panic!("{e}"));
    let ann = app.store.user_by_email(&address).await;
    let ann = ann.ok().flatten().map(|(u, _)| u.id).unwrap_or_else(|| panic!("ann"));
    app.set_password(ann, "changed by the admin").await;
    assert_eq!(confirm(&app, &second, NEW).await.code(), "invalid_reset_token");

    // What the database keeps is not a token: its hash does not work as one.
    app.clock.advance(Duration::from_secs(16 * 60));
    ask(&app, "ann@customer.example", &[]).await;
    let live = token(&link(&mails(&app, &smtp, &out, 4).await[3]));
    assert_eq!(confirm(&app, &ferrodesk_mail::reset::token_hash(&live), NEW).await.code(), "invalid_reset_token");
    assert_eq!(confirm(&app, &live, NEW).await.status, StatusCode::NO_CONTENT);
}
