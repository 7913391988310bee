//! Raw RFC 5322 bytes → [`InboundMail`]: the facts the rest of Ferrodesk needs from a message,
//! decoded once. Never panics and never fails on malformed input: what cannot be read becomes
//! empty (a missing sender is `None`), undecodable text becomes U+FFFD, and the caller keeps the
//! raw bytes.

use std::borrow::Cow;

use jiff::Timestamp;
use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use crate::classify::{Automation, classify};
use crate::html;

/// Limits applied while reading a message.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Attachments larger than this are dropped (and listed in [`InboundMail::dropped`]).
    pub max_attachment_bytes: usize,
    /// At most this many attachments are kept; the rest are dropped.
    pub max_attachments: usize,
    /// Recipients beyond this many (To + Cc) are ignored.
    pub max_recipients: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_attachment_bytes: 25 * 1024 * 1024, max_attachments: 100, max_recipients: 100 }
    }
}

/// One address from a header, checked to look like `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAddress {
    /// Lower-cased address.
    pub address: String,
    /// Display name, if any (never trusted for identity).
    pub name: Option<String>,
}

/// A file carried by the message: an attachment or an inline (`cid:`) image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFile {
    pub filename: String,
    pub content_type: String,
    /// `Content-ID` without angle brackets, for inline images referenced as `cid:`.
    pub content_id: Option<String>,
    pub inline: bool,
    /// Shared: the effect that stores it and the statement that writes it hold no copies.
    pub data: bytes::Bytes,
    /// Its transfer encoding was broken or cut short: `data` is the part as received (still
    /// encoded) and `filename` says so, so it is never taken for the file itself.
    pub damaged: bool,
}

/// A file that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFile {
    pub filename: String,
    pub size: usize,
    pub reason: &'static str,
}

/// What Ferrodesk reads from one inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMail {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<MailAddress>,
    /// The sender's address when it has no dotted domain (`root@mailhost`: cron and monitoring
    /// on the mail host), which `from` refuses; a mailbox may take such mail as a named user.
    pub local_from: Option<String>,
    pub reply_to: Option<MailAddress>,
    pub to: Vec<MailAddress>,
    pub cc: Vec<MailAddress>,
    /// Decoded subject, control characters removed; empty when missing.
    pub subject: String,
    /// The `Date` header, if readable (not trusted for ordering: see the ingest).
    pub date: Option<Timestamp>,
    /// The text the people wrote: the text/plain body, or the HTML body turned into text.
    pub text: String,
    /// The HTML body, sanitised (inert: no scripts, handlers, forms, remote loads).
    pub html: Option<String>,
    pub files: Vec<MailFile>,
    pub dropped: Vec<DroppedFile>,
    pub automation: Automation,
    /// A calendar invitation or answer (iMIP: a `text/calendar` part with a `method`), by its
    /// method (`request`, `cancel`, `reply`, …): machine mail for acknowledgements and copying.
    pub calendar_method: Option<String>,
    /// `Authentication-Results` headers as written, topmost (newest) first; at most
    /// [`MAX_AUTH_RESULTS`], each cut to 2,000 bytes. Trusted only from an authserv-id the
    /// admin names (see [`crate::trust`]).
    pub auth_results: Vec<String>,
}

/// `Authentication-Results` headers read from one message, at most.
pub const MAX_AUTH_RESULTS: usize = 10;

/// Reads a raw message. Input that is not a message at all still yields an `InboundMail` (with
/// no sender), so the caller decides what to do with it.
/// The HTML body of a stored message as it came (unsanitised: only for
/// [`crate::html::sanitise_for_view`]); `None` when it has none.
pub fn original_html(raw: &[u8]) -> Option<String> {
    // A panic inside the parser (a defect in it) means "no formatted view", never a 500.
    std::panic::catch_unwind(|| {
        let message = MessageParser::default().parse(raw)?;
        match message.html_body.first().and_then(|id| redecoded(&message, *id, true)) {
            Some(html) => Some(html),
            None => message.body_html(0).map(|h| h.into_owned()),
        }
    })
    .ok()
    .flatten()
}

/// What the headers alone tell: enough to store a message, de-duplicate it and answer its
/// sender, without reading (and decoding) its body and attachments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    pub message_id: Option<String>,
    pub from: Option<MailAddress>,
    pub subject: String,
    pub automation: Option<Automation>,
}

