//! The e-mail channel end to end through the relay endpoint and the MTA pipe: raw messages
//! become tickets and comments, threads hold, duplicates and machines' mail do nothing twice,
//! and what cannot be processed is quarantined, kept and retried (QUALITY-CASES A and B).

use ferrodesk_core::mail::InboundSource;
use ferrodesk_core::user::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dual;
use crate::helpers::{Backend, Reply, TestApp, ferrodesk};

dual!(
    a_message_opens_a_ticket_and_replies_thread_onto_it,
    the_same_message_twice_is_one_ticket_case_a1,
    messages_without_message_id_are_told_apart_by_content_case_a3,
    unusable_mail_is_quarantined_kept_and_retried_case_a4,
    machines_mail_never_acknowledged_or_reopens_case_a13_a14,
    mail_from_our_own_address_is_not_a_ticket_case_a15,
    an_oversize_attachment_is_dropped_with_a_note_case_a17,
    forged_references_and_guessed_numbers_open_new_tickets_case_b19_b21,
    agents_reply_by_mail_and_mark_notes_internal,
    the_mta_pipe_stores_or_asks_to_retry,
    replies_go_out_threaded_and_answers_come_back_to_the_ticket,
    acknowledgements_are_rate_limited_and_never_sent_to_machines_case_j69,
    a_relay_down_for_hours_gets_each_mail_once_and_refusals_show_on_the_ticket_case_k78,
    two_desks_acknowledging_each_other_do_not_loop_case_j70,
    hostile_html_and_names_stay_text_case_a9_a11,
    the_date_header_is_not_trusted_case_a16,
    admins_manage_mailboxes_and_the_quarantine_in_the_ui,
    mail_stored_before_a_crash_is_processed_after_it,
    sender_domains_and_floods_wait_for_an_admin,
    the_assignee_hears_of_requester_replies_and_can_answer_by_mail,
    status_mail_carries_links_that_act_once_and_expire,
    admins_switch_notifications_off,
    an_answer_to_a_note_mail_stays_internal_case_b22,
    copied_people_watch_but_gain_nothing_and_verification_mail_is_flagged_case_b20,
    agents_see_the_formatting_and_remote_images_only_on_request_case_a9_g58,
    the_mail_log_pages_through_a_batch_without_gaps,
    mail_keeps_coming_while_agents_work_and_none_is_dropped_case_j73
);

pub(crate) const SUPPORT: &str = "help@desk.example";

pub(crate) async fn with_mailbox(b: Backend) -> TestApp {
    let app = TestApp::spawn(b).await;
    let r = app.post("/api/v1/mailboxes", &app.admin, json!({"name": "support", "address": SUPPORT})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app
}

pub(crate) async fn deliver(app: &TestApp, raw: &str) -> Reply {
    app.raw(Method::POST, "/api/v1/mail/inbound?mailbox=support", &app.admin, "message/rfc822", raw.as_bytes().to_vec())
        .await
}

/// Delivers and checks the outcome; returns the ticket id the message went to (if any).
pub(crate) async fn deliver_expecting(app: &TestApp, raw: &str, outcome: &str) -> Value {
    let r = deliver(app, raw).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["outcome"], outcome, "{}", r.body);
    r.body["message"].clone()
}

