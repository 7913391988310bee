//! Golden results for every message of the corpus: what the ingest would make of it when it
//! names no ticket of ours (a new ticket, or stored and ignored), who wrote it, the visible
//! text a reply would show, and the files kept. Reviewed by hand once; any change in parsing,
//! classification or quote stripping shows up here as a diff.
//!
//! `FERRODESK_UPDATE_GOLDEN=1 cargo test -p ferrodesk-mail --test golden` rewrites the file
//! after a deliberate change; review the diff before committing it.

use std::path::Path;

use ferrodesk_mail::decide::{Decision, Facts, decide};
use ferrodesk_mail::{ParseLimits, parse, reply};
use serde_json::{Value, json};

fn summary(raw: &[u8]) -> Value {
    let mail = parse(raw, &ParseLimits::default());
    let visible: String = reply::visible_reply(&mail.text).chars().take(240).collect();
    let effect = match decide(&Facts::from_stranger(&mail, &visible)) {
        Decision::NewTicket { .. } => "ticket",
        Decision::Ignore(_) => "ignored",
        Decision::Quarantine(_) => "quarantined",
        other => panic!("an unthreaded message from a stranger cannot be {other:?}"),
    };
    json!({
        "effect": effect,
        "automation": mail.automation.label(),
        "failed": match &mail.automation {
            ferrodesk_mail::Automation::Bounce { recipients } => recipients.clone(),
            _ => vec![],
        },
        "from": mail.from.map(|f| f.address),
        "subject": mail.subject.chars().take(120).collect::<String>(),
        "text_chars": mail.text.chars().count(),
        "visible": visible,
        "html": mail.html.is_some(),
        "files": mail.files.iter().map(|f| json!([f.filename, f.content_type, f.data.len()])).collect::<Vec<_>>(),
        "dropped": mail.dropped.len(),
        "verification": ferrodesk_mail::classify::looks_like_account_verification(&mail.subject, &mail.text),
        "calendar": mail.calendar_method,
    })
}

#[test]
fn every_corpus_message_matches_its_golden_result() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("corpus"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".eml"));
    names.sort();
    let mut produced = serde_json::Map::new();
    for name in &names {
        let raw = std::fs::read(dir.join("corpus").join(name)).unwrap_or_default();
        produced.insert(name.clone(), summary(&raw));
    }
    let text = serde_json::to_string_pretty(&Value::Object(produced.clone())).unwrap_or_default() + "\n";
    let golden_path = dir.join("golden").join("corpus.json");
    if std::env::var("FERRODESK_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&golden_path, &text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{} is missing or broken ({e}); see this file's header", golden_path.display()));
    let mut differing = Vec::new();
    for name in &names {
        if golden.get(name) != produced.get(name) {
            differing.push(format!(
                "{name}:\n  golden:   {}\n  produced: {}",
                golden.get(name).map(Value::to_string).unwrap_or_default(),
                produced.get(name).map(Value::to_string).unwrap_or_default()
            ));
        }
    }
    assert_eq!(
        golden.as_object().map_or(0, |o| o.len()),
        names.len(),
        "messages added or removed: update the golden file"
    );
    assert!(differing.is_empty(), "{} of {} differ:\n{}", differing.len(), names.len(), differing.join("\n"));
}

/// Issue 19: a replacement character is stored only where the message itself carries one (as
/// the UTF-8 bytes of U+FFFD); every other byte of the corpus has a decoding.
#[test]
fn no_replacement_character_where_a_decoding_exists() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".eml") {
            continue;
        }
        let raw = std::fs::read(entry.path()).unwrap_or_default();
        let mail = parse(&raw, &ParseLimits::default());
        let mut texts = vec![mail.subject.clone(), reply::visible_reply(&mail.text)];
        texts.extend(mail.files.iter().map(|f| f.filename.clone()));
        let carries_one = raw.windows(3).any(|w| w == "\u{fffd}".as_bytes());
        if texts.iter().any(|t| t.contains('\u{fffd}')) && !carries_one {
            offenders.push(name);
        }
    }
    offenders.sort();
    assert!(offenders.is_empty(), "U+FFFD where a decoding exists: {offenders:?}");
}
