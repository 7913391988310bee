//! Mail read over IMAP from a real Dovecot (Debian's `dovecot-imapd`, started per test on
//! 127.0.0.1), through to SMTP and back: the full loop of the issue, batches and restarts, a
//! recreated folder, one message in two mailboxes.

use std::time::Duration;

use futures_util::TryStreamExt;
use serde_json::{Value, json};

use crate::dual;
use crate::helpers::{Backend, TempDir, TestApp, test_secrets};
use crate::mail::{SmtpCapture, outbox, read};

dual!(
    mail_goes_round_through_imap_and_smtp_onto_one_ticket,
    a_big_folder_is_read_in_batches_and_resumes_case_k72,
    a_recreated_folder_is_not_reimported_and_new_mail_is_not_skipped_case_k79,
    one_message_to_two_mailboxes_is_one_ticket_case_a2,
    processed_mail_is_moved_when_asked
);

/// A Dovecot of this test's own: its configuration, users and mail in a temporary folder.
pub struct Dovecot {
    pub port: u16,
    dir: TempDir,
    child: std::process::Child,
}

pub const PASSWORD: &str = "imap-pa55";

impl Dovecot {
    pub fn start(users: &[&str]) -> Self {
        let dir = TempDir::new();
        let port = crate::helpers::free_port();
        // Dovecot will not deliver mail as root: as root the mail belongs to `nobody`.
        let (uid, gid) = match std::process::Command::new("id").arg("-u").output() {
            Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => (65534, 65534),
            _ => {
                let id = |flag: &str| {
                    std::process::Command::new("id")
                        .arg(flag)
                        .output()
                        .ok()
                        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok())
                        .unwrap_or(1000)
                };
                (id("-u"), id("-g"))
            }
        };
        let root = &dir.path;
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(root.join(sub)).unwrap_or_else(|e| panic!("{e}"));
        }
        for sub in ["mail", "home"] {
            let _ = std::os::unix::fs::chown(root.join(sub), Some(uid), Some(gid));
        }
        let passwd: String = users.iter().map(|u| format!("{u}:{{PLAIN}}{PASSWORD}\n")).collect();
        std::fs::write(root.join("passwd"), passwd).unwrap_or_else(|e| panic!("{e}"));
        let r = root.display();
        let conf = format!(
            "base_dir = {r}/run\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\ninfo_log_path = {r}/dovecot.log\n\
             listen = 127.0.0.1\nprotocols = imap\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             mail_location = maildir:{r}/mail/%u\nfirst_valid_uid = 0\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={r}/home/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), conf).unwrap_or_else(|e| panic!("{e}"));
        let binary = if std::path::Path::new("/usr/sbin/dovecot").exists() { "/usr/sbin/dovecot" } else { "dovecot" };
        let mut child = std::process::Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dovecot (scripts/test.sh installs dovecot-imapd): {e}"));
        if crate::helpers::wait_for_port(port) {
            return Self { port, dir, child };
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default();
        panic!("dovecot did not start on port {port}:\n{log}");
    }

    pub async fn session(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap_or_else(|e| panic!("{e}"));
        let mut client = async_imap::Client::new(tcp);
        let _ = client.read_response().await;
        client.login(user, PASSWORD).await.map_err(|(e, _)| e).unwrap_or_else(|e| panic!("imap login: {e}"))
    }

    /// Appends a message to a user's folder, as a mail server delivering it would.
    pub async fn append(&self, user: &str, folder: &str, raw: &str, seen: bool) {
        let mut s = self.session(user).await;
        let flags = if seen { Some("(\\Seen)") } else { None };
        s.append(folder, flags, None, raw.as_bytes()).await.unwrap_or_else(|e| panic!("append: {e}"));
        let _ = s.logout().await;
    }

    /// (UID, seen) of every message in a folder.
    pub async fn list(&self, user: &str, folder: &str) -> Vec<(u32, bool)> {
        let mut s = self.session(user).await;
        let mailbox = s.select(folder).await.unwrap_or_else(|e| panic!("select: {e}"));
        if mailbox.exists == 0 {
            return vec![];
        }
        let fetches: Vec<_> = s
            .uid_fetch("1:*", "FLAGS")
            .await
            .unwrap_or_else(|e| panic!("fetch: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("fetch: {e}"));
        let mut out: Vec<(u32, bool)> = fetches
            .iter()
            .map(|f| (f.uid.unwrap_or_default(), f.flags().any(|fl| fl == async_imap::types::Flag::Seen)))
            .collect();
        out.sort_unstable();
        let _ = s.logout().await;
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

async fn imap_mailbox(app: &TestApp, name: &str, address: &str, dovecot: &Dovecot, extra: Value) -> String {
    let mut imap = json!({
        "host": "127.0.0.1", "port": dovecot.port, "security": "plain",
        "username": address, "password": crate::imap::PASSWORD, "poll_seconds": 10
    });
    if let (Some(o), Some(e)) = (imap.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    let r = app.post("/api/v1/mailboxes", &app.admin, json!({"name": name, "address": address, "imap": imap})).await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["imap"]["has_password"], true);
    assert!(!r.body.to_string().contains(PASSWORD), "the password never comes back");
    r.id()
}

async fn poll(app: &TestApp) {
    // Past every mailbox's interval, so each is due.
    app.clock.advance(Duration::from_secs(3600));
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    let secrets = test_secrets();
    ferrodesk_mail::imap::poll_due(&app.store, &ingest, Some(&secrets), app.clock.now()).await;
}

fn message(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\
         {extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

async fn inbound(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/mail/inbound?limit=200", &app.admin).await.body["items"].as_array().cloned().unwrap_or_default()
}

async fn tickets(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/tickets?limit=200", &app.admin).await.body["items"].as_array().cloned().unwrap_or_default()
}

const DESK: &str = "support@desk.example";

async fn mail_goes_round_through_imap_and_smtp_onto_one_ticket(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dovecot = Dovecot::start(&[DESK]);
    let smtp = SmtpCapture::start();
    let out = outbox(&app, &smtp.url());
    imap_mailbox(&app, "support", DESK, &dovecot, json!({})).await;

    // 1. A message arrives in the IMAP mailbox and becomes a ticket; it is marked seen.
    dovecot
        .append(
            DESK,
            "INBOX",
            &message(
                "Ann <ann@customer.example>",
                DESK,
                "Scanner offline",
                "s1@customer.example",
                "",
                "The scanner on floor 2 is offline.",
            ),
            false,
        )
        .await;
    poll(&app).await;
    let all = tickets(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let ticket = all[0]["id"].as_str().unwrap_or_default().to_owned();
    let number = all[0]["number"].as_i64().unwrap_or_default();
    assert_eq!(all[0]["channel"], "email");
    assert_eq!(dovecot.list(DESK, "INBOX").await, [(1, true)]);

    // 2. The acknowledgement and an agent's reply go out over SMTP.
    let (_, agent) = app.user_with_token("agent@desk.example", ferrodesk_core::user::Role::Agent).await;
    app.post(
        &format!("/api/v1/tickets/{ticket}/comments"),
        &agent,
        json!({"body": "Restarted it remotely; try again?"}),
    )
    .await;
    out.run_due_once(app.clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
    let sent = smtp.messages();
    assert_eq!(sent.len(), 2, "acknowledgement + reply");
    let reply =
        sent.iter().map(|r| read(r)).find(|m| m.text.contains("Restarted it")).unwrap_or_else(|| panic!("no reply"));
    assert_eq!(reply.subject, format!("[#{number}] Scanner offline"));
    let ours = reply.message_id.clone().unwrap_or_default();

    // 3. Ann answers that message; her answer lands in IMAP and threads onto the ticket.
    let answer = message(
        "Ann <ann@customer.example>",
        DESK,
        "Re: Scanner offline",
        "s2@customer.example",
        &format!("In-Reply-To: <{ours}>\r\nReferences: <s1@customer.example> <{ours}>\r\n"),
        "Works again, thank you!\r\n\r\nOn Mon, 23 Nov 2026, Service desk wrote:\r\n> Restarted it remotely; try again?",
    );
    dovecot.append(DESK, "INBOX", &answer, false).await;
    poll(&app).await;
    assert_eq!(tickets(&app).await.len(), 1);
    let comments = app.get(&format!("/api/v1/tickets/{ticket}/comments"), &app.admin).await.body;
    let last = comments["items"].as_array().and_then(|c| c.last()).cloned().unwrap_or_default();
    assert_eq!(last["body"], "Works again, thank you!");
    assert_eq!(dovecot.list(DESK, "INBOX").await, [(1, true), (2, true)]);
    // Polling again fetches nothing new.
    poll(&app).await;
    assert_eq!(inbound(&app).await.len(), 2);
    let mailbox = &app.get("/api/v1/mailboxes", &app.admin).await.body["items"][0];
    assert!(mailbox["imap"]["last_error"].is_null(), "{mailbox}");
}

async fn a_big_folder_is_read_in_batches_and_resumes_case_k72(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dovecot = Dovecot::start(&[DESK]);
    imap_mailbox(&app, "support", DESK, &dovecot, json!({})).await;
    let total = ferrodesk_mail::imap::BATCH * 2 + 20;
    for i in 0..total {
        let m = message(
            &format!("user{i}@customer.example"),
            DESK,
            &format!("Request {i}"),
            &format!("b{i}@customer.example"),
            "",
            "Please help.",
        );
        dovecot.append(DESK, "INBOX", &m, false).await;
    }
    // One poll takes one batch and remembers where it stopped (as after a restart: every poll
    // starts from the stored state).
    let ingest = ferrodesk_mail::ingest::Ingest::new(app.store.clone(), Default::default());
    let secrets = test_secrets();
    let mailbox = app.store.mailboxes().await.unwrap_or_default().remove(0);
    let report = ferrodesk_mail::imap::poll(
        &app.store,
        &ingest,
        Some(&secrets),
        &mailbox,
        app.clock.now(),
        ferrodesk_mail::imap::BATCH,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.stored, ferrodesk_mail::imap::BATCH);
    assert!(report.more);
    let stored = app.store.mailboxes().await.unwrap_or_default().remove(0);
    assert_eq!(stored.imap_state.last_uid, Some(ferrodesk_mail::imap::BATCH as i64));
    // The scheduler goes on batch by batch until the folder is read.
    poll(&app).await;
    assert_eq!(tickets(&app).await.len(), total);
    assert_eq!(inbound(&app).await.iter().filter(|m| m["status"] == "processed").count(), total);
    assert!(dovecot.list(DESK, "INBOX").await.iter().all(|(_, seen)| *seen));
}

async fn a_recreated_folder_is_not_reimported_and_new_mail_is_not_skipped_case_k79(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dovecot = Dovecot::start(&[DESK]);
    {
        let mut s = dovecot.session(DESK).await;
        s.create("Support").await.unwrap_or_else(|e| panic!("{e}"));
    }
    imap_mailbox(&app, "support", DESK, &dovecot, json!({"folder": "Support"})).await;
    let old: Vec<String> = (0..3)
        .map(|i| {
            message("ann@customer.example", DESK, &format!("Old {i}"), &format!("old{i}@customer.example"), "", "old")
        })
        .collect();
    for m in &old {
        dovecot.append(DESK, "Support", m, false).await;
    }
    poll(&app).await;
    assert_eq!(tickets(&app).await.len(), 3);
    let before = app.store.mailboxes().await.unwrap_or_default().remove(0).imap_state;

    // The folder is deleted and created again (a server migration): UIDs start at 1 again. A new
    // message gets UID 1 — at or below the last UID we stored — and the old ones come back read.
    {
        let mut s = dovecot.session(DESK).await;
        s.delete("Support").await.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s.create("Support").await.unwrap_or_else(|e| panic!("{e}"));
    }
    dovecot
        .append(
            DESK,
            "Support",
            &message("bob@customer.example", DESK, "Brand new", "new1@customer.example", "", "new"),
            false,
        )
        .await;
    for m in &old {
        dovecot.append(DESK, "Support", m, true).await;
    }
    poll(&app).await;
    let after = app.store.mailboxes().await.unwrap_or_default().remove(0).imap_state;
    assert_ne!(after.uidvalidity, before.uidvalidity, "Dovecot gave the new folder a new UIDVALIDITY");
    let all = tickets(&app).await;
    assert_eq!(all.len(), 4, "the new message is in, the old ones are not in twice");
    assert!(all.iter().any(|t| t["subject"] == "Brand new"));
    assert_eq!(inbound(&app).await.len(), 4, "old messages were not even fetched again");
}

async fn one_message_to_two_mailboxes_is_one_ticket_case_a2(b: Backend) {
    let app = TestApp::spawn(b).await;
    let sales = "sales@desk.example";
    let dovecot = Dovecot::start(&[DESK, sales]);
    imap_mailbox(&app, "support", DESK, &dovecot, json!({})).await;
    imap_mailbox(&app, "sales", sales, &dovecot, json!({})).await;
    let m = message(
        "ann@customer.example",
        &format!("{DESK}, {sales}"),
        "Quote and help",
        "both@customer.example",
        "",
        "Both please",
    );
    dovecot.append(DESK, "INBOX", &m, false).await;
    dovecot.append(sales, "INBOX", &m, false).await;
    poll(&app).await;
    assert_eq!(tickets(&app).await.len(), 1);
    let log = inbound(&app).await;
    assert_eq!(log.len(), 2, "both copies are on the log");
    assert_eq!(log.iter().filter(|m| m["status"] == "duplicate").count(), 1);
    // Both copies are marked: neither mailbox fetches it again.
    assert_eq!(dovecot.list(DESK, "INBOX").await, [(1, true)]);
    assert_eq!(dovecot.list(sales, "INBOX").await, [(1, true)]);
}

async fn processed_mail_is_moved_when_asked(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dovecot = Dovecot::start(&[DESK]);
    {
        let mut s = dovecot.session(DESK).await;
        s.create("Processed").await.unwrap_or_else(|e| panic!("{e}"));
    }
    imap_mailbox(&app, "support", DESK, &dovecot, json!({"after_processing": "move", "move_to": "Processed"})).await;
    dovecot
        .append(
            DESK,
            "INBOX",
            &message("ann@customer.example", DESK, "Move me", "mv1@customer.example", "", "x"),
            false,
        )
        .await;
    poll(&app).await;
    assert_eq!(tickets(&app).await.len(), 1);
    assert!(dovecot.list(DESK, "INBOX").await.is_empty());
    assert_eq!(dovecot.list(DESK, "Processed").await.len(), 1);
    // A wrong password is reported on the mailbox, not hidden.
    let id = app.store.mailboxes().await.unwrap_or_default().remove(0).id;
    let r = app
        .patch(
            &format!("/api/v1/mailboxes/{id}"),
            &app.admin,
            json!({"imap": {"host": "127.0.0.1", "port": dovecot.port, "security": "plain", "username": DESK, "password": "wrong", "after_processing": "move", "move_to": "Processed", "poll_seconds": 10}}),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
    poll(&app).await;
    let mailbox = &app.get("/api/v1/mailboxes", &app.admin).await.body["items"][0];
    assert!(mailbox["imap"]["last_error"].as_str().unwrap_or_default().contains("login"), "{mailbox}");
}
