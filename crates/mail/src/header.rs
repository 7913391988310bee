//! Header text read from the raw bytes, where mail-parser's reading loses characters: RFC 2047
//! encoded words joined before decoding (a UTF-8 character split across two words survives),
//! unencoded 8-bit or ISO-2022-JP text decoded by [`charset::undeclared`] rather than turned
//! into U+FFFD or left as escape sequences, and RFC 2231 parameters with their continuations
//! joined before decoding.

use crate::charset;

/// Headers longer than this are cut before decoding (a 1 MB header line must not cost more).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A header's raw value (`Name:` excluded) unfolded: line breaks that continue it removed.
fn unfold(raw: &[u8]) -> Vec<u8> {
    let raw = &raw[..raw.len().min(MAX_HEADER_BYTES)];
    raw.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect()
}

/// The text of an unstructured header (e.g. `Subject`), decoded.
pub fn text(raw: &[u8]) -> String {
    let raw = unfold(raw);
    let mut out = String::new();
    // Runs of encoded words in one charset are decoded together.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut literal: Vec<u8> = Vec::new();
    let mut i = 0;
    let flush_pending = |pending: &mut Option<(String, Vec<u8>)>, out: &mut String| {
        if let Some((label, bytes)) = pending.take() {
            out.push_str(&charset::decode(&bytes, Some(&label)));
        }
    };
    while i < raw.len() {
        if let Some((label, bytes, len)) = encoded_word(&raw[i..]) {
            // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
            let only_space = literal.iter().all(u8::is_ascii_whitespace);
            if !(only_space && pending.is_some()) {
                flush_pending(&mut pending, &mut out);
                out.push_str(&charset::undeclared(&literal));
            }
            literal.clear();
            match &mut pending {
                Some((current, run)) if current.eq_ignore_ascii_case(&label) && joinable(&label) => {
                    run.extend_from_slice(&bytes)
                }
                _ => {
                    flush_pending(&mut pending, &mut out);
                    pending = Some((label, bytes));
                }
            }
            i += len;
        } else {
            literal.push(raw[i]);
            i += 1;
        }
    }
    flush_pending(&mut pending, &mut out);
    out.push_str(&charset::undeclared(&literal));
    out
}

/// Whether words of this charset may split a character between them: stateful encodings
/// (ISO-2022-*, UTF-7) end every word in their initial state, and joining them would put two
/// escape sequences side by side, which decoders rightly refuse.
fn joinable(label: &str) -> bool {
    let label = label.to_ascii_lowercase();
    !(label.starts_with("iso-2022") || label.starts_with("csiso2022") || label.contains("utf-7") || label == "utf7")
}

/// `=?charset[*lang]?B|Q?text?=` at the start of `s`: (charset, decoded bytes, length).
fn encoded_word(s: &[u8]) -> Option<(String, Vec<u8>, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|b| *b == b'?')?;
    let label = std::str::from_utf8(&rest[..q1]).ok()?;
    let label = label.split('*').next().unwrap_or_default().to_owned();
    let kind = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') || label.is_empty() || label.len() > 64 {
        return None;
    }
    let body_start = q1 + 3;
    let end = rest[body_start..].windows(2).position(|w| w == b"?=")? + body_start;
    let body = &rest[body_start..end];
    if body.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let bytes = match kind.to_ascii_uppercase() {
        b'B' => mail_parser::decoders::base64::base64_decode(body)?,
        b'Q' => q_decode(body)?,
        _ => return None,
    };
    Some((label, bytes, 2 + end + 2))
}

/// RFC 2047 "Q": quoted-printable where `_` is a space.
fn q_decode(body: &[u8]) -> Option<Vec<u8>> {
    let spaced: Vec<u8> = body.iter().map(|b| if *b == b'_' { b' ' } else { *b }).collect();
    mail_parser::decoders::quoted_printable::quoted_printable_decode(&spaced)
}

/// The parameter `name` of a structured header's raw value (e.g. `filename` of
/// `Content-Disposition`), decoded: RFC 2231 (`name*=utf-8''%E2%82%AC`, continuations
/// `name*0*=`, `name*1=` … joined before decoding), or a plain value, which may carry RFC 2047
/// words (common, if not standard) or raw 8-bit text.
pub fn parameter(raw: &[u8], name: &str) -> Option<String> {
    let raw = unfold(raw);
    let mut plain: Option<Vec<u8>> = None;
    let mut sections: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (key, value) in parameters(&raw) {
        let key = key.to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(name) else { continue };
        match rest {
            "" => plain = Some(value),
            "*" => sections.push((0, true, value)),
            _ => {
                let Some(rest) = rest.strip_prefix('*') else { continue };
                let (number, extended) = match rest.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (rest, false),
                };
                if let Ok(n) = number.parse::<u32>()
                    && n < 1000
                {
                    sections.push((n, extended, value));
                }
            }
        }
    }
    if sections.is_empty() {
        return plain.map(|v| text(&v));
    }
    sections.sort_by_key(|(n, _, _)| *n);
    let mut label = None;
    let mut bytes = Vec::new();
    for (n, extended, value) in sections {
        let mut value = value.as_slice();
        if extended && n == 0 {
            // charset'language'value
            let mut parts = value.splitn(3, |b| *b == b'\'');
            if let (Some(cs), Some(_), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                label = std::str::from_utf8(cs).ok().filter(|c| !c.is_empty()).map(str::to_owned);
                value = v;
            }
        }
        if extended {
            bytes.extend(percent_encoding::percent_decode(value));
        } else {
            bytes.extend_from_slice(value);
        }
    }
    Some(match label {
        Some(label) => charset::decode(&bytes, Some(&label)),
        None => text(&bytes),
    })
}

