use super::dedup_key;

#[test]
fn a_message_id_is_one_message_only_with_the_same_sender_and_body() {
    let copy = |trace: &str, eol: &str, from: &str, body: &str| {
        format!("{trace}From: {from}{eol}Message-ID: <m1@example.org>{eol}{eol}{body}{eol}").into_bytes()
    };
    let key = |raw: &[u8], from: &str| dedup_key(Some("m1@example.org"), Some(from), raw);
    let first = copy("Received: by mx1\r\n", "\r\n", "ann@example.org", "Line one\r\nLine two");
    // The copy another mailbox got: other trace headers, other line endings, trailing blanks.
    let second = copy("Delivered-To: it@desk.example\n", "\n", "ann@example.org", "Line one  \nLine two");
    assert_eq!(key(&first, "ann@example.org"), key(&second, "ann@example.org"));
    // Another sender, or other words, under the same Message-ID: another message.
    let forged = copy("", "\r\n", "mallory@evil.example", "Line one\r\nLine two");
    assert_ne!(key(&first, "ann@example.org"), key(&forged, "mallory@evil.example"));
    let changed = copy("", "\r\n", "ann@example.org", "Line one\r\nLine 2");
    assert_ne!(key(&first, "ann@example.org"), key(&changed, "ann@example.org"));
    // Without a Message-ID, the whole message counts; without a body, the key still works.
    assert!(dedup_key(None, Some("ann@example.org"), &first).starts_with("sha256:"));
    assert!(dedup_key(Some("x@y"), None, b"Subject: only headers").starts_with("mid:x@y|"));
}