/// Reads the headers of a raw message only. Never panics; unreadable input gives an empty
/// envelope.
pub fn envelope(raw: &[u8]) -> Envelope {
    let read = || {
        let message = MessageParser::default().parse_headers(raw)?;
        Some(Envelope {
            message_id: message.message_id().and_then(clean_id),
            from: message.from().and_then(first_address),
            subject: raw_header(&message.raw_message, message.headers(), &HeaderName::Subject)
                .map(|raw| clean_line(&crate::header::text(raw)))
                .unwrap_or_default(),
            automation: Some(classify(&message)),
        })
    };
    std::panic::catch_unwind(read).ok().flatten().unwrap_or_default()
}

/// [`parse`] for stored or received bytes: a panic inside the parser (a defect in it, on a
/// message no fuzzing found) means "unreadable", never a crashed task.
pub fn read(raw: &[u8], limits: &ParseLimits) -> Option<InboundMail> {
    std::panic::catch_unwind(|| parse(raw, limits)).ok()
}

pub fn parse(raw: &[u8], limits: &ParseLimits) -> InboundMail {
    // Some programs put blank (or space-only) lines before the headers; skip them.
    let mut raw = raw;
    while let Some(end) = raw.iter().position(|b| *b == b'\n') {
        if raw[..end].iter().all(|b| b.is_ascii_whitespace()) && end + 1 < raw.len() {
            raw = &raw[end + 1..];
        } else {
            break;
        }
    }
    let parser = MessageParser::default();
    let Some(mut message) = parser.parse(raw) else {
        return InboundMail::empty(String::from_utf8_lossy(raw).into_owned());
    };
    let mut recipients = limits.max_recipients;
    let to = addresses(message.to(), &mut recipients);
    let cc = addresses(message.cc(), &mut recipients);
    let html_body = message
        .html_body
        .first()
        .and_then(|id| redecoded(&message, *id, true))
        .or_else(|| message.body_html(0).map(|h| h.into_owned()));
    let text = match message.text_bodies().next() {
        // mail-parser offers an HTML-only message's text as converted from HTML; prefer ours,
        // which drops quoted blocks' markup consistently with the sanitised HTML.
        Some(part) if matches!(part.body, PartType::Text(_)) => message
            .text_body
            .first()
            .and_then(|id| redecoded(&message, *id, false))
            .or_else(|| message.body_text(0).map(Cow::into_owned)),
        _ => html_body.as_deref().map(html::to_text),
    }
    .unwrap_or_default();
    // Before the files are taken out of the message: bounces are read from their parts.
    let automation = classify(&message);
    let (files, dropped) = files(&mut message, limits);
    InboundMail {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from: message.from().and_then(first_address),
        local_from: message.from().and_then(|list| list.first()).and_then(local_address),
        calendar_method: message.parts.iter().find_map(|part| {
            let ct = part.content_type()?;
            let calendar = ct.ctype().eq_ignore_ascii_case("text") && ct.subtype()?.eq_ignore_ascii_case("calendar");
            calendar.then(|| ct.attribute("method").map(|m| clean_line(m).to_ascii_lowercase()))?
        }),
        reply_to: message.reply_to().and_then(first_address),
        to,
        cc,
        subject: raw_header(&message.raw_message, message.headers(), &HeaderName::Subject)
            .map(|raw| clean_line(&crate::header::text(raw)))
            .or_else(|| message.subject().map(clean_line))
            .unwrap_or_default(),
        date: message.date().and_then(|d| Timestamp::from_second(d.to_timestamp()).ok()),
        text: normalise_text(&text),
        html: html_body.as_deref().map(html::sanitise),
        files,
        dropped,
        automation,
        auth_results: message
            .headers_raw()
            .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
            .take(MAX_AUTH_RESULTS)
            .map(|(_, value)| value.chars().take(2000).collect())
            .collect(),
    }
}

impl InboundMail {
    fn empty(text: String) -> Self {
        Self {
            message_id: None,
            in_reply_to: vec![],
            references: vec![],
            from: None,
            local_from: None,
            calendar_method: None,
            reply_to: None,
            to: vec![],
            cc: vec![],
            subject: String::new(),
            date: None,
            text: normalise_text(&text),
            html: None,
            files: vec![],
            dropped: vec![],
            automation: Automation::Human,
            auth_results: vec![],
        }
    }

