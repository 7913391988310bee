//! Attachment names and types: whatever a client or mail sends, what we store and serve is safe
//! to show and to download.

/// Makes an uploaded file name safe to store and show: no path, no control or bidirectional
/// override characters, no Windows device names, at most 200 characters (keeping the extension).
pub fn sanitize_filename(raw: &str) -> String {
    // Both separators: a name from Windows may carry `..\..\`.
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .map(|c| if matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').trim();
    let mut name = if trimmed.is_empty() { "attachment".to_owned() } else { trimmed.to_owned() };
    let stem = name.split('.').next().unwrap_or_default().to_ascii_uppercase();
    const DEVICES: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1",
        "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    if DEVICES.contains(&stem.as_str()) {
        name.insert(0, '_');
    }
    if name.chars().count() > 200 {
        let ext: String = name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.chars().count() <= 16)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let keep = 200 - ext.chars().count();
        name = name.chars().take(keep).collect::<String>() + &ext;
    }
    name
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// The media type to serve a stored file with: a well-formed declared type, except types a
/// browser could run or render actively, which are served as opaque bytes.
pub fn served_content_type(declared: &str) -> String {
    let t = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let well_formed = t.split_once('/').is_some_and(|(a, b)| {
        let token = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
        };
        token(a) && token(b)
    });
    let active = t.contains("html")
        || t.contains("xml")
        || t.contains("svg")
        || t.contains("javascript")
        || t.contains("ecmascript")
        || t == "text/css";
    if !well_formed || active { "application/octet-stream".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_plain_file_names() {
        let cases = [
            ("../../etc/passwd", "passwd"),
            ("..\\..\\win.ini", "win.ini"),
            ("a\0b.txt", "ab.txt"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("report\r\nSet-Cookie: x.pdf", "reportSet-Cookie_ x.pdf"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("\"><svg onload=alert(1)>.pdf", "___svg onload=alert(1)_.pdf"),
            ("", "attachment"),
            ("...", "attachment"),
            ("Résumé 2026.pdf", "Résumé 2026.pdf"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_filename(raw), want, "{raw:?}");
        }
        let long = format!("{}.pdf", "x".repeat(300));
        let cut = sanitize_filename(&long);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with(".pdf"));
    }

    #[test]
    fn active_types_are_served_as_bytes() {
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/javascript",
            "TEXT/HTML; charset=utf-8",
            "garbage",
            "",
            "a/b/c",
        ] {
            assert_eq!(served_content_type(t), "application/octet-stream", "{t}");
        }
        assert_eq!(served_content_type("image/png"), "image/png");
        assert_eq!(served_content_type("application/pdf; name=x"), "application/pdf");
    }
}