pub(crate) fn mail(from: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n{extra_headers}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

/// The authserv-id of the mail server that receives the desk's mail in these tests.
pub(crate) const MTA: &str = "mx.desk.example";

/// The header that server adds when DMARC passed for the sender's domain.
pub(crate) fn dmarc_pass(domain: &str) -> String {
    format!("Authentication-Results: {MTA}; spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}\r\n")
}

/// Believes the test MTA's `Authentication-Results` (no header is believed by default).
pub(crate) async fn trust_the_mta(app: &TestApp) {
    let mut settings = app.get("/api/v1/settings", &app.admin).await.body;
    settings["mail_trust"] = json!({"authserv_ids": [MTA]});
    let r = app.call(Method::PUT, "/api/v1/settings", &app.admin, Some(settings), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

pub(crate) async fn comments(app: &TestApp, ticket: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/tickets/{ticket}/comments"), &app.admin).await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn ticket_count(app: &TestApp) -> usize {
    app.get("/api/v1/tickets?limit=200", &app.admin).await.body["items"].as_array().map_or(0, Vec::len)
}

async fn a_message_opens_a_ticket_and_replies_thread_onto_it(b: Backend) {
    let app = with_mailbox(b).await;
    trust_the_mta(&app).await;
    let first = deliver_expecting(
        &app,
        &mail(
            "Ann Example <Ann@Customer.example>",
            "Printer on floor 3 is jammed",
            "m1@customer.example",
            "",
            "It shows error 42.",
        ),
        "opened",
    )
    .await;
    let ticket = first["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert_eq!(t["subject"], "Printer on floor 3 is jammed");
    assert_eq!(t["description"], "It shows error 42.");
    assert_eq!(t["channel"], "email");
    // The sender became a requester (no password: the address alone signs nobody in).
    let requester =
        app.get(&format!("/api/v1/users/{}", t["requester_id"].as_str().unwrap_or_default()), &app.admin).await;
    assert_eq!(requester.body["email"], "ann@customer.example");
    assert_eq!(requester.body["name"], "Ann Example");
    assert_eq!(requester.body["role"], "requester");

    // A reply naming the first message threads onto the ticket; only the new part shows.
    let reply = mail(
        "ann@customer.example",
        "Re: Printer on floor 3 is jammed",
        "m2@customer.example",
        &format!(
            "{}In-Reply-To: <m1@customer.example>\r\nReferences: <m1@customer.example>\r\n",
            dmarc_pass("customer.example")
        ),
        "I restarted it, still jammed.\r\n\r\nOn Mon, 23 Nov 2026 at 09:00, Ann wrote:\r\n> It shows error 42.\r\n",
    );
    let second = deliver_expecting(&app, &reply, "commented").await;
    assert_eq!(second["ticket_id"], ticket.as_str());
    let list = comments(&app, &ticket).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["body"], "I restarted it, still jammed.");
    assert_eq!(list[0]["internal"], false);
    // A third message that references only the reply still finds the ticket; from someone
    // who proves nothing and takes no part, it is held there for an agent.
    let third = mail(
        "bob@customer.example",
        "Re: Printer",
        "m3@customer.example",
        "References: <m2@customer.example>\r\n",
        "Same here on floor 4.",
    );
    assert_eq!(deliver_expecting(&app, &third, "held").await["ticket_id"], ticket.as_str());
    assert_eq!(ticket_count(&app).await, 1);
    // The original is kept byte for byte.
    let (status, _, raw) = app
        .download(&format!("/api/v1/mail/inbound/{}/raw", second["id"].as_str().unwrap_or_default()), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw, reply.as_bytes());
}

async fn the_same_message_twice_is_one_ticket_case_a1(b: Backend) {
    let app = with_mailbox(b).await;
    let raw = mail("ann@customer.example", "VPN down", "same@customer.example", "", "Cannot connect.");
    let first = deliver_expecting(&app, &raw, "opened").await;
    let again = deliver_expecting(&app, &raw, "duplicate").await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["duplicate_of"], first["id"]);
    // Same Message-ID with other headers and line endings (the copy another mailbox got, a
    // relay that added its trace): still the same message.
    let rewritten = format!("Received: by relay.customer.example\r\nX-Scanned: clean\r\n{raw}").replace("\r\n", "\n");
    deliver_expecting(&app, &rewritten, "duplicate").await;
    assert_eq!(ticket_count(&app).await, 1);
    // Every copy is on the log, so none goes missing silently (case A2's policy).
    let log = app.get("/api/v1/mail/inbound?status=duplicate", &app.admin).await.body;
    assert_eq!(log["items"].as_array().map_or(0, Vec::len), 2);
    // Whoever sends a Message-ID first cannot suppress a later, different message with it:
    // another sender, or other words, is another message (issue 19).
    let squatted = mail("bob@customer.example", "Printer", "squat@customer.example", "", "Printer jammed.");
    let squatter = mail("mallory@evil.example", "Hi", "squat@customer.example", "", "First!");
    deliver_expecting(&app, &squatter, "opened").await;
    let genuine = deliver_expecting(&app, &squatted, "opened").await;
    let t =
        app.get(&format!("/api/v1/tickets/{}", genuine["ticket_id"].as_str().unwrap_or_default()), &app.admin).await;
    assert_eq!(t.body["description"], "Printer jammed.");
    let edited = squatted.replace("Printer jammed.", "Printer jammed again.");
    deliver_expecting(&app, &edited, "opened").await;
    assert_eq!(ticket_count(&app).await, 4);
}

async fn messages_without_message_id_are_told_apart_by_content_case_a3(b: Backend) {
    let app = with_mailbox(b).await;
    let without_id = |body: &str| {
        format!(
            "From: ann@customer.example\r\nTo: {SUPPORT}\r\nSubject: Same subject\r\n\
             Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
        )
    };
    deliver_expecting(&app, &without_id("First problem."), "opened").await;
    deliver_expecting(&app, &without_id("Second, different problem."), "opened").await;
    // The very same bytes again are the same message.
    deliver_expecting(&app, &without_id("First problem."), "duplicate").await;
    assert_eq!(ticket_count(&app).await, 2);
}

async fn unusable_mail_is_quarantined_kept_and_retried_case_a4(b: Backend) {
    let app = with_mailbox(b).await;
    // No From at all, and a From without its closing bracket.
    let no_from = format!("To: {SUPPORT}\r\nSubject: Who am I\r\nMessage-ID: <nofrom@x.example>\r\n\r\nHello\r\n");
    let quarantined = deliver_expecting(&app, &no_from, "quarantined").await;
    assert_eq!(quarantined["status"], "quarantined");
    assert!(quarantined["error"].as_str().unwrap_or_default().contains("sender"), "{quarantined}");
    let broken = "From: foo <foo@bar.com\r\nSubject: x\r\nMessage-ID: <broken@bar.com>\r\n\r\nbody\r\n";
    let r = deliver(&app, broken).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(["opened", "quarantined"].contains(&r.body["outcome"].as_str().unwrap_or_default()), "{}", r.body);
    // Nothing blocks the next message; the empty message is stored too.
    deliver_expecting(&app, &mail("ann@customer.example", "Next", "next@customer.example", "", "Fine"), "opened").await;
    let empty = deliver(&app, "").await;
    assert_eq!(empty.body["outcome"], "quarantined");

    // Admins see the quarantine, with the raw message byte for byte.
    let list = app.get("/api/v1/mail/inbound?status=quarantined", &app.admin).await.body;
    let ids: Vec<&str> = list["items"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str()).collect();
    let id = quarantined["id"].as_str().unwrap_or_default();
    assert!(ids.contains(&id), "{list}");
    let (_, _, raw) = app.download(&format!("/api/v1/mail/inbound/{id}/raw"), &app.admin).await;
    assert_eq!(raw, no_from.as_bytes());
    // Retrying without a fix quarantines it again (counting the attempt); discarding keeps it.
    let retried = app.post(&format!("/api/v1/mail/inbound/{id}/retry"), &app.admin, json!({})).await;
    assert_eq!(retried.body["outcome"], "quarantined", "{}", retried.body);
    assert_eq!(retried.body["message"]["attempts"], 2);
    let discarded = app.post(&format!("/api/v1/mail/inbound/{id}/discard"), &app.admin, json!({})).await;
    assert_eq!(discarded.body["status"], "discarded");
    let again = app.post(&format!("/api/v1/mail/inbound/{id}/retry"), &app.admin, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A deactivated sender's mail waits in quarantine until the account is active again.
    let (user, _) = app.user_with_token("gone@customer.example", Role::Requester).await;
    app.patch(&format!("/api/v1/users/{user}"), &app.admin, json!({"active": false})).await;
    let held = deliver_expecting(
        &app,
        &mail("gone@customer.example", "Back?", "gone1@customer.example", "", "Hi"),
        "quarantined",
    )
    .await;
    app.patch(&format!("/api/v1/users/{user}"), &app.admin, json!({"active": true})).await;
    let id = held["id"].as_str().unwrap_or_default();
    let retried = app.post(&format!("/api/v1/mail/inbound/{id}/retry"), &app.admin, json!({})).await;
    assert_eq!(retried.body["outcome"], "opened", "{}", retried.body);
    assert_eq!(retried.body["message"]["status"], "processed");
}

async fn machines_mail_never_acknowledged_or_reopens_case_a13_a14(b: Backend) {
    let app = with_mailbox(b).await;
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Laptop slow", "l1@customer.example", "", "Very slow."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    app.post(&format!("/api/v1/tickets/{ticket}/resolve"), &app.admin, json!({"resolution_note": "Replaced the disk"}))
        .await;

    // An out-of-office answer on the thread: kept as an internal note, the ticket stays resolved.
    let ooo = mail(
        "ann@customer.example",
        "Automatic reply: Laptop slow",
        "ooo@customer.example",
        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <l1@customer.example>\r\n",
        "I am out of the office until Monday.",
    );
    let stored = deliver_expecting(&app, &ooo, "commented").await;
    assert_eq!(stored["automation"], "auto-reply");
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert_eq!(t["status"], "resolved");
    let notes = comments(&app, &ticket).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["internal"], true);
    assert!(notes[0]["author_id"].is_null());

    // A bounce about nothing of ours: stored, no ticket; the failed address is remembered.
    let dsn = "From: MAILER-DAEMON@mx.customer.example\r\nTo: help@desk.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
               Message-ID: <dsn1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n\
               Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\n\
               Content-Type: text/plain\r\n\r\nDelivery failed.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
               Reporting-MTA: dns; mx.customer.example\r\n\r\nFinal-Recipient: rfc822; left@customer.example\r\nAction: failed\r\n--B--\r\n";
    let bounce = deliver_expecting(&app, dsn, "ignored").await;
    assert_eq!(bounce["automation"], "bounce");
    assert_eq!(app.store.bounce_count("left@customer.example").await.unwrap_or_default(), 1);
    // An out-of-office message about no ticket opens none either.
    let stray =
        mail("carl@customer.example", "Out of Office: Carl", "ooo2@customer.example", "X-Autoreply: yes\r\n", "Away");
    deliver_expecting(&app, &stray, "ignored").await;
    assert_eq!(ticket_count(&app).await, 1);

    // A person's mail from a system that stamps every message auto-generated (A14) is still a
    // ticket; only our automatic answers are off for it.
    let stamped = mail(
        "dan@customer.example",
        "Monitor flickers",
        "d1@customer.example",
        "Auto-Submitted: auto-generated\r\n",
        "Since Monday.",
    );
    let generated = deliver_expecting(&app, &stamped, "opened").await;
    assert_eq!(generated["automation"], "generated");
}

async fn mail_from_our_own_address_is_not_a_ticket_case_a15(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    for n in 0..3 {
        let own = mail(SUPPORT, "[#1001] Your request was received", &format!("own{n}@desk.example"), "", "Loop?");
        let r = deliver_expecting(&app, &own, "ignored").await;
        assert!(r["error"].as_str().unwrap_or_default().contains("our own address"), "{r}");
    }
    // The admin is warned of the loop once, not once per message.
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent: Vec<_> = smtp.messages().iter().map(|m| read(m)).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to[0].address, "admin@example.org");
    assert!(sent[0].subject.contains("own address help@desk.example"), "{}", sent[0].subject);
    assert_eq!(ticket_count(&app).await, 0);
    // No requester was made of our own address.
    let users = app.get("/api/v1/users?limit=200", &app.admin).await.body;
    assert!(!users.to_string().contains(SUPPORT), "{users}");
}

async fn an_oversize_attachment_is_dropped_with_a_note_case_a17(b: Backend) {
    let app = with_mailbox(b).await;
    // 26 MB decoded, over the 25 MB attachment limit; a small file beside it is kept.
    let big = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
        .repeat(26 * 1024 * 1024 / 57 + 1);
    let raw = format!(
        "From: ann@customer.example\r\nTo: {SUPPORT}\r\nSubject: Logs\r\nMessage-ID: <big@customer.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
         Logs attached.\r\n--XX\r\nContent-Type: text/plain; name=small.log\r\nContent-Disposition: attachment; filename=small.log\r\n\r\n\
         all fine\r\n--XX\r\nContent-Type: application/octet-stream; name=huge.bin\r\nContent-Disposition: attachment; filename=huge.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{big}--XX--\r\n"
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    let description = t["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("Logs attached."), "{description}");
    assert!(description.contains("\"huge.bin\"") && description.contains("not kept"), "{description}");
    let files = app.get(&format!("/api/v1/tickets/{ticket}/attachments"), &app.admin).await.body;
    let names: Vec<&str> =
        files["items"].as_array().into_iter().flatten().filter_map(|f| f["filename"].as_str()).collect();
    assert_eq!(names, ["small.log"]);
    // Ann is told which file was not kept — once, though her next mail is too big as well.
    let again =
        raw.replace("big@customer.example", "big2@customer.example").replace("Subject: Logs", "Subject: More logs");
    deliver_expecting(&app, &again, "opened").await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    while out.run_due_once(app.clock.now()).await.unwrap_or_default() > 0 {}
    let told: Vec<_> = smtp.messages().iter().map(|m| read(m)).filter(|m| m.text.contains("too big to keep")).collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].to[0].address, "ann@customer.example");
    assert!(told[0].text.contains("huge.bin (") && !told[0].text.contains("small.log"), "{}", told[0].text);
}

async fn forged_references_and_guessed_numbers_open_new_tickets_case_b19_b21(b: Backend) {
    let app = with_mailbox(b).await;
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Payroll access", "p1@customer.example", "", "Please."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let number =
        app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body["number"].as_i64().unwrap_or_default();

    // A stranger guessing the number in the subject gets a ticket of their own.
    let guess =
        mail("mallory@evil.example", &format!("Re: [#{number}] Payroll access"), "g1@evil.example", "", "Add me too");
    let stranger = deliver_expecting(&app, &guess, "opened").await;
    assert_ne!(stranger["ticket_id"], ticket.as_str());
    // The requester's subject token threads; it proves nothing about who wrote it, so the
    // message is held on the ticket.
    let own = mail(
        "ann@customer.example",
        &format!("Re: [#{number}] Payroll access"),
        "p2@customer.example",
        "",
        "Any news?",
    );
    assert_eq!(deliver_expecting(&app, &own, "held").await["ticket_id"], ticket.as_str());

    // A reference in our Message-ID format with a made-up MAC is not trusted (and another
    // Ferrodesk's ids fail the same way, case B21).
    let forged_id = format!("fd.{number}.abc.0123456789abcdef01234567@desk.example");
    let forged = mail(
        "mallory@evil.example",
        "Re: hello",
        "g2@evil.example",
        &format!("In-Reply-To: <{forged_id}>\r\n"),
        "I am an agent",
    );
    let r = deliver_expecting(&app, &forged, "opened").await;
    assert_ne!(r["ticket_id"], ticket.as_str());
    // A genuine one (signed with this instance's key) threads even without a subject token;
    // naming no mail of ours to Ann, it proves nothing about her and is held.
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    let signer = ingest.signer().await.unwrap_or_else(|e| panic!("{e}"));
    let ours = signer.message_id(ferrodesk_core::ids::TicketNumber(number), false, "n0nce", "desk.example");
    let answer = mail(
        "ann@customer.example",
        "Re: your reply",
        "p3@customer.example",
        &format!("In-Reply-To: <{ours}>\r\n"),
        "Thanks!",
    );
    assert_eq!(deliver_expecting(&app, &answer, "held").await["ticket_id"], ticket.as_str());
}

async fn agents_reply_by_mail_and_mark_notes_internal(b: Backend) {
    let app = with_mailbox(b).await;
    trust_the_mta(&app).await;
    app.user_with_token("agent@desk.example", Role::Agent).await;
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Mouse broken", "k1@customer.example", "", "Left button."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let answer = mail(
        "agent@desk.example",
        "Re: Mouse broken",
        "a1@desk.example",
        &format!("{}In-Reply-To: <k1@customer.example>\r\n", dmarc_pass("desk.example")),
        "A new one is on its way.",
    );
    deliver_expecting(&app, &answer, "commented").await;
    let note = mail(
        "agent@desk.example",
        "Re: Mouse broken",
        "a2@desk.example",
        &format!("{}In-Reply-To: <k1@customer.example>\r\n", dmarc_pass("desk.example")),
        "#internal ordered from stock, cost centre 42",
    );
    deliver_expecting(&app, &note, "commented").await;
    let list = comments(&app, &ticket).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["internal"], false);
    assert_eq!(list[1]["internal"], true);
    assert_eq!(list[1]["body"], "ordered from stock, cost centre 42");
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    assert!(!t["first_response_at"].is_null(), "an agent's mail is a first response: {t}");
    // The requester never sees the note.
    let requester = t["requester_id"].as_str().unwrap_or_default().parse().unwrap_or_else(|e| panic!("{e}"));
    let token = app.token_for(requester).await;
    let theirs = app.get(&format!("/api/v1/tickets/{ticket}/comments"), &token).await.body;
    assert!(!theirs.to_string().contains("cost centre"), "{theirs}");
}

