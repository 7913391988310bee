//! Attachments (QUALITY-CASES F 49, 50, 52, 54, 55): safe names, safe downloads, visibility,
//! limits and quotas.

use ferrodesk_core::user::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};

dual!(
    uploads_download_as_inert_attachments_cases_49_50,
    internal_and_foreign_attachments_stay_hidden_case_52,
    size_limits_and_quotas_cases_55,
    merge_moves_attachments
);

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

async fn uploads_download_as_inert_attachments_cases_49_50(b: Backend) {
    let app = TestApp::spawn(b).await;
    let t = app.ticket(&app.admin, json!({"subject": "Screenshot attached"})).await;
    let png = b"\x89PNG\r\n\x1a\nnot really".to_vec();
    let up = app.upload(&id(&t), &app.admin, "screen.png", "image/png", png.clone(), &[]).await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    assert_eq!(up.body["size"], png.len());
    let (status, headers, body) = app.download(&format!("/api/v1/attachments/{}", up.id()), &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, png, "bytes round-trip");
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(h("content-type"), "image/png");
    assert!(h("content-disposition").starts_with("attachment;"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert!(h("content-security-policy").contains("sandbox"));

    // Active content is never served as such (case 49).
    for (name, ct, data) in [
        ("page.html", "text/html", b"<script>alert(1)</script>".to_vec()),
        ("logo.svg", "image/svg+xml", b"<svg onload=alert(1)></svg>".to_vec()),
        ("x.xhtml", "application/xhtml+xml", b"<html/>".to_vec()),
        ("fake.png", "image/png", b"<html><script>alert(1)</script></html>".to_vec()),
    ] {
        let up = app.upload(&id(&t), &app.admin, name, ct, data, &[]).await;
        let (_, headers, _) = app.download(&format!("/api/v1/attachments/{}", up.id()), &app.admin).await;
        let ct_served = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(ct_served == "application/octet-stream" || ct_served == "image/png", "{name}: {ct_served}");
        assert!(
            headers
                .get("content-disposition")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|d| d.starts_with("attachment")),
            "{name}"
        );
        assert_eq!(headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"), "{name}");
    }

    // Hostile names are stored as plain names (case 50).
    for (raw, stored) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
        ("CON", "_CON"),
        ("\"><svg onload=alert(1)>.pdf", "___svg onload=alert(1)_.pdf"),
    ] {
        let up = app.upload(&id(&t), &app.admin, raw, "application/octet-stream", b"x".to_vec(), &[]).await;
        assert_eq!(up.body["filename"], stored, "{raw:?}");
        let (_, headers, _) = app.download(&format!("/api/v1/attachments/{}", up.id()), &app.admin).await;
        let d = headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(!d.contains('\r') && !d.contains('\n') && !d.contains("../"), "{d}");
    }
    let long = app
        .upload(&id(&t), &app.admin, &format!("{}.pdf", "a".repeat(300)), "application/pdf", b"%PDF".to_vec(), &[])
        .await;
    assert_eq!(long.body["filename"].as_str().map(|s| s.chars().count()), Some(200));
    let listed = app.get(&format!("/api/v1/tickets/{}/attachments", id(&t)), &app.admin).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(11));
    let not_multipart =
        app.post(&format!("/api/v1/tickets/{}/attachments", id(&t)), &app.admin, json!({"file": "x"})).await;
    assert_eq!(not_multipart.code(), "malformed_upload");

    // The SQLite file holding the blobs is private to its owner (case 54).
    if b == Backend::Sqlite {
        use std::os::unix::fs::PermissionsExt;
        let path = app_db_path(&app);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o777);
        assert_eq!(mode, 0o600, "{path}");
    }
}

fn app_db_path(app: &TestApp) -> String {
    app.database_url.trim_start_matches("sqlite://").to_owned()
}

