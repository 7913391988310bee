//! Bytes in whatever charset a message names — or fails to name, or names wrongly — turned
//! into text. A replacement character (U+FFFD) is stored only where no decoding exists: the
//! declared charset is used when the bytes are valid in it; otherwise UTF-8 when they are
//! valid UTF-8; otherwise the charset `chardetng` (Firefox's detector) finds most likely.
//! Every WHATWG encoding through `encoding_rs`; UTF-7 (not a WHATWG encoding) by hand.

use encoding_rs::{Encoding, ISO_2022_JP, UTF_8};

/// How much of a long text the detector reads: enough to tell charsets apart, bounded so a
/// huge body costs no more than reading it once.
const DETECTION_PREFIX: usize = 64 * 1024;

/// Decodes `bytes` labelled `declared` (a MIME charset name, possibly missing or wrong).
pub fn decode(bytes: &[u8], declared: Option<&str>) -> String {
    let label = declared.map(|l| l.trim().trim_matches('"').to_ascii_lowercase()).filter(|l| !l.is_empty());
    if let Some(label) = &label {
        if is_utf7(label) {
            return utf7(bytes);
        }
        if let Some(encoding) = Encoding::for_label(label.as_bytes()) {
            // Mislabelled UTF-8 (a legacy label on text a modern client wrote in UTF-8) is far
            // more common than legacy text that happens to be valid multi-byte UTF-8.
            if encoding != UTF_8 && !bytes.is_ascii() && is_multibyte_utf8(bytes) {
                return String::from_utf8_lossy(bytes).into_owned();
            }
            if let Some(text) = strict(encoding, bytes) {
                return text;
            }
        } else if let Some(decoder) = mail_parser::decoders::charsets::map::charset_decoder(label.as_bytes()) {
            // A name only mail knows (e.g. an IBM code page): mail-parser's table has it.
            return decoder(bytes);
        }
    }
    undeclared(bytes)
}

/// Text whose charset is missing, unknown, or does not fit the bytes.
pub fn undeclared(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if bytes.contains(&0x1b)
            && let Some(jp) = strict(ISO_2022_JP, bytes)
        {
            // 7-bit Japanese mail without its label: its escape sequences, decoded.
            return jp;
        }
        return text.to_owned();
    }
    let mut detector = chardetng::EncodingDetector::new();
    let prefix = &bytes[..bytes.len().min(DETECTION_PREFIX)];
    detector.feed(prefix, prefix.len() == bytes.len());
    let encoding = detector.guess(None, true);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

/// `bytes` decoded only if they are valid in `encoding`. ISO-2022-JP text that returns to
/// ASCII and leaves it again at once (two escape sequences side by side, as joined lines and
/// header words have) is valid to every mail program but not to the WHATWG decoder: the
/// needless return is dropped first.
fn strict(encoding: &'static Encoding, bytes: &[u8]) -> Option<String> {
    if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        return Some(text.into_owned());
    }
    if encoding != ISO_2022_JP {
        return None;
    }
    let mut joined = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let to_ascii = matches!(bytes.get(i..i + 3), Some(b"\x1b(B" | b"\x1b(J"));
        if to_ascii && bytes.get(i + 3) == Some(&0x1b) {
            i += 3;
            continue;
        }
        joined.push(bytes[i]);
        i += 1;
    }
    encoding.decode_without_bom_handling_and_without_replacement(&joined).map(|t| t.into_owned())
}

/// Valid UTF-8 with at least one multi-byte sequence.
fn is_multibyte_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.is_ascii())
}

fn is_utf7(label: &str) -> bool {
    matches!(label, "utf-7" | "utf7" | "unicode-1-1-utf-7" | "csunicode11utf7" | "x-unicode-2-0-utf-7")
}

