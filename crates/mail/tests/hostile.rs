//! Hostile and broken input (QUALITY-CASES A7, A8): decoded leniently, within a time budget,
//! never a panic.

use std::time::{Duration, Instant};

use ferrodesk_mail::{ParseLimits, parse, reply};

fn timed(raw: &[u8]) -> (ferrodesk_mail::InboundMail, Duration) {
    let started = Instant::now();
    let mail = parse(raw, &ParseLimits::default());
    let _ = reply::visible_reply(&mail.text);
    (mail, started.elapsed())
}

/// Generous for a debug build on a busy 2-core machine; the cases below take milliseconds.
const BUDGET: Duration = Duration::from_secs(1);

#[test]
fn broken_charsets_decode_lossily_case_a7() {
    // Declared UTF-8 with invalid bytes in the body and an 8-bit subject without encoding.
    let mut raw = b"From: a@b.example\r\nSubject: Caf\xe9 \xff\xfe broken\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBad \xc3\x28 bytes \xff here\r\n".to_vec();
    let (mail, _) = timed(&raw);
    assert!(mail.subject.starts_with("Caf"), "{:?}", mail.subject);
    assert!(mail.text.contains("Bad") && mail.text.contains("here"), "{:?}", mail.text);
    // An unknown charset: the text is still there, lossily.
    raw = b"From: a@b.example\r\nSubject: =?x-foo?Q?hello?=\r\nContent-Type: text/plain; charset=x-foo\r\n\r\nplain words \xe4\r\n".to_vec();
    let (mail, _) = timed(&raw);
    assert!(mail.text.contains("plain words"), "{:?}", mail.text);
    assert!(!mail.subject.contains('\n'));
}

#[test]
fn pathological_headers_finish_in_time_case_a8() {
    let from_ff = format!("From: {}evil@x.example\r\nSubject: ff\r\n\r\nbody", "\x0c".repeat(30));
    let nested = format!(
        "From: ({}a{}) <nested@x.example>\r\nSubject: nested\r\n\r\nbody",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let long_line = format!("From: a@x.example\r\nSubject: {}\r\n\r\nbody", "A".repeat(1024 * 1024));
    let recipients: Vec<String> = (0..10_000).map(|i| format!("user{i}@x.example")).collect();
    let many = format!("From: a@x.example\r\nTo: {}\r\nSubject: many\r\n\r\nbody", recipients.join(", "));
    for (name, raw) in
        [("form feeds", from_ff), ("nested comments", nested), ("1 MB header", long_line), ("10,000 recipients", many)]
    {
        let (mail, took) = timed(raw.as_bytes());
        assert!(took < BUDGET, "{name} took {took:?}");
        assert_eq!(mail.text, "body", "{name}");
        // Bounded results whatever came in.
        assert!(mail.subject.len() <= 1000, "{name}");
        assert!(mail.to.len() + mail.cc.len() <= ParseLimits::default().max_recipients, "{name}");
    }
}

#[test]
fn deeply_nested_mime_and_junk_do_not_panic() {
    let mut raw = String::from("From: a@x.example\r\n");
    for i in 0..200 {
        raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep\r\n");
    let (_, took) = timed(raw.as_bytes());
    assert!(took < BUDGET);
    for junk in [
        &b"\x00\x01\x02"[..],
        b"\r\n\r\n\r\n",
        b"From:",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
    ] {
        let _ = timed(junk);
    }
}