    /// The ids this message names as its ancestors, nearest first: `In-Reply-To`, then
    /// `References` from the newest.
    pub fn ancestors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for id in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }
}

/// The raw value of the first header `name` among `headers`, from the message's bytes.
fn raw_header<'a>(raw: &'a [u8], headers: &[mail_parser::Header<'_>], name: &HeaderName<'_>) -> Option<&'a [u8]> {
    let h = headers.iter().find(|h| h.name == *name)?;
    raw.get(h.offset_start as usize..h.offset_end as usize)
}

/// A text or HTML part's content decoded by [`charset::decode`] from its raw bytes: mail-parser
/// decodes the charsets it knows, guesses none, and turns what it cannot read into U+FFFD.
/// `None` when the part is not of that kind or its transfer encoding is broken (mail-parser's
/// reading stands then).
fn redecoded(message: &Message<'_>, part_id: u32, html: bool) -> Option<String> {
    use mail_parser::decoders::base64::base64_decode;
    use mail_parser::decoders::quoted_printable::quoted_printable_decode;
    let part = message.parts.get(usize::try_from(part_id).ok()?)?;
    match (&part.body, html) {
        (PartType::Text(_), false) | (PartType::Html(_), true) => {}
        _ => return None,
    }
    let raw = message.raw_message.get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        mail_parser::Encoding::None => Cow::Borrowed(raw),
        mail_parser::Encoding::QuotedPrintable => Cow::Owned(quoted_printable_decode(raw)?),
        mail_parser::Encoding::Base64 => Cow::Owned(base64_decode(raw)?),
    };
    let declared = part.content_type().and_then(|ct| ct.attribute("charset"));
    Some(crate::charset::decode(&bytes, declared))
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.as_ref()).collect(),
        _ => vec![],
    };
    // Bounded: a References header naming thousands of ids is noise, not a thread.
    list.into_iter().filter_map(clean_id).take(50).collect()
}

fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    if id.is_empty() || id.len() > 500 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    Some(id.to_owned())
}

fn first_address(list: &Address<'_>) -> Option<MailAddress> {
    list.iter().find_map(to_mail_address)
}

fn addresses(list: Option<&Address<'_>>, budget: &mut usize) -> Vec<MailAddress> {
    let mut out = Vec::new();
    for addr in list.into_iter().flat_map(|l| l.iter()) {
        if *budget == 0 {
            break;
        }
        if let Some(a) = to_mail_address(addr)
            && !out.iter().any(|o: &MailAddress| o.address == a.address)
        {
            *budget -= 1;
            out.push(a);
        }
    }
    out
}

/// `local@host` without a dot in the host: plain characters only, and only when it is not a
/// usable address (those are `from`).
fn local_address(addr: &mail_parser::Addr<'_>) -> Option<String> {
    let address = addr.address()?.trim().to_lowercase();
    let (local, host) = address.split_once('@')?;
    let plain = |s: &str, extra: &str| {
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    (plain(local, ".-_+") && plain(host, "-")).then_some(address)
}

fn to_mail_address(addr: &mail_parser::Addr<'_>) -> Option<MailAddress> {
    let address = addr.address()?.trim().to_lowercase();
    ferrodesk_core::user::EmailAddress::parse(&address).ok()?;
    let name = addr.name().map(clean_line).filter(|n| !n.is_empty() && n.to_lowercase() != address);
    Some(MailAddress { address, name })
}

/// One line of header text: control characters (including CR/LF) become spaces, runs of
/// spaces shrink to one, and the result is bounded.
pub fn clean_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(1000));
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() { ' ' } else { c };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        out.push(c);
        if out.len() >= 1000 {
            break;
        }
    }
    out.trim_end().to_owned()
}

/// Line endings to `\n`, other control characters (but tabs) removed, trailing space trimmed.
fn normalise_text(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let cleaned: String = s.chars().filter(|c| *c == '\n' || *c == '\t' || !c.is_control()).collect();
    cleaned.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_matches('\n').to_owned()
}

