//! The benchmark's data: N believable tickets as JSON Lines for `ferrodesk import`, recombined
//! from the real ticket texts in `shared/data/tickets` so that search sees real vocabulary.
//!
//! Deterministic (a fixed seed), so two runs of the suite measure the same database. Alongside
//! the tickets it writes what the load generator needs to know about them (`Meta`): the
//! people, the benchmark agent's group and its tickets, and search words chosen by their
//! measured document frequency.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One agent per this many tickets would be silly; a fixed team per group is what desks have.
pub const AGENTS_PER_GROUP: usize = 5;
/// Tickets are spread over this many days before "now".
const HISTORY_DAYS: i64 = 3 * 365;
const TAGS: &[&str] = &["vpn", "laptop", "email", "printer", "onboarding", "password", "vip", "network", "licence"];

/// What the load generator needs to know about the generated data.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub tickets: usize,
    pub comments: usize,
    /// Group names, one per category of the source data.
    pub groups: Vec<String>,
    /// Agents' addresses with the index of their group.
    pub agents: Vec<(String, usize)>,
    /// The benchmark agent sees only this group's tickets.
    pub bench_group: usize,
    /// Line numbers (1-based; ticket numbers on an empty database) of tickets in `bench_group`.
    pub bench_group_tickets: Vec<u64>,
    /// Those of them still open (new, open or pending): comments go there.
    pub bench_group_open: Vec<u64>,
    /// A word found in about 1% of tickets, and a rare one (a handful of tickets).
    pub common_word: String,
    pub common_word_tickets: usize,
    pub rare_word: String,
    pub rare_word_tickets: usize,
    /// Texts for new tickets and comments during the run.
    pub sample_texts: Vec<String>,
}

struct Source {
    /// Per category: the texts.
    by_category: Vec<(String, Vec<String>)>,
}

fn read_source(path: &Path) -> Result<Source> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let mut by_category: Vec<(String, Vec<String>)> = Vec::new();
    for record in reader.records() {
        let record = record.context("the ticket texts are not valid CSV")?;
        let (Some(text), Some(category)) = (record.get(0), record.get(1)) else { continue };
        let text = text.trim();
        if text.split_whitespace().count() < 3 {
            continue;
        }
        match by_category.iter_mut().find(|(c, _)| c == category) {
            Some((_, texts)) => texts.push(text.to_owned()),
            None => by_category.push((category.to_owned(), vec![text.to_owned()])),
        }
    }
    if by_category.is_empty() {
        bail!("{} holds no tickets", path.display());
    }
    by_category.sort_by_key(|(_, texts)| std::cmp::Reverse(texts.len()));
    Ok(Source { by_category })
}

/// Every usable text of the source, in order (for the mail benchmark).
pub fn all_texts(path: &Path) -> Result<Vec<String>> {
    Ok(read_source(path)?.by_category.into_iter().flat_map(|(_, texts)| texts).take(20_000).collect())
}

/// A text of at most `max_words` words: the start of one source text, sometimes followed by a
/// piece of another of the same category, so a million tickets are not 20 copies of 48k.
fn recombine(rng: &mut StdRng, texts: &[String], max_words: usize) -> String {
    let first = texts.choose(rng).map(String::as_str).unwrap_or("help");
    let mut words: Vec<&str> = first.split_whitespace().take(max_words).collect();
    if rng.random_bool(0.5) && words.len() < max_words {
        let second = texts.choose(rng).map(String::as_str).unwrap_or("");
        let skip = second.split_whitespace().count() / 2;
        words.extend(second.split_whitespace().skip(skip).take(max_words - words.len()));
    }
    words.join(" ")
}

fn subject_of(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    let mut s = words.join(" ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + s.get(1..).unwrap_or("");
    }
    s
}

pub fn group_name(category: &str) -> String {
    format!("{category} team")
}

pub fn agent_email(group: usize, n: usize) -> String {
    format!("agent{group}-{n}@bench.example")
}