/// UTF-7 (RFC 2152): `+` opens a run of modified base64 of UTF-16 that ends at the first
/// character outside base64 (a `-` there is absorbed, anything else is kept); `+-` is `+`.
pub fn utf7(bytes: &[u8]) -> String {
    fn sextet(b: u8) -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    /// The UTF-16 units of a run's bits; leftover bits (fewer than 16) are padding.
    fn flush(units: &[u16], out: &mut String) {
        out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'+' {
            // Outside runs UTF-7 is ASCII; an 8-bit byte is not UTF-7 at all.
            out.push(if b.is_ascii() { char::from(b) } else { char::REPLACEMENT_CHARACTER });
            continue;
        }
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut bits, mut count, mut units) = (0u32, 0u32, Vec::new());
        while let Some(v) = bytes.get(i).and_then(|b| sextet(*b)) {
            bits = (bits << 6) | v;
            count += 6;
            if count >= 16 {
                count -= 16;
                units.push((bits >> count) as u16);
                bits &= (1 << count) - 1;
            }
            i += 1;
        }
        flush(&units, &mut out);
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_charset_decodes_exactly() {
        let cases: &[(&[u8], Option<&str>, &str)] = &[
            (b"\x1b$BF|K\\8l\x1b(B", Some("iso-2022-jp"), "日本語"),
            // The same without its label: the escape sequences give it away.
            (b"\x1b$BF|K\\8l\x1b(B", None, "日本語"),
            (b"\x1b$BF|\x1b(B\x1b$BK\\8l\x1b(B", Some("iso-2022-jp"), "日本語"),
            (b"\x93\xfa\x96\x7b\x8c\xea", Some("shift_jis"), "日本語"),
            (b"\xc6\xfc\xcb\xdc\xb8\xec", Some("euc-jp"), "日本語"),
            (b"\xc4\xe3\xba\xc3", Some("gb2312"), "你好"),
            (b"\x81\x30\x81\x30", Some("gb18030"), "\u{80}"),
            (b"\xa7\x41\xa6\x6e", Some("big5"), "你好"),
            (b"\xc7\xd1\xb1\xb9", Some("ks_c_5601-1987"), "한국"),
            (b"\xd0\xd2\xc9\xd7\xc5\xd4", Some("koi8-r"), "привет"),
            (b"caf\xe9", Some("iso-8859-1"), "café"),
            (b"\xf9\xec\xe5\xed", Some("iso-8859-8-i"), "שלום"),
            // Mislabelled UTF-8 is UTF-8.
            ("你好，世界".as_bytes(), Some("gb2312"), "你好，世界"),
            ("café".as_bytes(), Some("iso-8859-1"), "café"),
            // A label that fails the bytes, an unknown label, no label.
            (b"caf\xe9 cr\xe8me br\xfbl\xe9e", Some("utf-8"), "café crème brûlée"),
            (b"caf\xe9 cr\xe8me br\xfbl\xe9e", Some("x-foo"), "café crème brûlée"),
            ("plain ünïcode".as_bytes(), None, "plain ünïcode"),
            (b"Hi Mom -+Jjo--!", Some("utf-7"), "Hi Mom -\u{263a}-!"),
        ];
        for (bytes, label, expected) in cases {
            assert_eq!(decode(bytes, *label), *expected, "{label:?} {bytes:?}");
        }
    }

    #[test]
    fn unlabelled_legacy_text_is_detected() {
        let koi8 = b"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2! \xfc\xd4\xcf \xd0\xd2\xcf\xd7\xc5\xd2\xcb\xc1 \xd4\xc5\xcb\xd3\xd4\xc1 \xce\xc1 \xd2\xd5\xd3\xd3\xcb\xcf\xcd \xd1\xda\xd9\xcb\xc5.";
        assert_eq!(decode(koi8, None), "Привет, мир! Это проверка текста на русском языке.");
        let sjis = b"\x82\xb1\x82\xcc\x83\x81\x81\x5b\x83\x8b\x82\xcd\x83\x65\x83\x58\x83\x67\x97\x70\x82\xcc\x83\x81\x81\x5b\x83\x8b\x82\xc5\x82\xb7\x81\x42";
        assert_eq!(decode(sjis, None), "このメールはテスト用のメールです。");
    }

    #[test]
    fn utf7_keeps_every_character() {
        let cases: &[(&[u8], &str)] = &[
            (b"A+ImIDkQ.", "A\u{2262}\u{391}."),
            (b"Hi Mom -+Jjo--!", "Hi Mom -\u{263a}-!"),
            (b"+ZeVnLIqe-", "日本語"),
            // The run ends at a space, kept; at the end of the text; "+-" is "+".
            (b"+ZeVnLIqe x", "日本語 x"),
            (b"x +ZeVnLIqe", "x 日本語"),
            (b"1 +- 1", "1 + 1"),
            (b"caf\xe9", "caf\u{fffd}"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(utf7(bytes), *expected, "{bytes:?}");
        }
    }
}
