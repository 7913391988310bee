//! `cargo xtask soak-mail`: QUALITY-CASES J73 as a measurement. Mail arrives at a steady rate
//! (default 1,000 a minute for 10 minutes) through the relay endpoint while agents use the
//! desk; at the end every message must be stored and processed (none dropped, the queue
//! drained), and the report gives the page latencies agents had meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use crate::load::percentile;
use crate::mail_bench::{DESK, Setup, messages, serve};

#[derive(clap::Args)]
pub struct SoakArgs {
    /// Minutes mail keeps arriving.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Messages a minute.
    #[arg(long, default_value_t = 1000)]
    per_minute: u64,
    /// Agents using the desk meanwhile (each: queue page, a ticket page, the ticket list API,
    /// then a pause of a quarter second — a brisk person, not a load generator).
    #[arg(long, default_value_t = 4)]
    agents: usize,
}

/// Page latencies in microseconds, by page.
#[derive(Default)]
struct Pages {
    queue: Vec<u64>,
    ticket: Vec<u64>,
    list_api: Vec<u64>,
    errors: usize,
}

pub async fn run(binary: &Path, work: &Path, texts: &[String], args: &SoakArgs) -> Result<String> {
    let total = usize::try_from(args.minutes * args.per_minute)?;
    eprintln!(
        "== mail soak: {} messages/min for {} min, {} agents in the desk",
        args.per_minute, args.minutes, args.agents
    );
    let setup = Setup::fresh(binary, work, "mail-soak")?;
    setup.run(&["mailbox", "add", "support", "--address", DESK], None)?;
    let token = setup.run(&["token", "create", "--user", "admin@desk.example"], None)?.trim().to_owned();
    let (mut server, base) = serve(&setup).await?;
    let pid = server.id();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let cookie = crate::server::sign_in(&http, &base, "admin@desk.example", "a long bench password").await?;

    let batch = Arc::new(messages(texts, total, 7, "soak"));
    let delivered = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let failed = Arc::new(AtomicUsize::new(0));
    let sending = Arc::new(AtomicBool::new(true));
    let pages = Arc::new(Mutex::new(Pages::default()));

    // Agents: they read the queue and tickets the mail opened while it keeps coming.
    let mut agents = Vec::new();
    for a in 0..args.agents {
        let (http, base, cookie, token, sending, pages) =
            (http.clone(), base.clone(), cookie.clone(), token.clone(), sending.clone(), pages.clone());
        agents.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(a as u64);
            while sending.load(Ordering::Relaxed) {
                let timed = |path: String, bearer: bool| {
                    let (http, base, cookie, token) = (http.clone(), base.clone(), cookie.clone(), token.clone());
                    async move {
                        let started = Instant::now();
                        let req = http.get(format!("{base}{path}"));
                        let req = if bearer { req.bearer_auth(token) } else { req.header("cookie", cookie) };
                        let ok = match req.send().await {
                            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        (started.elapsed().as_micros() as u64, ok)
                    }
                };
                let (q, q_ok) = timed("/desk?view=open".into(), false).await;
                let (t, t_ok) = timed(format!("/desk/tickets/{}", rng.random_range(1001..=1050)), false).await;
                let (l, l_ok) = timed("/api/v1/tickets?limit=50&sort=-number".into(), true).await;
                {
                    let mut p = pages.lock().await;
                    p.queue.push(q);
                    // Early on, a ticket the agent asks for may not exist yet (numbers start at 1001).
                    if t_ok {
                        p.ticket.push(t);
                    }
                    p.list_api.push(l);
                    p.errors += usize::from(!q_ok) + usize::from(!l_ok);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }

    // Mail at a steady rate: each message is sent at its time, however long earlier ones take.
    let interval = Duration::from_secs_f64(60.0 / args.per_minute as f64);
    let started = Instant::now();
    let mut senders = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval * u32::try_from(i)?;
        tokio::time::sleep_until(due.into()).await;
        let (http, base, token, batch, delivered, failed) =
            (http.clone(), base.clone(), token.clone(), batch.clone(), delivered.clone(), failed.clone());
        senders.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = http
                .post(format!("{base}/api/v1/mail/inbound?mailbox=support"))
                .bearer_auth(&token)
                .header("content-type", "message/rfc822")
                .body(batch[i].clone())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                    delivered.lock().await.push(sent.elapsed().as_micros() as u64)
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if i % (args.per_minute as usize) == 0 && i > 0 {
            eprintln!("   {} min: {i} messages sent", i / args.per_minute as usize);
        }
    }
    for s in senders {
        s.await?;
    }
    let sending_took = started.elapsed();
    sending.store(false, Ordering::Relaxed);
    for a in agents {
        a.await?;
    }

    // Drained: nothing pending, and every message accounted for in the log.
    let drain_started = Instant::now();
    let (mut by_status, mut pending);
    loop {
        (by_status, pending) = count_inbound(&http, &base, &token).await?;
        if pending == 0 {
            break;
        }
        if drain_started.elapsed() > Duration::from_secs(300) {
            bail!("{pending} messages still pending 5 minutes after the last one was sent");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain = drain_started.elapsed();
    let stored: usize = by_status.iter().map(|(_, n)| n).sum();
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();

    let mut delivered = delivered.lock().await.clone();
    delivered.sort_unstable();
    let mut p = pages.lock().await;
    p.queue.sort_unstable();
    p.ticket.sort_unstable();
    p.list_api.sort_unstable();
    let row = |name: &str, v: &[u64]| {
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 95.0),
            percentile(v, 99.0),
            v.last().copied().unwrap_or(0) as f64 / 1000.0
        )
    };
    let statuses = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
    let mut report = format!(
        "Sent {total} messages in {:.1} s ({:.0}/min) through the relay endpoint while {} agents used the desk.\n\n\
         | what | result |\n|---|---|\n\
         | accepted (201) | {} |\n| refused or failed | {} |\n| in the mail log | {stored} ({statuses}) |\n\
         | dropped (sent − logged) | **{}** |\n| still pending after the last message | drained in {:.1} s |\n\
         | server peak RSS | {} MiB |\n\n\
         | latency during the soak | requests | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n",
        sending_took.as_secs_f64(),
        total as f64 / sending_took.as_secs_f64() * 60.0,
        args.agents,
        delivered.len(),
        failed.load(Ordering::Relaxed),
        total.saturating_sub(stored),
        drain.as_secs_f64(),
        peak_rss_kib / 1024,
    );
    report.push_str(&row("delivery (`POST /api/v1/mail/inbound`)", &delivered));
    report.push_str(&row("desk queue page (`/desk?view=open`)", &p.queue));
    report.push_str(&row("desk ticket page", &p.ticket));
    report.push_str(&row("ticket list API (50 rows)", &p.list_api));
    report.push_str(&format!("\nPage errors: {}.\n", p.errors));
    if total.saturating_sub(stored) > 0 || failed.load(Ordering::Relaxed) > 0 {
        bail!("messages were lost or refused:\n{report}");
    }
    Ok(report)
}

/// The mail log's messages by state, and how many are pending.
async fn count_inbound(http: &reqwest::Client, base: &str, token: &str) -> Result<(Vec<(String, usize)>, usize)> {
    let mut by_status: Vec<(String, usize)> = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: serde_json::Value = http
            .get(format!("{base}/api/v1/mail/inbound?limit=200{cursor}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        for m in page["items"].as_array().into_iter().flatten() {
            let s = m["status"].as_str().unwrap_or("?").to_owned();
            match by_status.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => by_status.push((s, 1)),
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    by_status.sort();
    let pending = by_status.iter().find(|(s, _)| s == "pending").map_or(0, |(_, n)| *n);
    Ok((by_status, pending))
}