async fn the_mta_pipe_stores_or_asks_to_retry(b: Backend) {
    let app = with_mailbox(b).await;
    let raw = mail("ann@customer.example", "Phone lost", "pipe1@customer.example", "", "Please block it.");
    let run = ferrodesk(&app.database_url, &["mail", "ingest", "--mailbox", "support"], Some(&raw));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("opened ticket"), "{}", run.stdout);
    // Delivered again (the MTA retried after a timeout): stored as a duplicate, still success.
    let again = ferrodesk(&app.database_url, &["mail", "ingest", "--mailbox", "support"], Some(&raw));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.starts_with("already received"), "{}", again.stdout);
    // An unknown mailbox is a temporary failure: the MTA keeps the mail and retries.
    let unknown = ferrodesk(&app.database_url, &["mail", "ingest", "--mailbox", "nope"], Some(&raw));
    assert_eq!(unknown.code, 75, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("no mailbox named"), "{}", unknown.stderr);
    // Mailboxes from the command line.
    let add = ferrodesk(&app.database_url, &["mailbox", "add", "sales", "--address", "sales@desk.example"], None);
    assert_eq!(add.code, 0, "{}", add.stderr);
    let bad = ferrodesk(&app.database_url, &["mailbox", "add", "Sales Team", "--address", "x@desk.example"], None);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("lower-case"), "{}", bad.stderr);
    let list = ferrodesk(&app.database_url, &["mailbox", "list"], None);
    assert!(
        list.stdout.contains("sales\tsales@desk.example") && list.stdout.contains("support\thelp@desk.example"),
        "{}",
        list.stdout
    );
    // What came by pipe is on the log as such.
    let log = app.get("/api/v1/mail/inbound", &app.admin).await.body;
    assert!(
        log["items"].as_array().into_iter().flatten().all(|m| m["source"] == InboundSource::Pipe.as_str()),
        "{log}"
    );
}

/// A real SMTP server (aiosmtpd, from PyPI) on 127.0.0.1 that stores what it receives in a
/// Maildir, started and stopped by the test.
pub struct SmtpCapture {
    port: u16,
    maildir: crate::helpers::TempDir,
    child: std::process::Child,
}

impl SmtpCapture {
    pub fn start() -> Self {
        let port = crate::helpers::free_port();
        Self::start_on(port, &[])
    }

