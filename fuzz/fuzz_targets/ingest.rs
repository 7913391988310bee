//! The pure half of the inbound path on arbitrary bytes: parse, classify, cut the reply,
//! sanitise the HTML, decide what an unthreaded message becomes, check our Message-IDs.
//! Nothing may panic, and what comes out stays within its bounds.
#![no_main]

use ferrodesk_mail::{ParseLimits, html, ingest, parse, reply, thread};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mail = parse(data, &ParseLimits::default());
    assert!(mail.subject.len() <= 1000);
    assert!(!mail.subject.contains(['\r', '\n']));
    assert!(mail.to.len() + mail.cc.len() <= ParseLimits::default().max_recipients);
    let _ = reply::visible_reply(&mail.text);
    if let Some(h) = &mail.html {
        let again = html::sanitise(h);
        assert!(!again.to_ascii_lowercase().contains("<script"));
    }
    let _ = html::to_text(&String::from_utf8_lossy(data));
    let _ = ingest::unthreaded(&mail);
    let signer = thread::MessageIdSigner::new(b"fuzz");
    for id in mail.ancestors() {
        let _ = signer.verify(id);
    }
    let _ = thread::subject_ticket_number(&mail.subject);
});