/// The message's files, taken out of it (a decoded attachment is moved, not copied: a large
/// message must not be held twice).
fn files(message: &mut mail_parser::Message<'_>, limits: &ParseLimits) -> (Vec<MailFile>, Vec<DroppedFile>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let ids = message.attachments.clone();
    for (n, id) in ids.into_iter().enumerate() {
        let raw_message = &message.raw_message;
        let Some(part) = usize::try_from(id).ok().and_then(|i| message.parts.get_mut(i)) else { continue };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_lowercase();
        // Unnamed parts get a name that opens with the right program.
        let extension = match content_type.as_str() {
            "text/calendar" | "application/ics" => ".ics",
            "text/html" => ".html",
            _ if content_type.starts_with("text/") || content_type == "message/delivery-status" => ".txt",
            _ => "",
        };
        let default_name = match &part.body {
            PartType::Multipart(_) => continue,
            // A forwarded message is kept as the .eml it was.
            PartType::Message(_) => format!("message-{}.eml", n + 1),
            _ => format!("attachment-{}{extension}", n + 1),
        };
        let raw_name = raw_header(raw_message, &part.headers, &HeaderName::ContentDisposition)
            .and_then(|h| crate::header::parameter(h, "filename"))
            .or_else(|| {
                raw_header(raw_message, &part.headers, &HeaderName::ContentType)
                    .and_then(|h| crate::header::parameter(h, "name"))
            });
        let filename = raw_name
            .as_deref()
            .or(part.attachment_name())
            .map(clean_line)
            .filter(|n| !n.is_empty())
            .unwrap_or(default_name);
        let size = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.len(),
            PartType::Text(t) | PartType::Html(t) => t.len(),
            PartType::Message(m) => m.raw_message().len(),
            PartType::Multipart(_) => 0,
        };
        if kept.len() >= limits.max_attachments {
            dropped.push(DroppedFile { filename, size, reason: "too many attachments" });
            continue;
        }
        if size > limits.max_attachment_bytes {
            dropped.push(DroppedFile { filename, size, reason: "larger than the attachment limit" });
            continue;
        }
        let content_id = part.content_id().and_then(clean_id);
        let inline = content_id.is_some() && matches!(part.body, PartType::InlineBinary(_) | PartType::Binary(_)) && {
            part.content_disposition().is_none_or(|d| d.is_inline())
        };
        // A part whose encoding is broken or cut short is kept as it came, under a name that
        // says so: what mail-parser made of it is not the file.
        let encoded = part
            .content_transfer_encoding()
            .is_some_and(|e| e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable"));
        if part.is_encoding_problem && encoded {
            let end = (part.offset_end as usize).min(raw_message.len());
            let start = (part.offset_body as usize).min(end);
            let data = bytes::Bytes::copy_from_slice(&raw_message[start..end]);
            let filename = format!("{filename}.damaged");
            kept.push(MailFile {
                filename,
                content_type: "application/octet-stream".into(),
                content_id,
                inline,
                data,
                damaged: true,
            });
            continue;
        }
        let data: Vec<u8> = match std::mem::replace(&mut part.body, PartType::Text(Cow::Borrowed(""))) {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.into_owned(),
            PartType::Text(t) | PartType::Html(t) => t.into_owned().into_bytes(),
            PartType::Message(m) => m.raw_message().to_vec(),
            PartType::Multipart(_) => continue,
        };
        kept.push(MailFile {
            filename,
            content_type,
            content_id,
            inline,
            data: bytes::Bytes::from(data),
            damaged: false,
        });
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &str) -> InboundMail {
        parse(raw.as_bytes(), &ParseLimits::default())
    }

    #[test]
    fn every_charset_in_subjects_bodies_and_file_names() {
        let read = |raw: &[u8]| parse(raw, &ParseLimits::default());
        let m = read(b"From: a@b.example\r\nSubject: =?UTF-8?B?w6k=?= =?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC?=\r\n\r\nx\r\n");
        assert_eq!(m.subject, "é€", "a character split across two encoded words");
        let m = read(b"From: a@b.example\r\nSubject: \x1b$BF|K\\8l\x1b(B\r\n\r\n\x1b$B$9$_$^$;$s\x1b(B\r\n");
        assert_eq!((m.subject.as_str(), m.text.trim()), ("日本語", "すみません"), "ISO-2022-JP without a label");
        let m = read(
            b"From: a@b.example\r\nSubject: \xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2! \xfc\xd4\xcf \xd4\xc5\xd3\xd4\r\n\r\n\
              \xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2! \xfc\xd4\xcf \xd0\xd2\xcf\xd7\xc5\xd2\xcb\xc1.\r\n",
        );
        assert_eq!(m.subject, "Привет, мир! Это тест", "unlabelled KOI8-R");
        assert_eq!(m.text.trim(), "Привет, мир! Это проверка.");
        let m = read(
            b"From: a@b.example\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nHi Mom -+Jjo--! +ZeVnLIqe x\r\n",
        );
        assert_eq!(m.text.trim(), "Hi Mom -\u{263a}-! 日本語 x");
        let m = read("From: a@b.example\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n你好，世界\r\n".as_bytes());
        assert_eq!(m.text.trim(), "你好，世界", "UTF-8 labelled as GB2312");
        let m = read(
            b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
              body\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n \
              filename*0*=UTF-8''%E6%97%A5%E6%9C;\r\n filename*1*=%AC%E8%AA%9E;\r\n filename*2=.txt\r\n\r\ndata\r\n--XX\r\n\
              Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"\x1b$BF|K\\8l\x1b(B.doc\"\r\n\r\n\
              data\r\n--XX--\r\n",
        );
        let names: Vec<&str> = m.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["日本語.txt", "日本語.doc"], "RFC 2231 continuations and raw ISO-2022-JP names");
    }

    #[test]
    fn reads_the_facts_of_a_plain_message() {
        let m = mail(
            "From: Ann Example <Ann@Example.org>\r\nTo: help@desk.test\r\nCc: bob@example.org, bad-address\r\n\
             Subject: Printer =?utf-8?q?kaputt?=\r\nMessage-ID: <abc@example.org>\r\nIn-Reply-To: <x@y>\r\n\
             References: <w@y> <x@y>\r\nDate: Tue, 1 Mar 2022 10:00:00 +0000\r\n\r\nIt does not print.\r\n",
        );
        assert_eq!(m.from, Some(MailAddress { address: "ann@example.org".into(), name: Some("Ann Example".into()) }));
        assert_eq!(m.to.len(), 1);
        assert_eq!(m.cc.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(), ["bob@example.org"]);
        assert_eq!(m.subject, "Printer kaputt");
        assert_eq!(m.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(m.ancestors(), ["x@y", "w@y"]);
        assert_eq!(m.text, "It does not print.");
        assert_eq!(m.date.map(|d| d.as_second()), Some(1_646_128_800));
        assert_eq!(m.automation, Automation::Human);
    }

    #[test]
    fn a_missing_or_broken_sender_is_none_not_an_error() {
        assert_eq!(mail("Subject: x\r\n\r\nbody").from, None);
        // No closing `>`: read leniently or not at all, but never as something else.
        let unclosed = mail("From: foo <foo@bar.com\r\nSubject: x\r\n\r\nbody").from.map(|a| a.address);
        assert!(unclosed.is_none() || unclosed.as_deref() == Some("foo@bar.com"), "{unclosed:?}");
        assert_eq!(mail("").text, "");
    }

    #[test]
    fn header_text_cannot_carry_line_breaks() {
        let m = mail("From: a@b.cd\r\nSubject: =?utf-8?q?one=0D=0ABcc=3A_x=40y=2Ez?=\r\n\r\nhi");
        assert_eq!(m.subject, "one Bcc: x@y.z");
    }

    #[test]
    fn over_limit_attachments_are_dropped_and_listed() {
        let big = "A".repeat(400);
        let raw = format!(
            "From: a@b.cd\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee files\r\n\
             --XX\r\nContent-Type: application/pdf; name=small.pdf\r\nContent-Disposition: attachment; filename=small.pdf\r\n\r\nPDF\r\n\
             --XX\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Disposition: attachment; filename=big.pdf\r\n\r\n{big}\r\n--XX--\r\n"
        );
        let m = parse(raw.as_bytes(), &ParseLimits { max_attachment_bytes: 100, ..ParseLimits::default() });
        assert_eq!(m.text, "see files");
        assert_eq!(m.files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>(), ["small.pdf"]);
        assert_eq!(m.dropped.len(), 1);
        assert_eq!(m.dropped[0].filename, "big.pdf");
    }
}