    /// `extra`: more aiosmtpd options (e.g. `-s 2000` refuses bigger messages with 552).
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let maildir = crate::helpers::TempDir::new();
        let mut child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path.join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd (scripts/test.sh installs it): {e}"));
        if crate::helpers::wait_for_port(port) {
            return Self { port, maildir, child };
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first, as raw bytes.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let dir = self.maildir.path.join("mail").join("new");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn outbox(app: &TestApp, smtp_url: &str) -> ferrodesk_mail::outbox::Outbox {
    outbox_with(app, smtp_url, ferrodesk_mail::templates::Templates::built_in())
}

fn outbox_with(
    app: &TestApp,
    smtp_url: &str,
    templates: ferrodesk_mail::templates::Templates,
) -> ferrodesk_mail::outbox::Outbox {
    let smtp = ferrodesk_mail::outbox::Smtp::from_url(smtp_url).unwrap_or_else(|e| panic!("{e}"));
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    ferrodesk_mail::outbox::Outbox::new(
        app.store.clone(),
        ingest,
        smtp,
        "https://desk.example",
        Some(crate::helpers::test_secrets()),
        std::sync::Arc::new(templates),
    )
}

pub fn read(raw: &[u8]) -> ferrodesk_mail::InboundMail {
    ferrodesk_mail::parse(raw, &Default::default())
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
}

async fn replies_go_out_threaded_and_answers_come_back_to_the_ticket(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let opened = deliver_expecting(
        &app,
        &mail("Ann <ann@customer.example>", "Wi-Fi drops", "w1@customer.example", "", "Every hour."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let number =
        app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body["number"].as_i64().unwrap_or_default();
    assert_eq!(out.run_due_once(app.clock.now()).await.unwrap_or_default(), 1);
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1, "the acknowledgement");
    let ack = read(&sent[0]);
    assert_eq!(ack.subject, format!("[#{number}] Wi-Fi drops"));
    assert_eq!(ack.to[0].address, "ann@customer.example");
    assert_eq!(ack.in_reply_to, ["w1@customer.example"]);
    assert_eq!(header(&sent[0], "Auto-Submitted").as_deref(), Some("auto-replied"));

    // An agent answers in the desk (API); the requester gets it by mail, threaded.
    let (_, agent) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let r = app
        .post(&format!("/api/v1/tickets/{ticket}/comments"), &agent, json!({"body": "Please update the driver."}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // An internal note is never mailed.
    app.post(
        &format!("/api/v1/tickets/{ticket}/comments"),
        &agent,
        json!({"body": "driver 2.1 is broken", "internal": true}),
    )
    .await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), 2, "one reply, no note");
    let reply = read(&sent[1]);
    assert!(reply.text.contains("Please update the driver."), "{}", reply.text);
    assert!(!String::from_utf8_lossy(&sent[1]).contains("driver 2.1"));
    // The conversation so far is quoted below the answer, as mail programs do.
    assert!(reply.text.contains("Ann wrote:\n> Every hour."), "{}", reply.text);
    assert!(reply.html.as_deref().unwrap_or_default().contains("<blockquote"), "{:?}", reply.html);
    assert_eq!(header(&sent[1], "Auto-Submitted"), None, "a person's answer is not automatic");
    assert_eq!(reply.references.first().map(String::as_str), Some("w1@customer.example"));
    let ours = reply.message_id.clone().unwrap_or_default();
    assert!(ours.starts_with(&format!("fd.{number}.")), "{ours}");

    // Ann answers from her mail program, quoting our message, without the ticket number.
    let answer = format!(
        "From: Ann <ann@customer.example>\r\nTo: {SUPPORT}\r\nSubject: Re: Wi-Fi\r\nMessage-ID: <w2@customer.example>\r\n\
         In-Reply-To: <{ours}>\r\nReferences: <w1@customer.example> <{ours}>\r\n\r\nDone, it works now. Thanks!\r\n\r\n\
         On Mon, 23 Nov 2026, Service desk <{SUPPORT}> wrote:\r\n> {}\r\n> Please update the driver.\r\n",
        ferrodesk_mail::reply::REPLY_ABOVE_MARKER
    );
    assert_eq!(deliver_expecting(&app, &answer, "commented").await["ticket_id"], ticket.as_str());
    let list = comments(&app, &ticket).await;
    assert_eq!(list.last().map(|c| c["body"].clone()), Some(json!("Done, it works now. Thanks!")));
    // Her answer is no cause for mail to herself.
    assert_eq!(out.run_due_once(app.clock.now()).await.unwrap_or_default(), 0);
}

async fn acknowledgements_are_rate_limited_and_never_sent_to_machines_case_j69(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    for i in 0..5 {
        let m = mail("spoofed@victim.example", &format!("Request {i}"), &format!("s{i}@victim.example"), "", "hello");
        deliver_expecting(&app, &m, "opened").await;
    }
    let bulk = mail("news@vendor.example", "Newsletter", "n1@vendor.example", "Precedence: bulk\r\n", "Buy now");
    deliver_expecting(&app, &bulk, "opened").await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1, "one acknowledgement per sender per hour, none to bulk mail");
    assert_eq!(read(&sent[0]).to[0].address, "spoofed@victim.example");
    // An hour later the sender may get one again.
    app.clock.advance(std::time::Duration::from_secs(3601));
    deliver_expecting(&app, &mail("spoofed@victim.example", "Later", "s9@victim.example", "", "again"), "opened").await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(smtp.messages().len(), 2);
    // Many forged senders at one domain: at most 50 acknowledgements to it per hour.
    let cap = ferrodesk_mail::ingest::ACKS_PER_DOMAIN_HOUR as usize;
    for i in 0..cap + 5 {
        let m = mail(&format!("forged{i}@mass.example"), "Hello", &format!("m{i}@mass.example"), "", "hi");
        deliver_expecting(&app, &m, "opened").await;
    }
    while out.run_due_once(app.clock.now()).await.unwrap_or_default() > 0 {}
    let to_domain = smtp.messages().iter().filter(|m| read(m).to[0].address.ends_with("@mass.example")).count();
    assert_eq!(to_domain, cap);
    // The admin was alerted, once, however many acknowledgements were held back.
    let alerts: Vec<_> =
        smtp.messages().iter().map(|m| read(m)).filter(|m| m.to[0].address == "admin@example.org").collect();
    assert_eq!(alerts.len(), 1, "{:?}", alerts.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert_eq!(alerts[0].subject, "Acknowledgements to mass.example are paused");
    assert!(alerts[0].text.contains("More than 50 new requests"), "{}", alerts[0].text);
    assert!(alerts[0].automation.is_automatic());
}

async fn a_relay_down_for_hours_gets_each_mail_once_and_refusals_show_on_the_ticket_case_k78(b: Backend) {
    let app = with_mailbox(b).await;
    let (down, port) = crate::helpers::reserved_port();
    let out = outbox(&app, &format!("smtp://127.0.0.1:{port}"));
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Disk full", "d1@customer.example", "", "C: is full"),
        "opened",
    )
    .await;
    let ticket: String = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    // The relay is down: the job stays queued with the reason, retried later.
    let mut now = app.clock.now();
    assert_eq!(out.run_due_once(now).await.unwrap_or_default(), 1);
    let jobs = app.store.ticket_jobs(ticket.parse().unwrap_or_else(|e| panic!("{e}"))).await.unwrap_or_default();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, ferrodesk_core::jobs::JobState::Queued);
    assert!(jobs[0].last_error.as_deref().unwrap_or_default().contains("not reachable"), "{:?}", jobs[0].last_error);
    assert_eq!(out.run_due_once(now).await.unwrap_or_default(), 0, "not due again before its backoff");
    // Two hours of retries with the relay down.
    for _ in 0..12 {
        now = now.checked_add(jiff::SignedDuration::from_mins(10)).unwrap_or(now);
        out.run_due_once(now).await.unwrap_or_else(|e| panic!("{e}"));
    }
    // The relay is back: the mail goes out once, and only once.
    drop(down);
    let smtp = SmtpCapture::start_on(port, &[]);
    now = now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap_or(now);
    assert_eq!(out.run_due_once(now).await.unwrap_or_default(), 1);
    now = now.checked_add(jiff::SignedDuration::from_hours(3)).unwrap_or(now);
    assert_eq!(out.run_due_once(now).await.unwrap_or_default(), 0);
    assert_eq!(smtp.messages().len(), 1);
    drop(smtp);

    // A relay that refuses the message for good (552: too big): given up at once, and the
    // agents see it on the ticket.
    let strict = SmtpCapture::start_on(port, &["-s", "300"]);
    let (_, agent) = app.user_with_token("agent@desk.example", Role::Agent).await;
    app.post(&format!("/api/v1/tickets/{ticket}/comments"), &agent, json!({"body": "Cleaned up the temp folder."}))
        .await;
    assert_eq!(out.run_due_once(now).await.unwrap_or_default(), 1);
    assert_eq!(strict.messages().len(), 0);
    let jobs = app.store.ticket_jobs(ticket.parse().unwrap_or_else(|e| panic!("{e}"))).await.unwrap_or_default();
    assert_eq!(jobs.last().map(|j| j.state), Some(ferrodesk_core::jobs::JobState::Dead));
    let notes = comments(&app, &ticket).await;
    let note = notes.iter().find(|c| c["internal"] == true).cloned().unwrap_or_default();
    assert!(note["body"].as_str().unwrap_or_default().contains("could not be delivered"), "{notes:?}");
}

async fn two_desks_acknowledging_each_other_do_not_loop_case_j70(b: Backend) {
    // Desk A's support address is a requester at desk B and vice versa (a misconfiguration
    // that real helpdesks turn into endless mail).
    let a = with_mailbox(b).await;
    let b_app = TestApp::spawn(b).await;
    let r = b_app
        .post("/api/v1/mailboxes", &b_app.admin, json!({"name": "support", "address": "desk@other.example"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let smtp = SmtpCapture::start();
    let (out_a, out_b) = (outbox(&a, &smtp.url()), outbox(&b_app, &smtp.url()));
    // Someone at B's address (a person) writes to A.
    let first = mail("desk@other.example", "Hello from the other desk", "x1@other.example", "", "Can you help?");
    deliver_expecting(&a, &first, "opened").await;
    // Shuttle whatever each desk sends to the other, until quiet (bounded).
    let mut delivered = 0;
    for _ in 0..10 {
        out_a.run_due_once(a.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        out_b.run_due_once(b_app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let all = smtp.messages();
        if all.len() == delivered {
            break;
        }
        for raw in &all[delivered..] {
            let to = read(raw).to.first().map(|t| t.address.clone()).unwrap_or_default();
            let target = if to == SUPPORT { &a } else { &b_app };
            let text = String::from_utf8_lossy(raw).into_owned();
            deliver(target, &text).await;
        }
        delivered = all.len();
    }
    assert_eq!(delivered, 1, "A acknowledges once; B sees an automatic reply and stays quiet");
    assert_eq!(ticket_count(&a).await, 1);
    assert_eq!(ticket_count(&b_app).await, 0);
}

async fn hostile_html_and_names_stay_text_case_a9_a11(b: Backend) {
    let app = with_mailbox(b).await;
    let subject = "'> <script>alert(1)</script>";
    let raw = format!(
        "From: \"\\\"><img src=x onerror=alert(1)>\" <evil@x.example>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\
         Message-ID: <xss@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
         --XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=\"x()\">Hello <b>desk</b></p><script>alert(2)</script>\
         <iframe src=\" javascript:alert(3)\"></iframe><img src=\"http://10.0.0.5/admin\"><form action=\"http://evil\"><input></form>\r\n\
         --XX\r\nContent-Type: application/pdf; name=\"\\\"><svg onload=alert(1)>.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"\\\"><svg onload=alert(1)>.pdf\"\r\n\r\n%PDF-1.4\r\n--XX--\r\n"
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    // The HTML-only body became text: the words stay, the active parts are gone.
    let description = t["description"].as_str().unwrap_or_default();
    assert!(description.contains("Hello desk"), "{description}");
    for bad in ["<script", "alert(2)", "javascript:", "onclick", "<iframe", "<form"] {
        assert!(!description.contains(bad), "{bad} in {description}");
    }
    // The API returns the subject as the text it is (JSON escapes it).
    assert_eq!(t["subject"], subject);
    // The desk shows subject, sender name and file name as text, never as markup.
    let (admin, _) = app.user_with_token("desk-admin@desk.example", Role::Admin).await;
    app.set_password(admin, "a long enough password").await;
    let (cookie, _) = app.login("desk-admin@desk.example", "a long enough password").await;
    let number = t["number"].as_i64().unwrap_or_default();
    for page in [format!("/desk/tickets/{number}"), "/desk?view=open".to_owned()] {
        let html = crate::helpers::page_html(&app.http, &app.base, &cookie, &page).await;
        assert!(html.contains("alert(1)"), "{page} shows the subject");
        for live in ["<script>alert(1)", "<img src=x onerror", "<svg onload"] {
            assert!(!html.contains(live), "{live} is live markup on {page}");
        }
    }
}

async fn the_date_header_is_not_trusted_case_a16(b: Backend) {
    let app = with_mailbox(b).await;
    let before = app.clock.now();
    for (i, date) in ["Date: Sun, 1 Jan 2050 00:00:00 +0000\r\n", "", "Date: yesterday-ish\r\n"].iter().enumerate() {
        let raw = format!(
            "From: ann@customer.example\r\nTo: {SUPPORT}\r\nSubject: Dated {i}\r\nMessage-ID: <date{i}@customer.example>\r\n{date}\r\nBody\r\n"
        );
        let opened = deliver_expecting(&app, &raw, "opened").await;
        let t = app
            .get(&format!("/api/v1/tickets/{}", opened["ticket_id"].as_str().unwrap_or_default()), &app.admin)
            .await
            .body;
        let created: jiff::Timestamp =
            t["created_at"].as_str().unwrap_or_default().parse().unwrap_or_else(|e| panic!("{e}"));
        // Sorted and timed by when we received it, not by what the sender claims.
        assert!(created >= before && created.as_second() - before.as_second() < 60, "{date}: {created}");
    }
}

async fn admins_manage_mailboxes_and_the_quarantine_in_the_ui(b: Backend) {
    let app = with_mailbox(b).await;
    let held = deliver_expecting(
        &app,
        &format!("To: {SUPPORT}\r\nSubject: Nobody\r\nMessage-ID: <q1@x.example>\r\n\r\nwho?\r\n"),
        "quarantined",
    )
    .await;
    let held = held["id"].as_str().unwrap_or_default().to_owned();
    let (admin, _) = app.user_with_token("mail-admin@desk.example", Role::Admin).await;
    app.set_password(admin, "a long enough password").await;
    let (cookie, csrf) = app.login("mail-admin@desk.example", "a long enough password").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let html = crate::helpers::page_html(&client, &app.base, &cookie, "/admin/mail").await;
    assert!(html.contains(SUPPORT) && html.contains("relay or pipe"), "{html}");
    assert!(html.contains("Nobody") && html.contains("no usable sender"), "the quarantine is listed");
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let (client, cookie, base) = (client.clone(), cookie.clone(), app.base.clone());
        async move {
            client
                .post(format!("{base}{path}"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    // Add a mailbox; a bad name is refused with the reason.
    let r = post(
        "/admin/mail/mailboxes".into(),
        vec![("csrf", csrf.clone()), ("name", "sales".into()), ("address", "sales@desk.example".into())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let bad = post(
        "/admin/mail/mailboxes".into(),
        vec![("csrf", csrf.clone()), ("name", "Sales Team".into()), ("address", "x@desk.example".into())],
    )
    .await;
    assert!(bad.status().is_client_error());
    // An IMAP password without a server key would be refused; the test server has one.
    let r = post(
        "/admin/mail/mailboxes".into(),
        vec![
            ("csrf", csrf.clone()),
            ("name", "imap".into()),
            ("address", "imap@desk.example".into()),
            ("imap_host", "imap.example.org".into()),
            ("imap_security", "tls".into()),
            ("imap_user", "u".into()),
            ("imap_password", "p4ss".into()),
            ("imap_folder", "INBOX".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = crate::helpers::page_html(&client, &app.base, &cookie, "/admin/mail").await;
    assert!(html.contains("sales@desk.example") && html.contains("IMAP imap.example.org:993 INBOX"), "{html}");
    assert!(!html.contains("p4ss"));
    // Discard the quarantined message; without the CSRF token nothing happens.
    let forged = post(format!("/admin/mail/inbound/{held}/discard"), vec![("csrf", "nope".into())]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let r = post(format!("/admin/mail/inbound/{held}/discard"), vec![("csrf", csrf.clone())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&format!("/api/v1/mail/inbound/{held}"), &app.admin).await.body["status"], "discarded");
    // Agents may not see the page.
    let (agent, _) = app.user_with_token("agent@desk.example", Role::Agent).await;
    app.set_password(agent, "a long enough password").await;
    let (agent_cookie, _) = app.login("agent@desk.example", "a long enough password").await;
    let r = client
        .get(format!("{}/admin/mail", app.base))
        .header("cookie", agent_cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn mail_stored_before_a_crash_is_processed_after_it(b: Backend) {
    let app = with_mailbox(b).await;
    // A message stored, then the process died before processing it: it is `pending`.
    let raw = mail("ann@customer.example", "Stored then crashed", "crash1@customer.example", "", "Still here?");
    let mailbox = app.store.mailboxes().await.unwrap_or_default().remove(0);
    let record = ferrodesk_store::NewInbound {
        id: uuid::Uuid::now_v7(),
        mailbox_id: Some(mailbox.id),
        source: InboundSource::Pipe,
        received_at: app.clock.now(),
        raw: raw.clone().into_bytes().into(),
        message_id: Some("crash1@customer.example".into()),
        dedup_key: ferrodesk_mail::ingest::dedup_key(
            Some("crash1@customer.example"),
            Some("ann@customer.example"),
            raw.as_bytes(),
        ),
        from_address: Some("ann@customer.example".into()),
        subject: "Stored then crashed".into(),
    };
    let id = record.id;
    app.store.receive_inbound(record).await.unwrap_or_else(|e| panic!("{e}"));
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    // Fresh messages are left to the delivery that is processing them…
    assert_eq!(ingest.process_pending(app.clock.now()).await.unwrap_or_default(), 0);
    // …a minute later, the sweep takes them.
    let later = app.clock.now().checked_add(jiff::SignedDuration::from_mins(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ingest.process_pending(later).await.unwrap_or_default(), 1);
    let message = app.get(&format!("/api/v1/mail/inbound/{id}"), &app.admin).await.body;
    assert_eq!(message["status"], "processed");
    assert_eq!(ticket_count(&app).await, 1);
    // The MTA's retry of the same message changes nothing.
    deliver_expecting(&app, &raw, "duplicate").await;
    assert_eq!(ticket_count(&app).await, 1);
}

/// A small filesystem of its own (tmpfs), unmounted when dropped. Needs root, as the test
/// command runs; it fails rather than skips otherwise.
struct SmallDisk {
    dir: crate::helpers::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = crate::helpers::TempDir::new();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir.path)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(status.success(), "mounting a tmpfs needs root (scripts/test.sh runs as root)");
        Self { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a closing database connection may still hold a file for a moment.
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir.path).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_mail_and_loses_nothing_case_k76() {
    let disk = SmallDisk::mount(8);
    let url = format!("sqlite://{}", disk.dir.path.join("db/ferrodesk.db").display());
    assert_eq!(ferrodesk(&url, &["migrate"], None).code, 0);
    assert_eq!(ferrodesk(&url, &["mailbox", "add", "support", "--address", SUPPORT], None).code, 0);
    // Fill the disk but for a little.
    let filler = disk.dir.path.join("filler");
    let free = || {
        let out = std::process::Command::new("df").arg("--output=avail").arg("-B1").arg(&disk.dir.path).output();
        out.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).and_then(|l| l.trim().parse::<u64>().ok()))
            .unwrap_or(0)
    };
    let size = free().saturating_sub(200 * 1024);
    std::fs::write(&filler, vec![0u8; size as usize]).unwrap_or_else(|e| panic!("{e}"));
    // A message with a 1 MB attachment cannot be stored: the MTA is told to retry (75), with why.
    let attachment = "QUFB".repeat(1024 * 1024 / 3);
    let raw = format!(
        "From: ann@customer.example\r\nTo: {SUPPORT}\r\nSubject: Big log\r\nMessage-ID: <full1@customer.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee log.\r\n\
         --XX\r\nContent-Type: application/octet-stream; name=big.log\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--XX--\r\n"
    );
    let run = ferrodesk(&url, &["mail", "ingest", "--mailbox", "support"], Some(&raw));
    assert_eq!(run.code, 75, "stdout {} stderr {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("disk is full"), "{}", run.stderr);
    // Nothing half-written: no inbound row, no ticket, no orphan attachment.
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("{e}"));
    let store = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(store.list_inbound(None, None, 10).await.unwrap_or_default().is_empty());
    assert_eq!(store.ticket_counts().await.unwrap_or_default().iter().map(|(_, n)| n).sum::<i64>(), 0);
    // Space is back: the MTA's retry goes through, whole.
    let run = ferrodesk(&url, &["mail", "ingest", "--mailbox", "support"], Some(&raw));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("opened ticket"), "{}", run.stdout);
    let stored = store.list_inbound(None, None, 10).await.unwrap_or_default();
    assert_eq!(stored.len(), 1);
    let ticket = stored[0].ticket_id.unwrap_or_else(|| panic!("no ticket"));
    let files = store.attachments(ticket, true).await.unwrap_or_default();
    assert_eq!(files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>(), ["big.log"]);
    drop(store);
}

async fn sender_domains_and_floods_wait_for_an_admin(b: Backend) {
    let app = with_mailbox(b).await;
    let mut settings = app.get("/api/v1/settings", &app.admin).await.body;
    settings["mail_senders"] = json!({"allow": ["customer.example"], "deny": ["bad.customer.example"]});
    let r = app.call(Method::PUT, "/api/v1/settings", &app.admin, Some(settings.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut wrong = settings.clone();
    wrong["mail_senders"] = json!({"allow": ["not a domain"], "deny": []});
    assert_eq!(
        app.call(Method::PUT, "/api/v1/settings", &app.admin, Some(wrong), &[]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let denied = deliver_expecting(
        &app,
        &mail("eve@bad.customer.example", "Hi", "d1@bad.customer.example", "", "x"),
        "quarantined",
    )
    .await;
    assert!(denied["error"].as_str().unwrap_or_default().contains("deny list"), "{denied}");
    let outside =
        deliver_expecting(&app, &mail("someone@other.example", "Hi", "o1@other.example", "", "x"), "quarantined").await;
    assert!(outside["error"].as_str().unwrap_or_default().contains("allow list"), "{outside}");
    let opened = deliver_expecting(
        &app,
        &mail("ann@it.customer.example", "Laptop", "ok1@it.customer.example", "", "x"),
        "opened",
    )
    .await;
    // Staff answer by mail from a domain that is not on the customers' list, once proven
    // to be staff: merely claiming a staff address does not pass the list.
    app.user_with_token("agent@desk.example", Role::Agent).await;
    let claimed = mail(
        "agent@desk.example",
        "Re: Laptop",
        "ok2@desk.example",
        "In-Reply-To: <ok1@it.customer.example>\r\n",
        "On it.",
    );
    assert!(
        deliver_expecting(&app, &claimed, "quarantined").await["error"]
            .as_str()
            .unwrap_or_default()
            .contains("allow list")
    );
    trust_the_mta(&app).await;
    let answer = mail(
        "agent@desk.example",
        "Re: Laptop",
        "ok3@desk.example",
        &format!("{}In-Reply-To: <ok1@it.customer.example>\r\n", dmarc_pass("desk.example")),
        "On it.",
    );
    assert_eq!(deliver_expecting(&app, &answer, "commented").await["ticket_id"], opened["ticket_id"]);

    // One sender opening ticket after ticket: the 21st within the hour waits for an admin.
    for i in 0..20 {
        deliver_expecting(
            &app,
            &mail("flood@customer.example", &format!("Flood {i}"), &format!("f{i}@customer.example"), "", "x"),
            "opened",
        )
        .await;
    }
    let held = deliver_expecting(
        &app,
        &mail("flood@customer.example", "Flood 20", "f20@customer.example", "", "x"),
        "quarantined",
    )
    .await;
    assert!(held["error"].as_str().unwrap_or_default().contains("within an hour"), "{held}");
    deliver_expecting(
        &app,
        &mail("flood@customer.example", "Flood 21", "f21@customer.example", "", "x"),
        "quarantined",
    )
    .await;
    // The admin hears of it once.
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    while out.run_due_once(app.clock.now()).await.unwrap_or_default() > 0 {}
    let alerts: Vec<_> =
        smtp.messages().iter().map(|m| read(m)).filter(|m| m.to[0].address == "admin@example.org").collect();
    assert_eq!(
        alerts.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["Mail from flood@customer.example is held for review"]
    );
    // An hour later the admin's retry goes through.
    app.clock.advance(std::time::Duration::from_secs(3700));
    let retried = app
        .post(&format!("/api/v1/mail/inbound/{}/retry", held["id"].as_str().unwrap_or_default()), &app.admin, json!({}))
        .await;
    assert_eq!(retried.body["outcome"], "opened", "{}", retried.body);
}

async fn the_assignee_hears_of_requester_replies_and_can_answer_by_mail(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let (agent, _) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Monitor dark", "md1@customer.example", "", "No picture."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let r = app.patch(&format!("/api/v1/tickets/{ticket}"), &app.admin, json!({"assignee_id": agent})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let before = smtp.messages().len();
    // The assignment itself was mailed to the agent (someone else assigned it).
    let assigned =
        smtp.messages().iter().map(|m| read(m)).filter(|m| m.text.contains("is now assigned to you")).count();
    assert_eq!(assigned, 1);
    // Ann adds something by answering our acknowledgement (which proves it is her): the
    // assignee is told, with a link into the desk.
    let ack = smtp
        .messages()
        .iter()
        .map(|m| read(m))
        .find(|m| m.to[0].address == "ann@customer.example")
        .unwrap_or_else(|| panic!("no acknowledgement to Ann"));
    let more = mail(
        "ann@customer.example",
        "Re: Monitor dark",
        "md2@customer.example",
        &format!(
            "In-Reply-To: <{}>\r\nReferences: <md1@customer.example>\r\n",
            ack.message_id.clone().unwrap_or_default()
        ),
        "The power light blinks orange.",
    );
    deliver_expecting(&app, &more, "commented").await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), before + 1);
    let note = read(&sent[before]);
    assert_eq!(note.to[0].address, "agent@desk.example");
    assert!(note.text.contains("power light blinks orange") && note.text.contains("/desk/tickets/"), "{}", note.text);
    assert!(note.automation.is_automatic(), "a notification says it is automatic");
    // The agent answers that mail from their mail program: a public answer on the ticket,
    // which goes on to Ann.
    let answer = mail(
        "agent@desk.example",
        "Re: Monitor dark",
        "md3@desk.example",
        &format!("In-Reply-To: <{}>\r\n", note.message_id.clone().unwrap_or_default()),
        "Swap the cable, please.\r\n\r\nOn Monday, Service desk wrote:\r\n> The power light blinks orange.",
    );
    deliver_expecting(&app, &answer, "commented").await;
    let list = comments(&app, &ticket).await;
    let last = list.last().cloned().unwrap_or_default();
    assert_eq!(last["body"], "Swap the cable, please.");
    assert_eq!(last["internal"], false);
    assert_eq!(last["author_id"], json!(agent));
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    let to_ann = read(&sent[sent.len() - 1]);
    assert_eq!(to_ann.to[0].address, "ann@customer.example");
    assert!(to_ann.text.contains("Swap the cable"), "{}", to_ann.text);
}

async fn status_mail_carries_links_that_act_once_and_expire(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let open =
        |n: &str| mail("ann@customer.example", &format!("Toner {n}"), &format!("tn{n}@customer.example"), "", "Empty.");
    let first =
        deliver_expecting(&app, &open("1"), "opened").await["ticket_id"].as_str().unwrap_or_default().to_owned();
    let second =
        deliver_expecting(&app, &open("2"), "opened").await["ticket_id"].as_str().unwrap_or_default().to_owned();
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut seen = smtp.messages().len();
    let mut next_mail = || {
        let sent = smtp.messages();
        assert_eq!(sent.len(), seen + 1, "one more mail");
        seen = sent.len();
        read(&sent[seen - 1])
    };

    // Waiting for the requester: she is asked.
    let r = app
        .patch(
            &format!("/api/v1/tickets/{first}"),
            &app.admin,
            json!({"status": "pending", "pending_reason": "requester"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(next_mail().text.contains("we need something from you"));

    // Resolved: the mail carries the note and two signed links to our own address.
    app.post(
        &format!("/api/v1/tickets/{first}/resolve"),
        &app.admin,
        json!({"resolution_note": "Replaced the toner."}),
    )
    .await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let resolved = next_mail();
    assert!(resolved.text.contains("Replaced the toner."), "{}", resolved.text);
    let links: Vec<String> = resolved
        .text
        .split_whitespace()
        .filter(|w| w.starts_with("https://desk.example/portal/by-mail?"))
        .map(|w| w.replace("https://desk.example", &app.base))
        .collect();
    assert_eq!(links.len(), 2, "{}", resolved.text);
    let confirm = links.iter().find(|l| l.contains("a=confirm")).cloned().unwrap_or_default();
    let client = reqwest::Client::new();
    // Opening the link changes nothing: it shows a button.
    let page = client.get(&confirm).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap_or_default().contains("Yes, it is solved"));
    assert_eq!(app.get(&format!("/api/v1/tickets/{first}"), &app.admin).await.body["status"], "resolved");
    let params: Vec<(String, String)> = confirm
        .split_once('?')
        .map(|(_, q)| {
            q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        })
        .unwrap_or_default();
    let post = |params: Vec<(String, String)>| {
        let (client, base) = (client.clone(), app.base.clone());
        async move {
            client
                .post(format!("{base}/portal/by-mail"))
                .form(&params)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .status()
        }
    };
    // A changed signature does nothing; the real one closes the ticket, once.
    let mut forged = params.clone();
    if let Some(s) = forged.iter_mut().find(|(k, _)| k == "s") {
        // Another first character (whatever the real one is).
        let other = if s.1.starts_with('A') { 'B' } else { 'A' };
        s.1 = format!("{other}{}", &s.1[1..]);
    }
    assert_eq!(post(forged).await, StatusCode::BAD_REQUEST);
    assert_eq!(post(params.clone()).await, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/tickets/{first}"), &app.admin).await.body["status"], "closed");
    assert_eq!(post(params).await, StatusCode::CONFLICT);

    // The reopen link of the other ticket works… but not after 14 days.
    app.post(&format!("/api/v1/tickets/{second}/resolve"), &app.admin, json!({"resolution_note": "Done."})).await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let mail2 = next_mail();
    let reopen = mail2.text.split_whitespace().find(|w| w.contains("a=reopen")).unwrap_or_default().to_owned();
    let params: Vec<(String, String)> = reopen
        .split_once('?')
        .map(|(_, q)| {
            q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        })
        .unwrap_or_default();
    app.clock.advance(std::time::Duration::from_secs(15 * 24 * 3600));
    assert_eq!(post(params.clone()).await, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("/api/v1/tickets/{second}"), &app.admin).await.body["status"], "resolved");
}

async fn admins_switch_notifications_off(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let mut settings = app.get("/api/v1/settings", &app.admin).await.body;
    assert_eq!(settings["disabled_notifications"], json!([]));
    settings["disabled_notifications"] = json!(["received", "no_such_thing"]);
    let r = app.call(Method::PUT, "/api/v1/settings", &app.admin, Some(settings.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    settings["disabled_notifications"] = json!(["received"]);
    let r = app.call(Method::PUT, "/api/v1/settings", &app.admin, Some(settings), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // No acknowledgement; an agent's answer still goes out.
    let opened =
        deliver_expecting(&app, &mail("ann@customer.example", "Quiet", "q1@customer.example", "", "x"), "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let (_, agent) = app.user_with_token("agent@desk.example", Role::Agent).await;
    app.post(&format!("/api/v1/tickets/{ticket}/comments"), &agent, json!({"body": "Looking into it."})).await;
    while out.run_due_once(app.clock.now()).await.unwrap_or_default() > 0 {}
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1, "only the answer");
    assert!(read(&sent[0]).text.contains("Looking into it."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_templates_are_overridden_and_checked_at_start_up() {
    let dir = crate::helpers::TempDir::new();
    let templates = dir.path.join("templates");
    let templates_arg = templates.to_string_lossy().into_owned();
    let (url, _db) = crate::helpers::fresh_database(Backend::Sqlite).await;
    // Exported defaults are a working set.
    let export = ferrodesk(&url, &["templates", "export", &templates_arg], None);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(templates.join("agent_reply.html").is_file());
    assert_eq!(ferrodesk(&url, &["templates", "check", &templates_arg], None).code, 0);
    // A broken template stops the server before it starts, naming the file and the line.
    std::fs::write(
        templates.join("resolved.html"),
        "{% extends \"_layout.html\" %}{% block body %}\n<a href=\"{{ links.confirm }\">yes</a>{% endblock %}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let serve = ferrodesk(&url, &["serve", "--listen", "127.0.0.1:0", "--templates", &templates_arg], None);
    assert_eq!(serve.code, 78, "{}", serve.stderr);
    assert!(serve.stderr.contains("resolved.html, line 2: syntax error"), "{}", serve.stderr);
    std::fs::remove_file(templates.join("resolved.html")).unwrap_or_else(|e| panic!("{e}"));

    // An edited answer template is what the requester gets.
    std::fs::write(
        templates.join("agent_reply.txt"),
        "{{ reply_marker }}\nDear {{ recipient.name }},\n\n{{ comment.body }}\n\nACME IT, ticket {{ ticket.number }}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let app = with_mailbox(Backend::Sqlite).await;
    let smtp = SmtpCapture::start();
    let loaded = ferrodesk_mail::templates::Templates::load(&templates).unwrap_or_else(|e| panic!("{e}"));
    let out = outbox_with(&app, &smtp.url(), loaded);
    let (ann, _) = app.user_with_token("ann@customer.example", Role::Requester).await;
    let (_, agent) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let r = app
        .post("/api/v1/tickets", &app.admin, json!({"subject": "VPN", "description": "No VPN.", "requester_id": ann}))
        .await;
    let (ticket, number) = (r.body["id"].as_str().unwrap_or_default().to_owned(), r.body["number"].clone());
    let r = app.post(&format!("/api/v1/tickets/{ticket}/comments"), &agent, json!({"body": "Try <b>again</b>."})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    let reply = read(&sent[0]);
    assert!(reply.text.contains("Dear Test requester,\n\nTry <b>again</b>."), "{}", reply.text);
    assert!(reply.text.contains(&format!("ACME IT, ticket {number}")), "{}", reply.text);
    // The HTML part is still the built-in one, and escapes what the agent typed.
    let html = reply.html.unwrap_or_default();
    assert!(html.contains("Try &lt;b&gt;again&lt;/b&gt;.") && !html.contains("<b>"), "{html}");
}

async fn an_answer_to_a_note_mail_stays_internal_case_b22(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let (assignee, _) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let (_, colleague) = app.user_with_token("second@desk.example", Role::Agent).await;
    let opened = deliver_expecting(
        &app,
        &mail("ann@customer.example", "Laptop fan loud", "lf1@customer.example", "", "It roars."),
        "opened",
    )
    .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let r = app.patch(&format!("/api/v1/tickets/{ticket}"), &app.admin, json!({"assignee_id": assignee})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let before = smtp.messages().len();
    // A colleague's note reaches the assignee, marked internal in subject, text and Message-ID.
    let r = app
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            &colleague,
            json!({"body": "Known batch: fan part 77-A.", "internal": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), before + 1);
    let note_mail = read(&sent[before]);
    assert_eq!(note_mail.to[0].address, "agent@desk.example");
    assert!(note_mail.subject.contains("(internal)"), "{}", note_mail.subject);
    assert!(note_mail.text.contains("fan part 77-A"), "{}", note_mail.text);
    let note_id = note_mail.message_id.clone().unwrap_or_default();
    assert!(note_id.starts_with("fdn."), "{note_id}");

    // The assignee answers it from a mail program without any marker: still a note; Ann gets nothing.
    let answer = mail(
        "agent@desk.example",
        "Re: [#1] (internal) Laptop fan loud",
        "lf2@desk.example",
        &format!("In-Reply-To: <{note_id}>\r\nReferences: <lf1@customer.example> <{note_id}>\r\n"),
        "Ordered the part; vendor says Tuesday.",
    );
    deliver_expecting(&app, &answer, "commented").await;
    let last = comments(&app, &ticket).await.last().cloned().unwrap_or_default();
    assert_eq!(last["body"], "Ordered the part; vendor says Tuesday.");
    assert_eq!(last["internal"], true, "{last}");
    assert_eq!(
        out.run_due_once(app.clock.now()).await.unwrap_or_default(),
        0,
        "nothing to mail: the assignee wrote it"
    );
    // Ann sees neither note in the portal API.
    let ann = ferrodesk_core::user::EmailAddress::parse("ann@customer.example").unwrap_or_else(|e| panic!("{e}"));
    let ann = app.store.user_by_email(&ann).await.ok().flatten().unwrap_or_else(|| panic!("no Ann")).0;
    let ann_token = app.token_for(ann.id).await;
    let theirs = app.get(&format!("/api/v1/tickets/{ticket}/comments"), &ann_token).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert!(!theirs.body.to_string().contains("vendor says Tuesday"), "{}", theirs.body);

    // A public answer later does not name the note's mail, so Ann's reply to it stays public.
    let r = app
        .post(&format!("/api/v1/tickets/{ticket}/comments"), &colleague, json!({"body": "A new fan is on its way."}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let to_ann = smtp.messages().last().cloned().unwrap_or_default();
    let public = read(&to_ann);
    assert_eq!(public.to[0].address, "ann@customer.example");
    assert!(!String::from_utf8_lossy(&to_ann).contains("fdn."), "the note's id must not be in the thread");
    assert!(!String::from_utf8_lossy(&to_ann).contains("77-A"), "no note is quoted");
    let reply = mail(
        "ann@customer.example",
        "Re: Laptop fan loud",
        "lf3@customer.example",
        &format!("In-Reply-To: <{}>\r\n", public.message_id.clone().unwrap_or_default()),
        "Thanks!",
    );
    deliver_expecting(&app, &reply, "commented").await;
    let last = comments(&app, &ticket).await.last().cloned().unwrap_or_default();
    assert_eq!((last["body"].clone(), last["internal"].clone()), (json!("Thanks!"), json!(false)));
}

async fn copied_people_watch_but_gain_nothing_and_verification_mail_is_flagged_case_b20(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let (_, agent_token) = app.user_with_token("agent@desk.example", Role::Agent).await;
    // Someone else's older ticket, which the copied person must never see.
    deliver_expecting(&app, &mail("carl@customer.example", "Old", "old1@customer.example", "", "Mine."), "opened")
        .await;
    // An outsider writes in and copies a victim (and our own address, and themselves).
    let raw = mail(
        "Mallory <mallory@evil.example>",
        "Account question",
        "b20a@evil.example",
        &format!(
            "Cc: victim@customer.example, {SUPPORT}, Mallory <mallory@evil.example>, Victim <VICTIM@customer.example>\r\n"
        ),
        "Please tell us about the account.",
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = app.get(&format!("/api/v1/tickets/{ticket}"), &app.admin).await.body;
    // Mallory proves nothing about who she is: the copied person is not made a watcher, gets
    // no account (so no password reset and no portal), and the agents are told who was copied.
    assert_eq!(t["watchers"], json!([]), "nobody is copied in by an unproven sender: {t}");
    let victim_address =
        ferrodesk_core::user::EmailAddress::parse("victim@customer.example").unwrap_or_else(|e| panic!("{e}"));
    assert!(app.store.user_by_email(&victim_address).await.ok().flatten().is_none(), "no account for the victim");
    let note = comments(&app, &ticket).await.into_iter().next().unwrap_or_default();
    assert_eq!(note["internal"], true, "{note}");
    assert!(note["body"].as_str().unwrap_or_default().contains("not made watchers"), "{note}");
    assert!(note["body"].as_str().unwrap_or_default().contains("victim@customer.example"), "{note}");
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let acks: Vec<String> = smtp.messages().iter().map(|m| read(m).to[0].address.clone()).collect();
    assert!(
        acks.contains(&"mallory@evil.example".to_owned()) && !acks.contains(&victim_address.to_string()),
        "{acks:?}"
    );
    // The agent's public answer goes to the requester only.
    let before = smtp.messages().len();
    app.post(
        &format!("/api/v1/tickets/{ticket}/comments"),
        &agent_token,
        json!({"body": "We cannot discuss accounts."}),
    )
    .await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent: Vec<_> = smtp.messages()[before..].iter().map(|m| read(m)).collect();
    let to: Vec<String> = sent.iter().map(|m| m.to[0].address.clone()).collect();
    assert_eq!(to, ["mallory@evil.example"]);
    assert!(sent.iter().all(|m| m.subject.ends_with("Account question") && !m.text.contains("Mine.")));

    // Mallory signs the desk up elsewhere: the service's verification mail is flagged, tagged,
    // not acknowledged, and copies nobody in.
    let before = smtp.messages().len();
    let verify = mail(
        "Chat service <no-reply@chat.example>",
        "Confirm your email address",
        "v1@chat.example",
        "Cc: mallory@evil.example\r\n",
        "Your verification code is 449812.",
    );
    let flagged = deliver_expecting(&app, &verify, "opened").await;
    let t =
        app.get(&format!("/api/v1/tickets/{}", flagged["ticket_id"].as_str().unwrap_or_default()), &app.admin).await;
    assert_eq!(t.body["tags"], json!([ferrodesk_mail::ingest::VERIFICATION_TAG]), "{}", t.body);
    assert_eq!(t.body["watchers"], json!([]));
    assert!(t.body["description"].as_str().unwrap_or_default().starts_with("[Flagged by the desk"), "{}", t.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(smtp.messages().len(), before, "no acknowledgement of a verification mail");
    // The same arriving on Mallory's own thread stays internal: she cannot read the code.
    let onto_thread = mail(
        "mallory@evil.example",
        "Re: Account question",
        "b20b@evil.example",
        "In-Reply-To: <b20a@evil.example>\r\n",
        "FYI: Your verification code is 449812.",
    );
    deliver_expecting(&app, &onto_thread, "held").await;
    let last = comments(&app, &ticket).await.last().cloned().unwrap_or_default();
    assert_eq!(last["internal"], true, "{last}");
    let mallory_address =
        ferrodesk_core::user::EmailAddress::parse("mallory@evil.example").unwrap_or_else(|e| panic!("{e}"));
    let mallory = app.store.user_by_email(&mallory_address).await.ok().flatten().unwrap_or_else(|| panic!("no user"));
    let mallory_token = app.token_for(mallory.0.id).await;
    let hers = app.get(&format!("/api/v1/tickets/{ticket}/comments"), &mallory_token).await;
    assert_eq!(hers.status, StatusCode::OK);
    assert!(!hers.body.to_string().contains("449812"), "{}", hers.body);
}

async fn agents_see_the_formatting_and_remote_images_only_on_request_case_a9_g58(b: Backend) {
    let app = with_mailbox(b).await;
    // A canary: were the server ever to fetch a mail's image, this listener would see it.
    let canary = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    canary.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let canary_url = format!("http://127.0.0.1:{}/pixel.gif", canary.local_addr().map(|a| a.port()).unwrap_or(0));
    // A 1×1 PNG as an inline part.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let raw = format!(
        "From: Ann <ann@customer.example>\r\nTo: {SUPPORT}\r\nSubject: Styled\r\nMessage-ID: <html1@customer.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=RR\r\n\r\n--RR\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p><b>Bold</b> words<img src=\"cid:logo@customer.example\"><img src=\"https://tracker.example/open.gif\">\
         <img src=\"{canary_url}\"><script>alert(1)</script><img src=x onerror=alert(2)></p>\r\n\
         --RR\r\nContent-Type: image/png; name=logo.png\r\nContent-ID: <logo@customer.example>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n--RR--\r\n"
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let (inbound, ticket) = (opened["id"].as_str().unwrap_or_default().to_owned(), opened["ticket_id"].clone());
    let number =
        app.get(&format!("/api/v1/tickets/{}", ticket.as_str().unwrap_or_default()), &app.admin).await.body["number"]
            .as_i64()
            .unwrap_or_default();
    let (agent, _) = app.user_with_token("viewer@desk.example", Role::Agent).await;
    app.set_password(agent, "a long enough password").await;
    let (cookie, _) = app.login("viewer@desk.example", "a long enough password").await;
    let get = |path: String| {
        let (http, base, cookie) = (app.http.clone(), app.base.clone(), cookie.clone());
        async move {
            http.get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap_or_else(|e| panic!("{e}"))
        }
    };
    // The ticket page links to the e-mail; its page says remote images are blocked.
    let ticket_page =
        crate::helpers::page_html(&app.http, &app.base, &cookie, &format!("/desk/tickets/{number}")).await;
    assert!(ticket_page.contains(&format!("/desk/mail/{inbound}")), "{ticket_page}");
    let page = crate::helpers::page_html(&app.http, &app.base, &cookie, &format!("/desk/mail/{inbound}")).await;
    assert!(page.contains("Remote images are blocked") && page.contains("sandbox=\""), "{page}");
    // The frame's document: inline image from us, no remote image, no script, and a policy
    // that would stop them even if one slipped through.
    let r = get(format!("/desk/mail/{inbound}/body")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(csp.contains("img-src 'self' data:;") && csp.contains("sandbox") && !csp.contains("script-src"), "{csp}");
    let body = r.text().await.unwrap_or_default();
    assert!(body.contains("<b>Bold</b>"), "{body}");
    assert!(!body.contains("tracker.example") && !body.contains("127.0.0.1"), "{body}");
    assert!(!body.contains("<script") && !body.contains("onerror"), "{body}");
    let cid = body.split("src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned();
    assert!(cid.starts_with("/desk/mail/") && cid.contains("/cid/"), "{body}");
    let image = get(cid).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
    assert!(image.bytes().await.unwrap_or_default().starts_with(b"\x89PNG"));
    // Asked for: the remote images are in, the policy lets the browser load them; still no code.
    let r = get(format!("/desk/mail/{inbound}/body?images=1")).await;
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(csp.contains("https:"), "{csp}");
    let body = r.text().await.unwrap_or_default();
    assert!(body.contains("https://tracker.example/open.gif") && !body.contains("onerror"), "{body}");
    // The server itself never fetched anything (case G58).
    assert!(canary.accept().is_err(), "the server connected to the canary");
    // Requesters never see the desk's view of mail; an unknown id is a 404 like any other.
    let ann = ferrodesk_core::user::EmailAddress::parse("ann@customer.example").unwrap_or_else(|e| panic!("{e}"));
    let ann = app.store.user_by_email(&ann).await.ok().flatten().unwrap_or_else(|| panic!("no Ann")).0;
    app.set_password(ann.id, "ann's long password").await;
    let (ann_cookie, _) = app.login("ann@customer.example", "ann's long password").await;
    let r = app
        .http
        .get(format!("{}/desk/mail/{inbound}/body", app.base))
        .header("cookie", ann_cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(format!("/desk/mail/{}", uuid::Uuid::now_v7())).await.status(), StatusCode::NOT_FOUND);
}

async fn the_mail_log_pages_through_a_batch_without_gaps(b: Backend) {
    let app = with_mailbox(b).await;
    // One IMAP batch: every message shares its receipt time.
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    let raws: Vec<_> = (0..5)
        .map(|i| {
            mail("ann@customer.example", &format!("B{i}"), &format!("b{i}@x.example"), "", "x").into_bytes().into()
        })
        .collect();
    let results =
        ingest.receive_batch(raws, None, InboundSource::Imap, app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(results.len(), 5);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..5 {
        let page = app.get(&format!("/api/v1/mail/inbound?limit=2{cursor}"), &app.admin).await.body;
        seen.extend(
            page["items"].as_array().into_iter().flatten().filter_map(|m| m["subject"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["B0", "B1", "B2", "B3", "B4"]);
    let r = app.get("/api/v1/mail/inbound?cursor=12.not-an-id", &app.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// Case J73, bounded for a test (the 10-minute run at 1,000 a minute is `cargo xtask
/// soak-mail`, figures in docs/PERFORMANCE.md): mail keeps arriving from several relay clients
/// while an agent works in the desk; every message is accepted, logged and processed, and every
/// page the agent opened meanwhile answered.
async fn mail_keeps_coming_while_agents_work_and_none_is_dropped_case_j73(b: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = with_mailbox(b).await;
    let (agent, _) = app.user_with_token("busy@desk.example", Role::Agent).await;
    app.set_password(agent, "a long enough password").await;
    let (cookie, _) = app.login("busy@desk.example", "a long enough password").await;
    const SENDERS: usize = 4;
    const EACH: usize = 60;
    let sending = Arc::new(AtomicBool::new(true));
    let agent_work = {
        let (http, base, sending) = (app.http.clone(), app.base.clone(), sending.clone());
        tokio::spawn(async move {
            let (mut opened, mut failed) = (0usize, Vec::new());
            while sending.load(Ordering::Relaxed) {
                for path in ["/desk?view=open", "/desk?view=unassigned", "/desk/tickets/1001"] {
                    let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await;
                    match r {
                        // The first ticket may not exist yet in the first moments.
                        Ok(r) if r.status().is_success() || (path.ends_with("1001") && r.status() == 404) => {
                            opened += 1
                        }
                        Ok(r) => failed.push(format!("{path}: {}", r.status())),
                        Err(e) => failed.push(format!("{path}: {e}")),
                    }
                }
            }
            (opened, failed)
        })
    };
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (http, base, token) = (app.http.clone(), app.base.clone(), app.admin.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                let reply = i > 0 && i % 3 == 0;
                let raw = mail(
                    &format!("user{}@customer.example", (s * EACH + i) % 25),
                    &format!("Load {s}-{i}"),
                    &format!("load-{s}-{i}@customer.example"),
                    &if reply {
                        format!("In-Reply-To: <load-{s}-{}@customer.example>\r\n", i - 1)
                    } else {
                        String::new()
                    },
                    "The VPN drops every few minutes.",
                );
                let r = http
                    .post(format!("{base}/api/v1/mail/inbound?mailbox=support"))
                    .bearer_auth(&token)
                    .header("content-type", "message/rfc822")
                    .body(raw)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }));
    }
    for s in senders {
        s.await.unwrap_or_else(|e| panic!("{e}"));
    }
    sending.store(false, Ordering::Relaxed);
    let (opened, failed) = agent_work.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(opened > 0 && failed.is_empty(), "{failed:?}");
    // Every message is in the log, and none is left pending.
    let (mut processed, mut other, mut cursor) = (0, Vec::new(), String::new());
    loop {
        let page = app.get(&format!("/api/v1/mail/inbound?limit=200{cursor}"), &app.admin).await.body;
        for m in page["items"].as_array().into_iter().flatten() {
            match m["status"].as_str() {
                // Replies to one another's messages prove nothing: held on their tickets.
                Some("processed" | "held") => processed += 1,
                s => other.push(format!("{s:?}")),
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!((processed, other), (SENDERS * EACH, vec![]));
}
