//! `cargo xtask`: project tasks that are programs rather than tests.
//!
//! `cargo xtask bench` is the benchmark suite of docs/PERFORMANCE.md: it builds Ferrodesk in
//! release mode, generates and imports the data (kept between runs), starts `ferrodesk serve`
//! as a separate process, drives it over HTTP from this process, and writes the report.

mod generate;
mod load;
mod mail_bench;
mod mail_soak;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::load::Scenario;
use crate::server::{Backend, Bench};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the benchmark suite and write target/bench/report-BACKEND.{md,json}.
    Bench(BenchArgs),
    /// Measure the inbound mail pipeline (pipe, relay endpoint, IMAP) on SQLite and write
    /// target/bench/report-mail.md.
    BenchMail(mail_bench::MailBenchArgs),
    /// Mail at a steady rate for minutes while agents use the desk (QUALITY-CASES J73); writes
    /// target/bench/report-mail-soak.md.
    SoakMail(mail_soak::SoakArgs),
    /// Write N generated tickets as JSON Lines (the input of `ferrodesk import`).
    Generate {
        #[arg(long, default_value_t = 10_000)]
        tickets: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Tickets in the main database.
    #[arg(long, default_value_t = 1_000_000)]
    tickets: usize,
    /// Smaller databases on which the read scenarios are also measured, to show how latency
    /// grows with size (comma-separated; empty for none).
    #[arg(long, default_value = "10000,100000", value_delimiter = ',')]
    scale: Vec<usize>,
    /// Seconds each scenario runs at each concurrency.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Numbers of concurrent clients.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Run on PostgreSQL: a throwaway cluster under target/bench unless --database-url is given.
    #[arg(long)]
    pg: bool,
    /// An existing PostgreSQL server (a database per size is created on it).
    #[arg(long, requires = "pg")]
    database_url: Option<String>,
    /// Run only these scenarios (for profiling one of them).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Also run the mixed workload against two server processes sharing PostgreSQL.
    #[arg(long, requires = "pg")]
    two_nodes: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate { tickets, out } => generate::generate(&source_texts(), tickets, &out).map(|meta| {
            println!(
                "{} tickets, {} comments; common word {:?} in {} tickets, rare word {:?} in {}",
                meta.tickets,
                meta.comments,
                meta.common_word,
                meta.common_word_tickets,
                meta.rare_word,
                meta.rare_word_tickets
            );
        }),
        Command::Bench(args) => block_on(bench(args)),
        Command::BenchMail(args) => block_on(mail_report(
            "report-mail.md",
            "Inbound mail on SQLite",
            "30% of the messages are replies threaded by In-Reply-To.",
            |binary, work, texts| async move { mail_bench::run(&binary, &work, &texts, &args).await },
        )),
        Command::SoakMail(args) => block_on(mail_report(
            "report-mail-soak.md",
            "Mail soak on SQLite (QUALITY-CASES J73)",
            "Load generator on the same machine.",
            |binary, work, texts| async move { mail_soak::run(&binary, &work, &texts, &args).await },
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn source_texts() -> PathBuf {
    std::env::var_os("FERRODESK_TICKET_TEXTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data/tickets/it-service-tickets.csv.gz"))
}

/// Builds the release binary, runs one mail measurement over the real ticket texts, and writes
/// and prints its report as `target/bench/FILE`.
async fn mail_report<Run, Done>(file: &str, title: &str, footer: &str, run: Run) -> Result<()>
where
    Run: FnOnce(PathBuf, PathBuf, Vec<String>) -> Done,
    Done: std::future::Future<Output = Result<String>>,
{
    let root = workspace_root();
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    build_release()?;
    let texts = mail_bench::texts(&source_texts())?;
    let table = run(root.join("target/release/ferrodesk"), work.clone(), texts).await?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let report = format!("# {title}\n\n{table}\nMachine: {cores} cores. {footer}\n");
    std::fs::write(work.join(file), &report)?;
    println!("{report}");
    Ok(())
}

/// Runs `work` on a multi-threaded runtime.
fn block_on(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

fn build_release() -> Result<()> {
    eprintln!("== building ferrodesk (release)");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--locked", "-p", "ferrodesk"])
        .current_dir(workspace_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the release build failed");
    }
    Ok(())
}

async fn bench(args: BenchArgs) -> Result<()> {
    if args.tickets == 0 || args.concurrency.contains(&0) {
        bail!("--tickets and --concurrency must be positive");
    }
    let root = workspace_root();
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    eprintln!("== building ferrodesk (release)");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--locked", "-p", "ferrodesk"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the release build failed");
    }
    let binary = root.join("target/release/ferrodesk");
    let backend = if args.pg { Backend::postgres(&work, args.database_url.clone()).await? } else { Backend::Sqlite };
    let bench = Bench { binary, work, backend, source: source_texts() };
    let duration = Duration::from_secs(args.seconds.max(1));
    let http = load::client()?;
    let mut report = report::Report::new(&bench.backend, args.tickets, args.seconds);

    report.startup_empty_ms = bench.startup_on_empty().await?;

    let mut sizes: Vec<usize> = args.scale.iter().copied().filter(|s| *s > 0 && *s < args.tickets).collect();
    sizes.sort_unstable();
    sizes.push(args.tickets);
    for (i, size) in sizes.iter().copied().enumerate() {
        let main_size = i + 1 == sizes.len();
        let prepared = bench.prepare(size).await?;
        report.add_dataset(&prepared);
        let node = bench.start(&prepared, 1).await?;
        let extra = if main_size && args.two_nodes { Some(bench.start(&prepared, 2).await?) } else { None };
        if main_size {
            report.startup_ms = Some(node.startup_ms);
            report.idle_rss_kib = node.rss_kib().map(|(now, _)| now);
        }
        let ctx = Arc::new(node.context(&prepared, &http).await?);
        let scenarios: &[Scenario] = if main_size {
            &[
                Scenario::HelloWorld,
                Scenario::CreateTicket,
                Scenario::AddComment,
                Scenario::GetTicket,
                Scenario::TicketPage,
                Scenario::QueuePage,
                Scenario::SearchCommon,
                Scenario::SearchRare,
                Scenario::Mixed,
            ]
        } else {
            &[
                Scenario::GetTicket,
                Scenario::TicketPage,
                Scenario::QueuePage,
                Scenario::SearchCommon,
                Scenario::SearchRare,
            ]
        };
        let concurrency: Vec<usize> = if main_size { args.concurrency.clone() } else { vec![1] };
        // A short warm-up so the first figures are not the page cache's.
        load::measure(ctx.clone(), Scenario::Mixed, 4, Duration::from_secs(1)).await?;
        for scenario in scenarios.iter().filter(|s| args.only.is_empty() || args.only.contains(s)) {
            for c in &concurrency {
                if *scenario == Scenario::Mixed && *c == *concurrency.iter().max().unwrap_or(c) {
                    // The peak the target means: under the mixed load at the highest concurrency.
                    node.reset_peak_rss();
                }
                let m = load::measure(ctx.clone(), *scenario, *c, duration).await?;
                let rss = node.rss_kib().map(|(now, peak)| format!("rss {} MB (peak {} MB)", now / 1024, peak / 1024));
                eprintln!(
                    "{size:>8} tickets  {:<42} c={:<3} {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  {}",
                    m.label,
                    m.concurrency,
                    m.per_second,
                    m.p50_ms,
                    m.p99_ms,
                    m.errors,
                    rss.unwrap_or_default()
                );
                if let Some(e) = &m.first_error {
                    eprintln!("           first error: {e}");
                }
                report.add(size, m);
            }
        }
        if let Some(second) = &extra {
            let both = Arc::new(node.context_with(&prepared, &http, &[second]).await?);
            for c in &args.concurrency {
                let m = load::measure(both.clone(), Scenario::Mixed, *c, duration).await?;
                eprintln!("two nodes: mixed c={c} {:.0}/s p99 {:.2} ms errors {}", m.per_second, m.p99_ms, m.errors);
                report.two_nodes.push(m);
            }
        }
        if main_size {
            report.peak_rss_kib = node.rss_kib().map(|(_, peak)| peak);
            report.idle_rss_after_kib = node.rss_kib().map(|(now, _)| now);
        }
        node.stop().await?;
        if let Some(second) = extra {
            second.stop().await?;
        }
    }
    let (md, json) = report.write(&bench.work)?;
    println!("{}", std::fs::read_to_string(&md)?);
    eprintln!("report written to {} and {}", md.display(), json.display());
    Ok(())
}
