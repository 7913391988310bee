//! Bounded resources and mailbox policies on the e-mail channel (issue 19 §2, §4): a mailbox
//! takes messages up to its own size limit, keeps larger ones unread in the quarantine and tells
//! their sender once; an attachment whose encoding is broken is kept as received and marked
//! damaged; mail from the mail host's own senders waits, or opens tickets as a named user.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dual;
use crate::helpers::{Backend, TestApp};
use crate::mail::{SUPPORT, SmtpCapture, deliver_expecting, mail, outbox, read};

dual!(
    a_message_over_the_mailbox_limit_waits_unread_and_its_sender_is_told_once,
    a_broken_attachment_is_kept_as_received_and_marked_damaged,
    raw_messages_survive_the_move_to_their_own_table,
    senders_without_a_dotted_domain_wait_or_open_tickets_as_a_named_user,
    a_calendar_invitation_is_acknowledged_to_nobody_and_copies_nobody_in
);

const MIB: usize = 1024 * 1024;

async fn a_message_over_the_mailbox_limit_waits_unread_and_its_sender_is_told_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app
        .post("/api/v1/mailboxes", &app.admin, json!({"name": "support", "address": SUPPORT, "max_message_bytes": MIB}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["max_message_bytes"], MIB);
    let mailbox = r.id();
    let refused = app
        .post(
            "/api/v1/mailboxes",
            &app.admin,
            json!({"name": "tiny", "address": "t@desk.example", "max_message_bytes": 10}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());

    let big = |id: &str| mail("Ann <ann@customer.example>", "Scans", id, "", &"0123456789abcdef ".repeat(MIB / 16));
    let first = big("big1@customer.example");
    let held = deliver_expecting(&app, &first, "quarantined").await;
    assert!(held["error"].as_str().unwrap_or_default().contains("larger than its mailbox takes (1.0 MiB)"), "{held}");
    // Kept byte for byte, though never read.
    let id = held["id"].as_str().unwrap_or_default().to_owned();
    let (status, _, raw) = app.download(&format!("/api/v1/mail/inbound/{id}/raw"), &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw, first.as_bytes());
    // The sender hears once, however many follow within the hour.
    deliver_expecting(&app, &big("big2@customer.example"), "quarantined").await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent: Vec<_> = smtp.messages().iter().map(|m| read(m)).collect();
    assert_eq!(sent.len(), 1, "{:?}", sent.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert_eq!(sent[0].to[0].address, "ann@customer.example");
    assert_eq!(sent[0].subject, "Your message \"Scans\" was too large to take");
    assert!(sent[0].text.contains("takes messages of up to 1.0 MiB"), "{}", sent[0].text);
    assert!(sent[0].automation.is_automatic(), "marked Auto-Submitted");

    // The admin raises the limit and retries: now it is a ticket.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/mailboxes/{mailbox}"),
            &app.admin,
            Some(json!({"max_message_bytes": 4 * MIB})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let retried = app.post(&format!("/api/v1/mail/inbound/{id}/retry"), &app.admin, json!({})).await;
    assert_eq!(retried.body["outcome"], "opened", "{}", retried.body);
}

async fn a_broken_attachment_is_kept_as_received_and_marked_damaged(b: Backend) {
    let app = crate::mail::with_mailbox(b).await;
    let broken_part = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\nY29kZT4+CnN0cmVhbQp4nD2OywoCMQ**!!broken";
    let raw = format!(
        "From: ann@customer.example\r\nTo: {SUPPORT}\r\nSubject: Contract\r\nMessage-ID: <dmg1@customer.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
         The contract is attached.\r\n--XX\r\nContent-Type: application/pdf; name=contract.pdf\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=contract.pdf\r\n\r\n\
         {broken_part}\r\n--XX--\r\n"
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert!(
        t["description"].as_str().unwrap_or_default().contains("[Attachment \"contract.pdf\" arrived damaged"),
        "{t}"
    );
    let files = app.get(&format!("/api/v1/tickets/{ticket}/attachments"), &app.admin).await.body;
    let file = files["items"][0].clone();
    assert_eq!(
        (file["filename"].as_str(), file["content_type"].as_str()),
        (Some("contract.pdf.damaged"), Some("application/octet-stream")),
        "{files}"
    );
    let (status, _, data) =
        app.download(&format!("/api/v1/attachments/{}", file["id"].as_str().unwrap_or_default()), &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8_lossy(&data).trim(), broken_part, "kept as received, still encoded");
}

/// Migration 0025 moves every raw message into `inbound_raw`: a database of the older shape
/// keeps each message byte for byte.
async fn raw_messages_survive_the_move_to_their_own_table(b: Backend) {
    let app = crate::mail::with_mailbox(b).await;
    let raw = mail("ann@customer.example", "Before the upgrade", "up1@customer.example", "", "Ünïcode and all.");
    let id = deliver_expecting(&app, &raw, "opened").await["id"].as_str().unwrap_or_default().to_owned();
    let blob = match b {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    crate::cli::tamper(
        b,
        &app.database_url,
        &format!(
            "ALTER TABLE inbound_messages ADD COLUMN raw {blob};
             UPDATE inbound_messages SET raw = (SELECT r.raw FROM inbound_raw r WHERE r.id = inbound_messages.id);
             DROP TABLE inbound_raw;
             DELETE FROM schema_migrations WHERE version = 25;"
        ),
    )
    .await;
    let migrated = crate::helpers::ferrodesk(&app.database_url, &["migrate"], None);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    let (status, _, kept) = app.download(&format!("/api/v1/mail/inbound/{id}/raw"), &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept, raw.as_bytes());
}

async fn senders_without_a_dotted_domain_wait_or_open_tickets_as_a_named_user(b: Backend) {
    let app = crate::mail::with_mailbox(b).await;
    let mailbox =
        app.get("/api/v1/mailboxes", &app.admin).await.body["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let cron = "From: Cron Daemon <root@mailhost>\r\nTo: help@desk.example\r\nSubject: backup failed\r\n\
                Message-ID: <cron1@mailhost>\r\n\r\n/usr/local/bin/backup: disk full\r\n";
    let held = deliver_expecting(&app, cron, "quarantined").await;
    assert!(held["error"].as_str().unwrap_or_default().contains("no usable sender"), "{held}");

    let path = format!("/api/v1/mailboxes/{mailbox}");
    let refused =
        app.call(Method::PATCH, &path, &app.admin, Some(json!({"local_senders_as": uuid::Uuid::now_v7()})), &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    let (monitoring, _) = app.user_with_token("monitoring@desk.example", ferrodesk_core::user::Role::Requester).await;
    let r = app.call(Method::PATCH, &path, &app.admin, Some(json!({"local_senders_as": monitoring})), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["local_senders_as"], json!(monitoring));

    let retried = app
        .post(&format!("/api/v1/mail/inbound/{}/retry", held["id"].as_str().unwrap_or_default()), &app.admin, json!({}))
        .await;
    assert_eq!(retried.body["outcome"], "opened", "{}", retried.body);
    let ticket = retried.body["message"]["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert_eq!(t["requester_id"], json!(monitoring));
    assert!(t["description"].as_str().unwrap_or_default().starts_with("[Sent by root@mailhost"), "{t}");
    let id = ferrodesk_core::ids::TicketId(ticket.parse().unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        app.store.ticket_jobs(id).await.map(|j| j.len()).unwrap_or(99),
        0,
        "nothing is mailed back to a cron job"
    );
    // The mail host's own bounces are still machines' mail: stored, no ticket.
    let bounce = "From: MAILER-DAEMON@mailhost\r\nTo: help@desk.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
                  Message-ID: <b1@mailhost>\r\nX-Failed-Recipients: gone@customer.example\r\n\r\nfailed\r\n";
    deliver_expecting(&app, bounce, "ignored").await;
}

/// iMIP invitations are machine mail for acknowledgements and copying: the organiser gets no
/// "we have your request", the invitees are not made watchers (issue 19 §4).
async fn a_calendar_invitation_is_acknowledged_to_nobody_and_copies_nobody_in(b: Backend) {
    let app = crate::mail::with_mailbox(b).await;
    crate::mail::trust_the_mta(&app).await;
    let invite = format!(
        "From: Ann <ann@customer.example>\r\nTo: {SUPPORT}\r\nCc: bob@customer.example\r\n\
         Subject: Invitation: Laptop handover @ Mon 10:00\r\nMessage-ID: <inv1@customer.example>\r\n{}\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=CAL\r\n\r\n\
         --CAL\r\nContent-Type: text/plain\r\n\r\nLaptop handover, Monday 10:00.\r\n\
         --CAL\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n\
         BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Laptop handover\r\n\
         DTSTART:20261214T100000Z\r\nORGANIZER:mailto:ann@customer.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n\
         --CAL--\r\n",
        crate::mail::dmarc_pass("customer.example")
    );
    let opened = deliver_expecting(&app, &invite, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert_eq!(t["watchers"], json!([]), "invitees are not copied in: {t}");
    let id = ferrodesk_core::ids::TicketId(ticket.parse().unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        app.store.ticket_jobs(id).await.map(|j| j.len()).unwrap_or(99),
        0,
        "no acknowledgement to the organiser"
    );
    // The same from a verified sender without the invitation copies Bob in and is acknowledged.
    let plain = format!(
        "From: Ann <ann@customer.example>\r\nTo: {SUPPORT}\r\nCc: bob@customer.example\r\nSubject: Laptop\r\n\
         Message-ID: <inv2@customer.example>\r\n{}\r\nLaptop handover, Monday 10:00.\r\n",
        crate::mail::dmarc_pass("customer.example")
    );
    let opened = deliver_expecting(&app, &plain, "opened").await;
    let t = app
        .get(&format!("/api/v1/tickets/{}", opened["ticket_id"].as_str().unwrap_or_default()), &app.admin)
        .await
        .body;
    assert_eq!(t["watchers"].as_array().map(Vec::len), Some(1), "{t}");
}