async fn internal_and_foreign_attachments_stay_hidden_case_52(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, ann) = app.user_with_token("ann@example.org", Role::Requester).await;
    let (_, bob) = app.user_with_token("bob@example.org", Role::Requester).await;
    let t = app.ticket(&ann, json!({"subject": "VPN"})).await;
    let mine = app.upload(&id(&t), &ann, "log.txt", "text/plain", b"vpn log".to_vec(), &[]).await;
    assert_eq!(mine.status, StatusCode::CREATED);
    let secret = app
        .upload(&id(&t), &app.admin, "firewall.conf", "text/plain", b"deny all".to_vec(), &[("internal", "true")])
        .await;
    assert_eq!(secret.body["internal"], true);
    let note = app
        .post(
            &format!("/api/v1/tickets/{}/comments", id(&t)),
            &app.admin,
            json!({"body": "see config", "internal": true}),
        )
        .await;
    let on_note = app
        .upload(&id(&t), &app.admin, "diff.txt", "text/plain", b"-a +b".to_vec(), &[("comment_id", &note.id())])
        .await;
    assert_eq!(on_note.body["internal"], true, "an attachment on an internal note is internal");

    let seen = app.get(&format!("/api/v1/tickets/{}/attachments", id(&t)), &ann).await;
    let names: Vec<&str> =
        seen.body["items"].as_array().into_iter().flatten().filter_map(|a| a["filename"].as_str()).collect();
    assert_eq!(names, vec!["log.txt"]);
    for hidden in [secret.id(), on_note.id()] {
        let (status, _, body) = app.download(&format!("/api/v1/attachments/{hidden}"), &ann).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!String::from_utf8_lossy(&body).contains("deny all"));
    }
    let (status, _, _) = app.download(&format!("/api/v1/attachments/{}", mine.id()), &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another requester's attachment is not found");
    let (status, _, _) = app.download(&format!("/api/v1/attachments/{}", uuid::Uuid::now_v7()), &app.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let sneaky = app.upload(&id(&t), &ann, "x.txt", "text/plain", b"x".to_vec(), &[("internal", "true")]).await;
    assert_eq!(sneaky.status, StatusCode::FORBIDDEN, "requesters cannot make internal attachments");
    let foreign = app.upload(&id(&t), &bob, "x.txt", "text/plain", b"x".to_vec(), &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

async fn size_limits_and_quotas_cases_55(b: Backend) {
    let limits =
        ferrodesk_web::Limits { attachment_bytes: 64 * 1024, upload_quota_bytes: 100 * 1024, ..Default::default() };
    let app = TestApp::spawn_with_limits(b, limits).await;
    let (_, ann) = app.user_with_token("ann@example.org", Role::Requester).await;
    let (_, bob) = app.user_with_token("bob@example.org", Role::Requester).await;
    let t = app.ticket(&ann, json!({"subject": "Uploads"})).await;
    let u = app.ticket(&bob, json!({"subject": "Mine"})).await;
    let big = app.upload(&id(&t), &ann, "big.bin", "application/octet-stream", vec![7u8; 65 * 1024], &[]).await;
    assert_eq!((big.status, big.code()), (StatusCode::PAYLOAD_TOO_LARGE, "attachment_too_large"));
    assert!(big.body["detail"].as_str().is_some_and(|d| d.contains("MB")), "a clear message");
    for i in 0..2 {
        let ok = app
            .upload(&id(&t), &ann, &format!("part{i}.bin"), "application/octet-stream", vec![i as u8; 40 * 1024], &[])
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{i}");
    }
    let over = app.upload(&id(&t), &ann, "part2.bin", "application/octet-stream", vec![2u8; 40 * 1024], &[]).await;
    assert_eq!((over.status, over.code()), (StatusCode::PAYLOAD_TOO_LARGE, "upload_quota_exceeded"));
    let other = app.upload(&id(&u), &bob, "bob.bin", "application/octet-stream", vec![3u8; 40 * 1024], &[]).await;
    assert_eq!(other.status, StatusCode::CREATED, "other users are unaffected");
    app.clock.advance(std::time::Duration::from_secs(25 * 3600));
    let later = app.upload(&id(&t), &ann, "part2.bin", "application/octet-stream", vec![2u8; 40 * 1024], &[]).await;
    assert_eq!(later.status, StatusCode::CREATED, "the quota is a rolling day");
}

async fn merge_moves_attachments(b: Backend) {
    let app = TestApp::spawn(b).await;
    let keep = app.ticket(&app.admin, json!({"subject": "Keep"})).await;
    let dup = app.ticket(&app.admin, json!({"subject": "Dup"})).await;
    app.upload(&id(&dup), &app.admin, "photo.jpg", "image/jpeg", b"jpeg".to_vec(), &[]).await;
    app.post(&format!("/api/v1/tickets/{}/merge", id(&dup)), &app.admin, json!({"into": id(&keep)})).await;
    let listed = app.get(&format!("/api/v1/tickets/{}/attachments", id(&keep)), &app.admin).await;
    assert_eq!(listed.body["items"][0]["filename"], "photo.jpg");
}
