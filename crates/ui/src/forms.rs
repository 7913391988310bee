//! Form plumbing: multipart forms with files, safe redirect targets, plain-language labels.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::http::StatusCode;
use ferrodesk_core::priority::{Priority, Urgency};
use ferrodesk_core::ticket::Status;

use crate::error::UiError;

/// A submitted multipart form: text fields (repeatable) and files.
#[derive(Default)]
pub struct FormData {
    pub fields: HashMap<String, Vec<String>>,
    pub files: Vec<(String, String, Vec<u8>)>,
}

impl FormData {
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).and_then(|v| v.first()).map(String::as_str).unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// Reads the whole form; a file larger than `max_file` bytes, or a form larger than that
    /// plus 1 MB in all, is refused while streaming (forms may arrive without a length).
    pub async fn read(mut form: Multipart, max_file: usize) -> Result<Self, UiError> {
        let max_total = max_file.saturating_add(1024 * 1024);
        let mut total = 0usize;
        let too_big = || {
            UiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The form is larger than {} MB in all.", max_total / (1024 * 1024)),
            )
        };
        let bad = |e: axum::extract::multipart::MultipartError| {
            UiError::new(StatusCode::BAD_REQUEST, format!("The form could not be read: {}", e.body_text()))
        };
        let mut data = FormData::default();
        while let Some(mut field) = form.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(filename) = field.file_name().map(str::to_owned) {
                let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    total += chunk.len();
                    if total > max_total {
                        return Err(too_big());
                    }
                    if bytes.len() + chunk.len() > max_file {
                        return Err(UiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("{filename} is larger than {} MB.", max_file / (1024 * 1024)),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // Browsers send an empty part when no file was chosen.
                if !filename.is_empty() || !bytes.is_empty() {
                    data.files.push((filename, content_type, bytes));
                }
            } else {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    total += chunk.len();
                    if total > max_total {
                        return Err(too_big());
                    }
                    if bytes.len() + chunk.len() > 300_000 {
                        return Err(UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "A field of the form is too long."));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| UiError::new(StatusCode::BAD_REQUEST, "The form is not UTF-8 text."))?;
                data.fields.entry(name).or_default().push(text);
            }
        }
        Ok(data)
    }
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `next` target is followed only when it is a path on this site (QUALITY-CASES 34).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2000;
    ok.then_some(next)
}

/// How a requester reads a status.
pub fn status_for_requester(s: Status) -> &'static str {
    match s {
        Status::New => "Received",
        Status::Open => "In progress",
        Status::Pending => "Waiting for your answer",
        Status::Resolved => "Resolved — please confirm",
        Status::Closed => "Closed",
    }
}

/// The urgency choices of the portal, in the requester's words.
pub const URGENCY_WORDS: [(Urgency, &str); 3] = [
    (Urgency::High, "I can't work"),
    (Urgency::Medium, "I can work, with difficulty"),
    (Urgency::Low, "It's an inconvenience"),
];

/// CSS class of a priority badge (colour always comes with the priority's name as text).
pub fn priority_class(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "badge prio-critical",
        Priority::High => "badge prio-high",
        Priority::Medium => "badge prio-medium",
        Priority::Low => "badge prio-low",
        Priority::Planning => "badge prio-planning",
    }
}

pub fn status_class(s: Status) -> &'static str {
    match s {
        Status::New => "badge st-new",
        Status::Open => "badge st-open",
        Status::Pending => "badge st-pending",
        Status::Resolved => "badge st-resolved",
        Status::Closed => "badge st-closed",
    }
}

/// "3 h", "2 d" — how long ago.
pub fn age(since: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let secs = now.duration_since(since).as_secs().max(0);
    match secs {
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// An instant for people: `2026-11-22 14:05 UTC`.
pub fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Splits text into (piece, is a searched word) so that a template can mark the hits; words are
/// matched whole and without case, as the search matched them.
pub fn highlight(text: &str, terms: &[String]) -> Vec<(String, bool)> {
    if terms.is_empty() {
        return vec![(text.to_owned(), false)];
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<(String, bool)>| {
        if !word.is_empty() {
            let hit = terms.iter().any(|t| *t == word.to_lowercase());
            out.push((std::mem::take(word), hit));
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            match out.last_mut() {
                Some((s, false)) => s.push(c),
                _ => out.push((c.to_string(), false)),
            }
        }
    }
    flush(&mut word, &mut out);
    // Merge neighbouring non-hits to keep the markup small.
    let mut merged: Vec<(String, bool)> = Vec::new();
    for (piece, hit) in out {
        match merged.last_mut() {
            Some((s, false)) if !hit => s.push_str(&piece),
            _ => merged.push((piece, hit)),
        }
    }
    merged
}

/// The part of a long text around its first searched word.
pub fn snippet(text: &str, terms: &[String]) -> Option<String> {
    let lower = text.to_lowercase();
    let at = terms.iter().filter_map(|t| lower.find(t.as_str())).min()?;
    let start = lower[..at].char_indices().rev().nth(60).map(|(i, _)| i).unwrap_or(0);
    let tail: String = text[start..].chars().take(160).collect();
    Some(format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        tail,
        if text[start..].chars().count() > 160 { "…" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_words_are_marked_whole_and_without_case() {
        let parts = super::highlight("VPN drops; vpnclient ok. Vpn!", &["vpn".to_string()]);
        let hits: Vec<&str> = parts.iter().filter(|(_, h)| *h).map(|(s, _)| s.as_str()).collect();
        assert_eq!(hits, vec!["VPN", "Vpn"]);
        let joined: String = parts.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(joined, "VPN drops; vpnclient ok. Vpn!", "nothing lost");
        assert_eq!(super::snippet("short text about vpn", &["vpn".into()]).as_deref(), Some("short text about vpn"));
        assert_eq!(super::snippet("nothing", &["vpn".into()]), None);
        // Without search words (every queue page): the text whole, one unmarked piece.
        assert_eq!(super::highlight("VPN drops; ok.", &[]), vec![("VPN drops; ok.".to_string(), false)]);
    }

    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next("/desk?view=mine"), Some("/desk?view=mine"));
        for evil in [
            "//evil.com",
            "/\\evil.com",
            "https:evil.com",
            "https://evil.com",
            "javascript:alert(1)",
            "evil.com",
            "/a\r\nLocation: //x",
            "",
        ] {
            assert_eq!(safe_next(evil), None, "{evil:?}");
        }
        // Encoded slashes stay a path on our site.
        assert_eq!(safe_next("/%2F%2Fevil.com"), Some("/%2F%2Fevil.com"));
    }
}
