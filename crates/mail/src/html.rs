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
