//! The load generator: a fixed number of clients, each sending one request after another for a
//! bounded time, over keep-alive HTTP/1.1 to one or more `ferrodesk serve` processes (round
//! robin). Latency is measured per operation from the first byte sent to the last byte read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// What a client does in one operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /healthz`: the HTTP stack without the store — the ceiling for reads.
    HelloWorld,
    /// `POST /api/v1/tickets` as a requester.
    CreateTicket,
    /// `POST /api/v1/tickets/{n}/comments` as an agent, on an open ticket of their group.
    AddComment,
    /// `GET /api/v1/tickets/{n}?include=comments`: the ticket with its conversation, one request.
    GetTicket,
    /// The agent's ticket page (`/desk/tickets/{n}`), rendered server-side with its conversation.
    TicketPage,
    /// The agent's queue page "All open in my groups" (`/desk?view=open`): 50 rows by priority
    /// then age, with the five view counts.
    QueuePage,
    /// `GET /api/v1/tickets?q=WORD` (first 50) for a word in about 1% of tickets, as the agent.
    SearchCommon,
    /// The same for a word in a handful of tickets.
    SearchRare,
    /// 70% reads (ticket, queue, search in equal parts), 20% comments, 10% new tickets.
    Mixed,
}

impl Scenario {
    pub fn label(self) -> &'static str {
        match self {
            Self::HelloWorld => "hello world (GET /healthz)",
            Self::CreateTicket => "1. create ticket (API)",
            Self::AddComment => "2. add comment (API)",
            Self::GetTicket => "3. get ticket + conversation (API)",
            Self::TicketPage => "3b. ticket page (HTML)",
            Self::QueuePage => "4. agent queue page with counts (HTML)",
            Self::SearchCommon => "5a. search, word in ~1% (API)",
            Self::SearchRare => "5b. search, rare word (API)",
            Self::Mixed => "6. mixed 70/20/10",
        }
    }
}

/// Everything the clients need: where to go, who they are, what exists.
pub struct Context {
    pub bases: Vec<String>,
    pub agent_token: String,
    pub requester_token: String,
    /// `Cookie` header value of the agent's browser session, for the HTML pages.
    pub agent_cookie: String,
    pub tickets: Vec<u64>,
    pub open_tickets: Vec<u64>,
    pub texts: Vec<String>,
    pub common_word: String,
    pub rare_word: String,
    next_base: AtomicUsize,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bases: Vec<String>,
        agent_token: String,
        requester_token: String,
        agent_cookie: String,
        tickets: Vec<u64>,
        open_tickets: Vec<u64>,
        texts: Vec<String>,
        common_word: String,
        rare_word: String,
    ) -> Self {
        Self {
            bases,
            agent_token,
            requester_token,
            agent_cookie,
            tickets,
            open_tickets,
            texts,
            common_word,
            rare_word,
            next_base: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> &str {
        let i = self.next_base.fetch_add(1, Ordering::Relaxed);
        &self.bases[i % self.bases.len()]
    }
}

/// One scenario at one concurrency.
#[derive(Serialize, Clone)]
pub struct Measurement {
    pub scenario: Scenario,
    pub label: &'static str,
    pub concurrency: usize,
    pub operations: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
}

pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .context("cannot build the HTTP client")
}

async fn expect_ok(response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    let response = response.map_err(|e| e.to_string())?;
    let status = response.status();
    // Read the whole body: the time to the last byte is what a user waits for.
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body).chars().take(200).collect::<String>()))
    }
}