/// Writes `tickets` JSON lines to `out` and returns their description.
pub fn generate(source_path: &Path, tickets: usize, out: &Path) -> Result<Meta> {
    let source = read_source(source_path)?;
    let mut rng = StdRng::seed_from_u64(0x5eed_fe44_0de5);
    let now = Timestamp::now();
    let groups: Vec<String> = source.by_category.iter().map(|(c, _)| group_name(c)).collect();
    let agents: Vec<(String, usize)> =
        (0..groups.len()).flat_map(|g| (0..AGENTS_PER_GROUP).map(move |n| (agent_email(g, n), g))).collect();
    // Weighted by the source's own category sizes.
    let weights: Vec<usize> = source.by_category.iter().map(|(_, t)| t.len()).collect();
    let total_weight: usize = weights.iter().sum();
    let requesters = (tickets / 50).clamp(50, 20_000);
    let organisations = (requesters / 40).clamp(5, 500);
    // The benchmark agent's group: the second largest, a realistic slice (~20%) of the desk.
    let bench_group = 1.min(groups.len() - 1);

    let mut writer = BufWriter::with_capacity(1 << 20, File::create(out).with_context(|| out.display().to_string())?);
    let mut doc_freq: HashMap<String, usize> = HashMap::new();
    let mut bench_group_tickets = Vec::new();
    let mut bench_group_open = Vec::new();
    let mut comments_total = 0;
    for i in 0..tickets {
        let mut pick = rng.random_range(0..total_weight);
        let mut cat = 0;
        while pick >= weights[cat] {
            pick -= weights[cat];
            cat += 1;
        }
        let (category, texts) = &source.by_category[cat];
        // Arrivals grow slowly over the years: the age is skewed towards the recent past.
        let age_days = (HISTORY_DAYS as f64 * rng.random::<f64>().powf(1.3)) as i64;
        let created = now - SignedDuration::from_secs(age_days * 86_400 + rng.random_range(0..86_400));
        let status = if age_days > 30 {
            match rng.random_range(0..100) {
                0 => "open",
                1 => "pending",
                2..=4 => "resolved",
                _ => "closed",
            }
        } else {
            match rng.random_range(0..100) {
                0..=14 => "new",
                15..=39 => "open",
                40..=49 => "pending",
                50..=74 => "resolved",
                _ => "closed",
            }
        };
        let description = recombine(&mut rng, texts, 120);
        let subject = subject_of(&description);
        let requester_n = rng.random_range(0..requesters);
        let requester = format!("user{requester_n}@customer{}.example", requester_n % organisations);
        let agent = (status != "new").then(|| agent_email(cat, rng.random_range(0..AGENTS_PER_GROUP)));
        let comment_count = rng.random_range(3..=5);
        let mut at = created;
        let mut comments = Vec::with_capacity(comment_count);
        let mut bodies: Vec<String> = Vec::with_capacity(comment_count);
        for c in 0..comment_count {
            at += SignedDuration::from_secs(rng.random_range(60..3 * 86_400));
            let at = at.min(now);
            let from_agent = c % 2 == 0 && agent.is_some();
            bodies.push(recombine(&mut rng, texts, 60));
            comments.push(serde_json::json!({
                "author": if from_agent { agent.clone() } else { Some(requester.clone()) },
                "body": bodies[c],
                "internal": from_agent && rng.random_bool(0.2),
                "created_at": at.to_string(),
            }));
        }
        comments_total += comment_count;
        // Document frequency over everything search reads: each word once per ticket.
        let words: HashSet<&str> = std::iter::once(description.as_str())
            .chain(bodies.iter().map(String::as_str))
            .flat_map(str::split_whitespace)
            .filter(|w| w.len() >= 5 && w.chars().all(|c| c.is_ascii_lowercase()))
            .collect();
        for word in words {
            match doc_freq.get_mut(word) {
                Some(n) => *n += 1,
                None => {
                    doc_freq.insert(word.to_owned(), 1);
                }
            }
        }
        let updated = at.min(now);
        let resolved = matches!(status, "resolved" | "closed").then(|| updated.to_string());
        let impact = ["low", "medium", "high"][rng.random_range(0..3)];
        let urgency = ["low", "medium", "high"][rng.random_range(0..3)];
        let channel = ["web", "email", "phone", "api"][rng.random_range(0..4)];
        let tags: Vec<&str> = (0..rng.random_range(0..3)).filter_map(|_| TAGS.choose(&mut rng).copied()).collect();
        let line = serde_json::json!({
            "subject": subject,
            "description": description,
            "type": if rng.random_bool(0.6) { "incident" } else { "service_request" },
            "status": status,
            "impact": impact,
            "urgency": urgency,
            "requester": requester,
            "organisation": format!("Customer {}", requester_n % organisations),
            "group": groups[cat],
            "assignee": agent,
            "category": category,
            "tags": tags,
            "channel": channel,
            "created_at": created.to_string(),
            "updated_at": updated.to_string(),
            "resolved_at": resolved,
            "closed_at": (status == "closed").then(|| updated.to_string()),
            "resolution_note": resolved.as_ref().map(|_| "Fixed and confirmed with the requester."),
            "comments": comments,
        });
        serde_json::to_writer(&mut writer, &line)?;
        writer.write_all(b"\n")?;
        if cat == bench_group {
            bench_group_tickets.push(i as u64 + 1);
            if matches!(status, "new" | "open" | "pending") {
                bench_group_open.push(i as u64 + 1);
            }
        }
    }
    writer.flush()?;

    let target = (tickets / 100).max(1);
    let (common_word, common_word_tickets) = doc_freq
        .iter()
        .min_by_key(|(w, n)| ((**n as i64 - target as i64).abs(), (*w).clone()))
        .map(|(w, n)| (w.clone(), *n))
        .unwrap_or_default();
    let rare_target = (tickets / 100_000).clamp(3, 10);
    let (rare_word, rare_word_tickets) = doc_freq
        .iter()
        .filter(|(_, n)| **n >= rare_target)
        .min_by_key(|(w, n)| (**n, (*w).clone()))
        .map(|(w, n)| (w.clone(), *n))
        .unwrap_or_default();
    let sample_texts = (0..200)
        .map(|_| {
            let (_, texts) = &source.by_category[bench_group];
            recombine(&mut rng, texts, 80)
        })
        .collect();
    // Keep the list small enough to read quickly; a sample is all the load needs.
    bench_group_tickets.truncate(200_000);
    Ok(Meta {
        tickets,
        comments: comments_total,
        groups,
        agents,
        bench_group,
        bench_group_tickets,
        bench_group_open,
        common_word,
        common_word_tickets,
        rare_word,
        rare_word_tickets,
        sample_texts,
    })
}