/// `key=value` pairs after the first `;`, values unquoted. A backslash in a quoted value is
/// kept unless it escapes a quote or a backslash: senders rarely escape, and raw ISO-2022-JP
/// needs its backslashes.
fn parameters(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = raw.iter().position(|b| *b == b';').map_or(raw.len(), |p| p + 1);
    while i < raw.len() {
        while i < raw.len() && (raw[i].is_ascii_whitespace() || raw[i] == b';') {
            i += 1;
        }
        let key_start = i;
        while i < raw.len() && raw[i] != b'=' && raw[i] != b';' {
            i += 1;
        }
        let key = String::from_utf8_lossy(&raw[key_start..i]).trim().to_owned();
        if i >= raw.len() || raw[i] == b';' {
            continue;
        }
        i += 1;
        while i < raw.len() && raw[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if raw.get(i) == Some(&b'"') {
            i += 1;
            while i < raw.len() && raw[i] != b'"' {
                if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b'"' | b'\\')) {
                    i += 1;
                }
                value.push(raw[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < raw.len() && raw[i] != b';' {
                value.push(raw[i]);
                i += 1;
            }
            while value.last().is_some_and(u8::is_ascii_whitespace) {
                value.pop();
            }
        }
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_join_before_decoding() {
        let cases: &[(&[u8], &str)] = &[
            // A UTF-8 character split across two words, in B and in Q.
            (b"=?UTF-8?B?w6k=?= =?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=", "é€"),
            (b"=?UTF-8?Q?=E2=82?=\r\n =?UTF-8?Q?=AC_x?=", "€ x"),
            // Words of different charsets, and text between words.
            (b"=?iso-8859-1?q?caf=E9?= =?utf-8?b?4oKs?=", "café€"),
            (b"Re: =?utf-8?q?caf=C3=A9?= and =?utf-8?q?cr=C3=A8me?=", "Re: café and crème"),
            (b"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
            (
                b"TEST\r\n \r\n\t=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n  =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=",
                "TEST \tテストテスト",
            ),
            (b"=?utf-8*en?q?hello?=", "hello"),
            // Raw ISO-2022-JP and raw 8-bit text, without any label.
            (b"\x1b$BF|K\\8l\x1b(B test", "日本語 test"),
            ("Grüße".as_bytes(), "Grüße"),
            (b"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2! \xfc\xd4\xcf \xd4\xc5\xd3\xd4", "Привет, мир! Это тест"),
            // Not encoded words: kept as written.
            (b"=?utf-8?x?abc?= =?broken", "=?utf-8?x?abc?= =?broken"),
            (b"=?utf-8?q?a b?=", "=?utf-8?q?a b?="),
        ];
        for (raw, expected) in cases {
            assert_eq!(text(raw), *expected, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn parameters_follow_rfc_2231() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"attachment; filename*0*=UTF-8''%E6%97%A5%E6%9C;\r\n filename*1*=%AC%E8%AA%9E; filename*2=.txt",
                "日本語.txt",
            ),
            (b"attachment; filename*=iso-8859-1'fr'caf%E9.pdf", "café.pdf"),
            (b"attachment; filename=\"=?UTF-8?B?5pel5pys6Kqe?=.pdf\"", "日本語.pdf"),
            (b"attachment; filename=\"\x1b$BF|K\\8l\x1b(B.doc\"", "日本語.doc"),
            (b"attachment; filename=\"a \\\"quoted\\\" name.txt\"", "a \"quoted\" name.txt"),
            (b"attachment; size=3; filename=plain.txt ; x=y", "plain.txt"),
            (b"attachment; filename*1=b.txt; filename*0=a", "ab.txt"),
        ];
        for (raw, expected) in cases {
            assert_eq!(parameter(raw, "filename").as_deref(), Some(*expected), "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parameter(b"attachment", "filename"), None);
        assert_eq!(parameter(b"inline; filenamex=a", "filename"), None);
    }
}