async fn one(ctx: &Context, http: &reqwest::Client, scenario: Scenario, rng: &mut StdRng) -> Result<(), String> {
    let base = ctx.base();
    let pick = |rng: &mut StdRng, from: &[u64]| from.choose(rng).copied().unwrap_or(1);
    match scenario {
        Scenario::HelloWorld => expect_ok(http.get(format!("{base}/healthz")).send().await).await,
        Scenario::CreateTicket => {
            let text = ctx.texts.choose(rng).map(String::as_str).unwrap_or("help");
            let subject: String = text.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
            let body = serde_json::json!({"subject": subject, "description": text, "urgency": "medium"});
            expect_ok(
                http.post(format!("{base}/api/v1/tickets")).bearer_auth(&ctx.requester_token).json(&body).send().await,
            )
            .await
        }
        Scenario::AddComment => {
            let n = pick(rng, &ctx.open_tickets);
            let text = ctx.texts.choose(rng).map(String::as_str).unwrap_or("noted");
            let body = serde_json::json!({"body": text, "internal": rng.random_bool(0.3)});
            expect_ok(
                http.post(format!("{base}/api/v1/tickets/{n}/comments"))
                    .bearer_auth(&ctx.agent_token)
                    .json(&body)
                    .send()
                    .await,
            )
            .await
        }
        Scenario::GetTicket => {
            let n = pick(rng, &ctx.tickets);
            expect_ok(
                http.get(format!("{base}/api/v1/tickets/{n}?include=comments"))
                    .bearer_auth(&ctx.agent_token)
                    .send()
                    .await,
            )
            .await
        }
        Scenario::TicketPage => {
            let n = pick(rng, &ctx.tickets);
            expect_ok(http.get(format!("{base}/desk/tickets/{n}")).header("cookie", &ctx.agent_cookie).send().await)
                .await
        }
        Scenario::QueuePage => {
            expect_ok(http.get(format!("{base}/desk?view=open")).header("cookie", &ctx.agent_cookie).send().await).await
        }
        Scenario::SearchCommon | Scenario::SearchRare => {
            let word = if scenario == Scenario::SearchCommon { &ctx.common_word } else { &ctx.rare_word };
            expect_ok(
                http.get(format!("{base}/api/v1/tickets"))
                    .query(&[("q", word.as_str()), ("limit", "50")])
                    .bearer_auth(&ctx.agent_token)
                    .send()
                    .await,
            )
            .await
        }
        Scenario::Mixed => {
            let roll = rng.random_range(0..100);
            let chosen = match roll {
                0..=22 => Scenario::GetTicket,
                23..=45 => Scenario::QueuePage,
                46..=69 => Scenario::SearchCommon,
                70..=89 => Scenario::AddComment,
                _ => Scenario::CreateTicket,
            };
            Box::pin(one(ctx, http, chosen, rng)).await
        }
    }
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// What one load client saw: each operation's latency in µs, the errors and the first of them.
type ClientOutcome = (Vec<u64>, usize, Option<String>);

/// One client: operations one after another until `deadline`.
async fn run_client(
    ctx: Arc<Context>,
    http: reqwest::Client,
    scenario: Scenario,
    seed: u64,
    deadline: Instant,
) -> ClientOutcome {
    let mut rng = StdRng::seed_from_u64(seed * 7919 + 1);
    let mut latencies: Vec<u64> = Vec::with_capacity(16_384);
    let mut errors = 0;
    let mut first_error = None;
    while Instant::now() < deadline {
        let t = Instant::now();
        let outcome = one(&ctx, &http, scenario, &mut rng).await;
        latencies.push(t.elapsed().as_micros() as u64);
        if let Err(e) = outcome {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    (latencies, errors, first_error)
}

/// Runs `scenario` with `concurrency` clients for `duration` and summarises it. The clients are
/// spread over one thread per core, each with its own single-threaded runtime and HTTP client
/// (as `wrk` does), so a response wakes its client on the thread that read it. On one
/// multi-threaded runtime the hand-offs between its threads left the machine half idle and
/// the server waiting (docs/PERFORMANCE.md).
pub async fn measure(
    ctx: Arc<Context>,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
) -> Result<Measurement> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, concurrency.max(1));
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let ctx = ctx.clone();
        let seeds: Vec<u64> = (0..concurrency).filter(|c| c % threads == t).map(|c| c as u64).collect();
        handles.push(std::thread::spawn(move || -> Result<Vec<ClientOutcome>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a load thread's runtime")?;
            let http = client()?;
            runtime.block_on(async move {
                let clients: Vec<_> = seeds
                    .into_iter()
                    .map(|seed| tokio::spawn(run_client(ctx.clone(), http.clone(), scenario, seed, deadline)))
                    .collect();
                let mut outcomes = Vec::with_capacity(clients.len());
                for c in clients {
                    outcomes.push(c.await.context("a load client failed")?);
                }
                Ok(outcomes)
            })
        }));
    }
    let outcomes = tokio::task::spawn_blocking(move || -> Result<Vec<ClientOutcome>> {
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow::anyhow!("a load thread panicked"))??);
        }
        Ok(all)
    })
    .await
    .context("waiting for the load threads")??;
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (latencies, e, fe) in outcomes {
        all.extend(latencies);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if all.is_empty() {
        bail!("no operation completed in {seconds:.1} s");
    }
    all.sort_unstable();
    Ok(Measurement {
        scenario,
        label: scenario.label(),
        concurrency,
        operations: all.len(),
        errors,
        seconds,
        per_second: all.len() as f64 / seconds,
        p50_ms: percentile(&all, 50.0),
        p95_ms: percentile(&all, 95.0),
        p99_ms: percentile(&all, 99.0),
        max_ms: percentile(&all, 100.0),
        first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[5000], 99.0), 5.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
