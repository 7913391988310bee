//! HTML bodies: made inert for display (ammonia), and turned into text for search, quote
//! stripping and the plain conversation view.

use std::collections::HashSet;

/// Sanitises an HTML body: no scripts, event handlers, forms, frames, styles that run code,
/// `<base>`/`<meta>`, or `javascript:` links; images load only from the message itself
/// (`cid:`), so a remote image cannot track the reader or reach an internal address.
pub fn sanitise(html: &str) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| {
            if element == "img" && attribute == "src" && !value.trim_start().to_ascii_lowercase().starts_with("cid:") {
                return None;
            }
            Some(value.into())
        });
    builder.clean(html).to_string()
}

/// Sanitises an HTML body for an agent's "formatted view": like [`sanitise`], but inline
/// images (`cid:`) point at `cid_base` + their id (served from the stored message), and remote
/// images are kept only when the agent asked for them (`remote_images`): loading one tells the
/// sender the mail was read, and may reach an internal address.
pub fn sanitise_for_view(html: &str, remote_images: bool, cid_base: &str) -> String {
    let cid_base = cid_base.to_owned();
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            if element != "img" || attribute != "src" {
                return Some(value.into());
            }
            let v = value.trim();
            let lower = v.to_ascii_lowercase();
            if lower.starts_with("cid:") {
                return Some(format!("{cid_base}{}", cid_key(&v[4..])).into());
            }
            (remote_images && (lower.starts_with("https://") || lower.starts_with("http://"))).then(|| value.into())
        });
    builder.clean(html).to_string()
}

/// A Content-ID as a URL path segment: `cid:` URLs are percent-encoded (RFC 2392) and part
/// headers are not, so both are decoded, stripped of `<>`, and kept to characters that are
/// safe in a path. Compare Content-IDs by this.
pub fn cid_key(id: &str) -> String {
    let bytes = id.trim().trim_start_matches('<').trim_end_matches('>').as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_' | '$' | '+' | '=' | '!' | '~'))
        .collect()
}

/// The readable text of an HTML body: block elements become line breaks, `<blockquote>`
/// content is prefixed with `> ` (so quote stripping treats it like a text quote), scripts,
/// styles and the head are dropped, and character references are decoded.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut quote_depth = 0usize;
    let mut skip_until: Option<&'static str> = None;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest, quote_depth, skip_until.is_some());
            break;
        };
        push_text(&mut out, &rest[..lt], quote_depth, skip_until.is_some());
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("script", false) => skip_until = Some("script"),
            ("style", false) => skip_until = Some("style"),
            ("head", false) => skip_until = Some("head"),
            ("title", false) => skip_until = Some("title"),
            ("blockquote", false) => {
                new_line(&mut out, quote_depth);
                quote_depth += 1;
            }
            ("blockquote", true) => {
                quote_depth = quote_depth.saturating_sub(1);
                new_line(&mut out, quote_depth);
            }
            ("br", _) => new_line(&mut out, quote_depth),
            // A rule often separates the answer from the quoted message (web mail).
            ("hr", false) => {
                new_line(&mut out, quote_depth);
                out.push_str("________________________________");
                new_line(&mut out, quote_depth);
            }
            (
                "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "ul" | "ol" | "pre",
                _,
            ) => new_line(&mut out, quote_depth),
            _ => {}
        }
    }
    // Collapse runs of blank lines to one.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end();
        if line.trim_start_matches('>').trim().is_empty() && !line.starts_with('>') {
            blank += 1;
            if blank > 1 {
                continue;
            }
            text.push('\n');
            continue;
        }
        blank = 0;
        text.push_str(line.trim_start_matches(' '));
        text.push('\n');
    }
    text.trim_matches('\n').to_owned()
}

fn new_line(out: &mut String, quote_depth: usize) {
    out.push('\n');
    for _ in 0..quote_depth {
        out.push_str("> ");
    }
}

fn push_text(out: &mut String, text: &str, quote_depth: usize, skipping: bool) {
    if skipping {
        return;
    }
    let decoded = decode_entities(text);
    let mut last_space = out.ends_with(' ') || out.ends_with('\n');
    for c in decoded.chars() {
        if c == '\n' || c == '\r' || c == '\t' || c == ' ' {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            continue;
        }
        if c == '\u{a0}' {
            out.push(' ');
            continue;
        }
        if out.ends_with('\n') && quote_depth > 0 {
            for _ in 0..quote_depth {
                out.push_str("> ");
            }
        }
        out.push(c);
        last_space = false;
    }
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(|c: char| c == ';' || c == '&' || c.is_whitespace()).map(|i| i + 1);
        let decoded =
            end.filter(|e| rest[*e..].starts_with(';') && *e <= 10).and_then(|e| entity(&rest[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| !c.is_control() || *c == '\n');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "euro" => '€',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formatted_view_shows_remote_images_only_when_asked() {
        let html = r#"<p>Hi<img src="cid:logo%40x.example"><img src="https://tracker.example/p.gif"><img src="http://10.0.0.5/admin"></p>"#;
        let blocked = sanitise_for_view(html, false, "/desk/mail/1/cid/");
        assert!(blocked.contains(r#"src="/desk/mail/1/cid/logo@x.example""#), "{blocked}");
        assert!(!blocked.contains("tracker.example") && !blocked.contains("10.0.0.5"), "{blocked}");
        let shown = sanitise_for_view(html, true, "/desk/mail/1/cid/");
        assert!(shown.contains("https://tracker.example/p.gif"), "{shown}");
        // Opting in never lets code through.
        let hostile = r#"<img src="https://x.example/a.png" onerror="alert(1)"><img src=" javascript:alert(1)">"#;
        let shown = sanitise_for_view(hostile, true, "/c/");
        assert!(!shown.contains("onerror") && !shown.contains("javascript"), "{shown}");
        assert_eq!(cid_key("<part1.06090408.01060107@example.net>"), "part1.06090408.01060107@example.net");
        assert_eq!(cid_key("a/../b?c"), "a..bc");
    }

    #[test]
    fn active_content_is_removed() {
        let dirty = r#"<p onclick="x()">Hi</p><script>alert(1)</script><iframe src=" javascript:alert(1)"></iframe>
            <svg onload="alert(1)"></svg><meta http-equiv="refresh" content="0;url=http://evil"><form action="http://evil"><input></form>
            <base href="http://evil/"><div style="background:expression(alert(1));-moz-binding:url(x)">s</div>
            <a href="javascript:alert(1)">j</a><a href="https://ok.example/">ok</a><img src="http://10.0.0.5/admin"><img src="cid:logo@x">"#;
        let clean = sanitise(dirty).to_lowercase();
        for bad in [
            "<script",
            "onclick",
            "onload",
            "<iframe",
            "<svg",
            "<meta",
            "<form",
            "<base",
            "expression(",
            "binding",
            "javascript:",
            "10.0.0.5",
            "style=",
        ] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("https://ok.example/"));
        assert!(clean.contains("cid:logo@x"));
    }

    #[test]
    fn html_becomes_text_with_quotes_marked() {
        let text = to_text(
            "<html><head><style>p{}</style><title>T</title></head><body><p>Hello&nbsp;there &amp; <b>you</b></p>\
             <div>On Monday, Bob wrote:<blockquote>Old<br>text</blockquote></div><script>x</script></body></html>",
        );
        assert_eq!(text, "Hello there & you\n\nOn Monday, Bob wrote:\n> Old\n> text");
    }
}
