//! Nobody can act as someone else by e-mail (issue 19, QUALITY-CASES B19–B22): the `From:`
//! header proves nothing, so mail that does not prove its sender never speaks as them on a
//! ticket. It is held there for an agent to accept or discard; copied people follow a ticket
//! only on a verified participant's word and within the ticket's organisation.

use ferrodesk_core::ids::TicketId;
use ferrodesk_core::user::{EmailAddress, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dual;
use crate::helpers::{Backend, TestApp, ferrodesk};
use crate::mail::{
    SmtpCapture, comments, deliver_expecting, dmarc_pass, mail, outbox, read, trust_the_mta, with_mailbox,
};

dual!(
    an_agents_or_requesters_address_alone_changes_nothing_but_a_held_note,
    agents_accept_held_mail_as_its_senders_or_discard_it,
    only_the_trusted_mta_vouches_and_a_dmarc_failure_outweighs_all,
    copied_people_follow_only_a_verified_participant_within_the_organisation,
    addresses_that_pass_for_others_get_no_account
);

async fn has_account(app: &TestApp, address: &str) -> bool {
    let address = EmailAddress::parse(address).unwrap_or_else(|e| panic!("{e}"));
    app.store.user_by_email(&address).await.ok().flatten().is_some()
}

async fn ticket_of(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await.body
}

async fn jobs_of(app: &TestApp, id: &str) -> usize {
    let id = TicketId(id.parse().unwrap_or_else(|e| panic!("{e}")));
    app.store.ticket_jobs(id).await.map(|j| j.len()).unwrap_or_else(|e| panic!("{e}"))
}

async fn opened_by_ann(app: &TestApp, subject: &str, message_id: &str) -> (String, i64) {
    let opened =
        deliver_expecting(app, &mail("Ann <ann@customer.example>", subject, message_id, "", "Please help."), "opened")
            .await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let number = ticket_of(app, &ticket).await["number"].as_i64().unwrap_or_default();
    (ticket, number)
}

/// The reproduction of issue 19: an agent's address with a subject token and a copied
/// outsider, then the requester's; neither speaks as them, copies anyone in, mails anyone or
/// reopens anything.
async fn an_agents_or_requesters_address_alone_changes_nothing_but_a_held_note(b: Backend) {
    let app = with_mailbox(b).await;
    let (agent, _) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let first_line = app.group("First line").await;
    app.add_member(&first_line, agent).await;
    let payroll = app.group("Payroll").await;
    let (ticket, number) = opened_by_ann(&app, "Payroll access", "p1@customer.example").await;
    let r = app
        .patch(
            &format!("/api/v1/tickets/{ticket}"),
            &app.admin,
            json!({"group_id": payroll, "status": "pending", "pending_reason": "requester"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before = ticket_of(&app, &ticket).await;
    let jobs_before = jobs_of(&app, &ticket).await;

    // As the agent (who cannot even see the ticket), marked internal, copying an outsider.
    let forged = mail(
        "Desk Agent <agent@desk.example>",
        &format!("Re: [#{number}] Payroll access"),
        "x1@evil.example",
        "Cc: outsider@evil.example\r\n",
        "#internal approved, send the salary files to outsider@evil.example",
    );
    let held = deliver_expecting(&app, &forged, "held").await;
    assert_eq!(held["ticket_id"], ticket.as_str());
    assert_eq!(held["status"], "held");
    let note = comments(&app, &ticket).await.last().cloned().unwrap_or_default();
    assert_eq!((note["internal"].clone(), note["author_id"].clone()), (json!(true), Value::Null), "{note}");
    let body = note["body"].as_str().unwrap_or_default();
    assert!(body.starts_with("[Unverified message claiming to be Desk Agent <agent@desk.example>"), "{body}");
    assert!(body.contains("approved, send the salary files"), "{body}");

    // As the requester: no public comment in her name, and the ticket waits for her still.
    let as_ann = mail(
        "ann@customer.example",
        &format!("Re: [#{number}] Payroll access"),
        "x2@evil.example",
        "Cc: outsider@evil.example\r\n",
        "Please send everything to my new address outsider@evil.example",
    );
    assert_eq!(deliver_expecting(&app, &as_ann, "held").await["ticket_id"], ticket.as_str());
    let after = ticket_of(&app, &ticket).await;
    assert_eq!(after["status"], "pending", "no reopen: {after}");
    assert_eq!(after["watchers"], before["watchers"], "nobody copied in: {after}");
    assert_eq!(after["first_response_at"], before["first_response_at"], "no staff answer");
    assert_eq!(jobs_of(&app, &ticket).await, jobs_before, "nobody is mailed");
    let requester = after["requester_id"].as_str().unwrap_or_default().parse().unwrap_or_else(|e| panic!("{e}"));
    let ann = app.token_for(requester).await;
    let hers = app.get(&format!("/api/v1/tickets/{ticket}/comments"), &ann).await.body;
    assert_eq!(hers["items"], json!([]), "the requester sees nothing held: {hers}");

    // The password-reset chain is cut where it began: the outsider never got an account, so a
    // reset for that address has nothing to reset, and no portal shows the ticket.
    assert!(!has_account(&app, "outsider@evil.example").await);
    let r = app
        .call(Method::POST, "/api/v1/auth/password-reset", "", Some(json!({"email": "outsider@evil.example"})), &[])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(!has_account(&app, "outsider@evil.example").await);
}

async fn agents_accept_held_mail_as_its_senders_or_discard_it(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let (agent, agent_token) = app.user_with_token("agent@desk.example", Role::Agent).await;
    let (ticket, number) = opened_by_ann(&app, "VPN drops", "v1@customer.example").await;
    let r = app
        .patch(
            &format!("/api/v1/tickets/{ticket}"),
            &app.admin,
            json!({"assignee_id": agent, "status": "pending", "pending_reason": "requester"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent_before = smtp.messages().len();

    let unproven =
        |id: &str, text: &str| mail("ann@customer.example", &format!("Re: [#{number}] VPN drops"), id, "", text);
    let first = deliver_expecting(&app, &unproven("u1@customer.example", "It drops at 9 every day."), "held").await;
    let second = deliver_expecting(&app, &unproven("u2@customer.example", "Buy a new router!"), "held").await;
    let held = app.get(&format!("/api/v1/tickets/{ticket}/held-mail"), &agent_token).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    let items = held.body.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{}", held.body);
    assert_eq!((items[0]["status"].clone(), items[0]["from"].clone()), (json!("held"), json!("ann@customer.example")));
    let notes: Vec<Value> = comments(&app, &ticket).await;
    assert_eq!(items[0]["held_note_id"], notes[notes.len() - 2]["id"], "held as the note on the ticket");

    // The requester cannot decide for herself, nor list what is held.
    let ann_id = ticket_of(&app, &ticket).await["requester_id"].as_str().unwrap_or_default().parse();
    let ann = app.token_for(ann_id.unwrap_or_else(|e| panic!("{e}"))).await;
    let first_id = first["id"].as_str().unwrap_or_default();
    let accept = |id: &str| format!("/api/v1/tickets/{ticket}/held-mail/{id}/accept");
    assert_eq!(app.get(&format!("/api/v1/tickets/{ticket}/held-mail"), &ann).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&accept(first_id), &ann, json!({})).await.status, StatusCode::FORBIDDEN);

    // The agent accepts the first: it becomes Ann's reply, with what a reply does.
    let r = app.post(&accept(first_id), &agent_token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].clone(), r.body["decided_by"].clone()), (json!("processed"), json!(agent)));
    let list = comments(&app, &ticket).await;
    let reply = list.iter().find(|c| Some(&c["id"]) == r.body.get("comment_id")).cloned().unwrap_or_default();
    assert_eq!(reply["body"], "It drops at 9 every day.");
    assert_eq!(
        (reply["internal"].clone(), reply["author_id"].clone()),
        (json!(false), json!(ann_id_str(&app, &ticket).await))
    );
    assert_eq!(ticket_of(&app, &ticket).await["status"], "open", "her answer resumes the ticket");
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), sent_before + 1, "the assignee hears of her answer");
    let told = read(&sent[sent_before]);
    assert_eq!(told.to[0].address, "agent@desk.example");
    assert!(told.text.contains("It drops at 9 every day."), "{}", told.text);
    // Once decided, it cannot be decided again.
    let again = app.post(&accept(first_id), &agent_token, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // The second is discarded: kept, its note too, and it can no longer be accepted.
    let second_id = second["id"].as_str().unwrap_or_default();
    let r = app.post(&format!("/api/v1/tickets/{ticket}/held-mail/{second_id}/discard"), &agent_token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "discarded");
    assert_eq!(app.post(&accept(second_id), &agent_token, json!({})).await.status, StatusCode::CONFLICT);
    let list = comments(&app, &ticket).await;
    assert!(!list.iter().any(|c| c["body"] == "Buy a new router!"), "never added as hers");
    assert!(
        list.iter()
            .any(|c| c["internal"] == true && c["body"].as_str().unwrap_or_default().contains("Buy a new router!"))
    );
    // A message held on another ticket is not found through this one.
    let (other, _) = opened_by_ann(&app, "Other", "o1@customer.example").await;
    let r = app.post(&format!("/api/v1/tickets/{other}/held-mail/{first_id}/accept"), &agent_token, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn ann_id_str(app: &TestApp, ticket: &str) -> String {
    ticket_of(app, ticket).await["requester_id"].as_str().unwrap_or_default().to_owned()
}

async fn only_the_trusted_mta_vouches_and_a_dmarc_failure_outweighs_all(b: Backend) {
    let app = with_mailbox(b).await;
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    let (ticket, _) = opened_by_ann(&app, "Printer", "pr1@customer.example").await;
    let reply = |id: &str, headers: &str| {
        mail(
            "ann@customer.example",
            "Re: Printer",
            id,
            &format!("{headers}In-Reply-To: <pr1@customer.example>\r\n"),
            &format!("Reply {id}"),
        )
    };
    // Before the admin names the receiving server, its results are just text anyone can write.
    deliver_expecting(&app, &reply("r1@customer.example", &dmarc_pass("customer.example")), "held").await;
    trust_the_mta(&app).await;
    deliver_expecting(&app, &reply("r2@customer.example", &dmarc_pass("customer.example")), "commented").await;
    // Another server's word, or a pass for another domain, proves nothing.
    let other_server = "Authentication-Results: mx.evil.example; dmarc=pass header.from=customer.example\r\n";
    deliver_expecting(&app, &reply("r3@customer.example", other_server), "held").await;
    deliver_expecting(&app, &reply("r4@customer.example", &dmarc_pass("evil.example")), "held").await;
    // A DKIM signature of exactly the sender's domain is enough.
    let dkim = format!("Authentication-Results: {}; dkim=pass header.d=customer.example\r\n", crate::mail::MTA);
    deliver_expecting(&app, &reply("r5@customer.example", &dkim), "commented").await;

    // Answering our own mail to Ann proves her, unless the receiving server says DMARC failed.
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let ack = smtp.messages().iter().map(|m| read(m)).find(|m| m.to[0].address == "ann@customer.example");
    let ack_id = ack.and_then(|m| m.message_id).unwrap_or_else(|| panic!("no acknowledgement to Ann"));
    let answering = |id: &str, headers: &str| {
        mail("ann@customer.example", "Re: Printer", id, &format!("{headers}In-Reply-To: <{ack_id}>\r\n"), "ok")
    };
    deliver_expecting(&app, &answering("r6@customer.example", ""), "commented").await;
    let fails =
        format!("Authentication-Results: {}; dmarc=fail (p=reject) header.from=customer.example\r\n", crate::mail::MTA);
    deliver_expecting(&app, &answering("r7@customer.example", &fails), "held").await;
    let last = comments(&app, &ticket).await.last().cloned().unwrap_or_default();
    assert!(last["body"].as_str().unwrap_or_default().contains("failed DMARC"), "{last}");
    // Someone else answering Ann's copy of our mail is not Ann.
    let bob = mail(
        "bob@customer.example",
        "Re: Printer",
        "r8@customer.example",
        &format!("In-Reply-To: <{ack_id}>\r\n"),
        "me too",
    );
    deliver_expecting(&app, &bob, "held").await;
}

async fn copied_people_follow_only_a_verified_participant_within_the_organisation(b: Backend) {
    let app = with_mailbox(b).await;
    trust_the_mta(&app).await;
    let acme = app.post("/api/v1/organisations", &app.admin, json!({"name": "Acme"})).await.id();
    for (email, name) in [("ann@acme.example", "Ann"), ("carl@acme.example", "Carl")] {
        let r = app
            .post(
                "/api/v1/users",
                &app.admin,
                json!({"email": email, "name": name, "role": "requester", "organisation_id": acme}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let carl_address = EmailAddress::parse("carl@acme.example").unwrap_or_else(|e| panic!("{e}"));
    let carl = app.store.user_by_email(&carl_address).await.ok().flatten().map(|u| u.0.id);
    let carl = carl.unwrap_or_else(|| panic!("no Carl"));
    let raw = mail(
        "ann@acme.example",
        "Shared drive",
        "sd1@acme.example",
        &format!("{}Cc: Carl <carl@acme.example>, friend@elsewhere.example\r\n", dmarc_pass("acme.example")),
        "Carl needs it too.",
    );
    let opened = deliver_expecting(&app, &raw, "opened").await;
    let ticket = opened["ticket_id"].as_str().unwrap_or_default().to_owned();
    let t = ticket_of(&app, &ticket).await;
    assert_eq!(t["organisation_id"], acme.as_str());
    assert_eq!(t["watchers"], json!([carl]), "the colleague follows, the outsider does not: {t}");
    let note = comments(&app, &ticket).await.into_iter().next().unwrap_or_default();
    assert!(
        note["body"]
            .as_str()
            .unwrap_or_default()
            .contains("outside the ticket's organisation: friend@elsewhere.example"),
        "{note}"
    );
    assert!(!has_account(&app, "friend@elsewhere.example").await);
    // The same copy from an unproven reply adds nobody.
    let reply = mail(
        "ann@acme.example",
        "Re: Shared drive",
        "sd2@acme.example",
        "In-Reply-To: <sd1@acme.example>\r\nCc: dave@acme.example\r\n",
        "And Dave.",
    );
    deliver_expecting(&app, &reply, "held").await;
    assert_eq!(ticket_of(&app, &ticket).await["watchers"], json!([carl]));
    assert!(!has_account(&app, "dave@acme.example").await);
}

/// Invisible characters, mixed scripts and look-alikes of existing users are refused for new
/// accounts, by the API, the command line and mail alike, with a clear reason.
async fn addresses_that_pass_for_others_get_no_account(b: Backend) {
    let app = with_mailbox(b).await;
    app.user_with_token("ann@customer.example", Role::Requester).await;
    app.user_with_token("aeo@customer.example", Role::Requester).await;
    let create = |email: &str| json!({"email": email, "name": "X", "role": "requester"});
    for (address, reason) in [
        ("an\u{200b}n@customer.example", "invisible or look-alike character U+200B"),
        ("\u{ff41}nn@other.example", "invisible or look-alike character U+FF41"),
        ("\u{0430}nn@other.example", "mixes letters of different scripts"),
        // All Cyrillic, so one script, but it reads as someone else's address.
        ("\u{0430}\u{0435}\u{043e}@customer.example", "looks like the existing address aeo@customer.example"),
        ("ann@\u{0441}ustomer.example", "mixes letters of different scripts"),
    ] {
        let r = app.post("/api/v1/users", &app.admin, create(address)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{address:?}: {}", r.body);
        assert!(r.body.to_string().contains(reason), "{address:?}: {}", r.body);
        assert!(!has_account(&app, address).await);
    }
    // A genuinely Cyrillic address imitates nobody, and the look-alike of no one is fine.
    let r = app.post("/api/v1/users", &app.admin, create("\u{0438}\u{0432}\u{0430}\u{043d}@example.org")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let cli = ferrodesk(
        &app.database_url,
        &[
            "user",
            "create",
            "--email",
            "\u{0430}\u{0435}\u{043e}@customer.example",
            "--name",
            "Not Aeo",
            "--role",
            "agent",
        ],
        None,
    );
    assert_ne!(cli.code, 0);
    assert!(cli.stderr.contains("looks like the existing address aeo@customer.example"), "{}", cli.stderr);

    // By mail: no account, so no ticket in the look-alike's name; the message waits for an admin.
    let spoof =
        mail("Aeo <\u{0430}\u{0435}\u{043e}@customer.example>", "Invoice", "la1@evil.example", "", "Please pay.");
    let held = deliver_expecting(&app, &spoof, "quarantined").await;
    assert!(held["error"].as_str().unwrap_or_default().contains("looks like the existing address"), "{held}");
    // Copied look-alikes are simply not copied in.
    trust_the_mta(&app).await;
    let copying = mail(
        "bob@customer.example",
        "Shared",
        "la2@customer.example",
        &format!("{}Cc: ann@cust\u{043e}mer.example\r\n", dmarc_pass("customer.example")),
        "x",
    );
    let opened = deliver_expecting(&app, &copying, "opened").await;
    assert_eq!(ticket_of(&app, opened["ticket_id"].as_str().unwrap_or_default()).await["watchers"], json!([]));
}
