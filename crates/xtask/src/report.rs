//! The benchmark report: every measurement, the targets of docs/PERFORMANCE.md with a plain
//! verdict, written as Markdown (for people) and JSON (for tools).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::load::{Measurement, Scenario};
use crate::server::{Backend, Prepared};

#[derive(Serialize)]
pub struct Dataset {
    tickets: usize,
    comments: usize,
    import_seconds: f64,
    database_bytes: u64,
}

#[derive(Serialize)]
pub struct Row {
    tickets: usize,
    #[serde(flatten)]
    measurement: Measurement,
    /// Throughput as a fraction of the hello-world route at the same concurrency.
    fraction_of_hello_world: Option<f64>,
}

#[derive(Serialize)]
pub struct Report {
    backend: &'static str,
    tickets: usize,
    seconds_per_scenario: u64,
    machine: String,
    pub startup_empty_ms: f64,
    pub startup_ms: Option<f64>,
    pub idle_rss_kib: Option<u64>,
    /// Peak during the mixed workload at the highest concurrency (the target's "peak").
    pub peak_rss_kib: Option<u64>,
    /// Resident memory when the run ended (caches warm, no load).
    pub idle_rss_after_kib: Option<u64>,
    datasets: Vec<Dataset>,
    rows: Vec<Row>,
    pub two_nodes: Vec<Measurement>,
    targets: Vec<Verdict>,
}

#[derive(Serialize)]
struct Verdict {
    what: String,
    target: String,
    measured: String,
    met: bool,
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0);
    format!("{cpus} CPUs, {} GiB", mem_kib / (1024 * 1024))
}

impl Report {
    pub fn new(backend: &Backend, tickets: usize, seconds: u64) -> Self {
        Self {
            backend: backend.name(),
            tickets,
            seconds_per_scenario: seconds,
            machine: machine(),
            startup_empty_ms: 0.0,
            startup_ms: None,
            idle_rss_kib: None,
            peak_rss_kib: None,
            idle_rss_after_kib: None,
            datasets: Vec::new(),
            rows: Vec::new(),
            two_nodes: Vec::new(),
            targets: Vec::new(),
        }
    }

    pub fn add_dataset(&mut self, p: &Prepared) {
        self.datasets.push(Dataset {
            tickets: p.tickets,
            comments: p.comments,
            import_seconds: p.import_seconds,
            database_bytes: p.database_bytes,
        });
    }

    pub fn add(&mut self, tickets: usize, measurement: Measurement) {
        let hello = self
            .rows
            .iter()
            .find(|r| {
                r.tickets == tickets
                    && r.measurement.scenario == Scenario::HelloWorld
                    && r.measurement.concurrency == measurement.concurrency
            })
            .map(|r| r.measurement.per_second);
        let fraction_of_hello_world = hello.filter(|h| *h > 0.0).map(|h| measurement.per_second / h);
        self.rows.push(Row { tickets, measurement, fraction_of_hello_world });
    }

    fn find(&self, scenario: Scenario, concurrency: usize) -> Option<&Measurement> {
        self.rows
            .iter()
            .find(|r| {
                r.tickets == self.tickets
                    && r.measurement.scenario == scenario
                    && r.measurement.concurrency == concurrency
            })
            .map(|r| &r.measurement)
    }

    /// The targets for this backend (PostgreSQL: half the throughput, same latencies).
    fn judge(&mut self) {
        let throughput_share = if self.backend == "sqlite" { 1.0 } else { 0.5 };
        let mut v = Vec::new();
        if let Some(m) = self.find(Scenario::CreateTicket, 16) {
            let want = 5000.0 * throughput_share;
            v.push(Verdict {
                what: "create ticket, 16 clients".into(),
                target: format!("≥ {want:.0}/s, p99 ≤ 20 ms"),
                measured: format!("{:.0}/s, p99 {:.1} ms", m.per_second, m.p99_ms),
                met: m.per_second >= want && m.p99_ms <= 20.0 && m.errors == 0,
            });
        }
        let latency = [
            (Scenario::GetTicket, "get ticket with conversation (API)", 3.0),
            (Scenario::TicketPage, "ticket page (HTML, issue 3: < 20 ms)", 20.0),
            (Scenario::QueuePage, "agent queue first page with counts", 15.0),
            (Scenario::SearchCommon, "full-text search, word in ~1%, visibility-filtered", 50.0),
            (Scenario::SearchRare, "full-text search, rare word, visibility-filtered", 50.0),
        ];
        for (scenario, what, p99) in latency {
            for c in [1, 16, 64] {
                if let Some(m) = self.find(scenario, c) {
                    v.push(Verdict {
                        what: format!("{what}, {c} client(s)"),
                        target: format!("p99 ≤ {p99} ms"),
                        measured: format!("p99 {:.2} ms", m.p99_ms),
                        met: m.p99_ms <= p99 && m.errors == 0,
                    });
                }
            }
        }
        if let (Some(idle), Some(peak)) = (self.idle_rss_kib, self.peak_rss_kib) {
            v.push(Verdict {
                what: "idle RSS / peak RSS".into(),
                target: "≤ 30 MB / ≤ 200 MB".into(),
                measured: format!("{:.1} MB / {:.1} MB", idle as f64 / 1024.0, peak as f64 / 1024.0),
                met: idle <= 30 * 1024 && peak <= 200 * 1024,
            });
        }
        if let Some(ms) = self.startup_ms {
            v.push(Verdict {
                what: format!("start-up to ready, {} tickets", self.tickets),
                target: "≤ 1 s".into(),
                measured: format!("{ms:.0} ms"),
                met: ms <= 1000.0,
            });
        }
        // An import rate is a throughput too: on PostgreSQL half the SQLite rate, 10 min per million.
        if let Some(d) = self.datasets.iter().find(|d| d.tickets == self.tickets) {
            let minutes = 5.0 / throughput_share;
            let budget = minutes * 60.0 * self.tickets as f64 / 1_000_000.0;
            v.push(Verdict {
                what: format!("import of {} tickets with comments", self.tickets),
                target: format!("≤ {budget:.0} s ({minutes:.0} min per million)"),
                measured: format!("{:.1} s", d.import_seconds),
                met: d.import_seconds <= budget,
            });
        }
        self.targets = v;
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Benchmark: {} tickets on {} ({}; {} s per scenario)\n",
            self.tickets, self.backend, self.machine, self.seconds_per_scenario
        );
        let _ = writeln!(s, "## Targets\n\n| what | target | measured | |\n|---|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                t.what,
                t.target,
                t.measured,
                if t.met { "met" } else { "**missed**" }
            );
        }
        let _ = writeln!(
            s,
            "\n## Scenarios\n\n| tickets | scenario | clients | ops/s | p50 ms | p95 ms | p99 ms | max ms | errors | of hello world |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.rows {
            let m = &r.measurement;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                r.tickets,
                m.label,
                m.concurrency,
                m.per_second,
                m.p50_ms,
                m.p95_ms,
                m.p99_ms,
                m.max_ms,
                m.errors,
                r.fraction_of_hello_world.map(|f| format!("{:.0}%", f * 100.0)).unwrap_or_default()
            );
        }
        if !self.two_nodes.is_empty() {
            let _ = writeln!(
                s,
                "\n## Two server processes on one PostgreSQL (mixed workload, round robin)\n\n| clients | ops/s | p50 ms | p99 ms | errors |\n|---:|---:|---:|---:|---:|"
            );
            for m in &self.two_nodes {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.2} | {:.2} | {} |",
                    m.concurrency, m.per_second, m.p50_ms, m.p99_ms, m.errors
                );
            }
        }
        let _ = writeln!(
            s,
            "\n## Data and process\n\n| tickets | comments | import s | tickets/s | database MB | bytes per ticket |\n|---:|---:|---:|---:|---:|---:|"
        );
        for d in &self.datasets {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.0} | {:.0} | {:.0} |",
                d.tickets,
                d.comments,
                d.import_seconds,
                d.tickets as f64 / d.import_seconds.max(0.001),
                d.database_bytes as f64 / 1e6,
                d.database_bytes as f64 / d.tickets.max(1) as f64
            );
        }
        let _ = write!(s, "\nStart-up to ready: empty database {:.0} ms", self.startup_empty_ms);
        if let Some(ms) = self.startup_ms {
            let _ = write!(s, "; {} tickets {ms:.0} ms", self.tickets);
        }
        let _ = writeln!(s, ".");
        if let (Some(idle), Some(peak), Some(after)) = (self.idle_rss_kib, self.peak_rss_kib, self.idle_rss_after_kib) {
            let _ = writeln!(
                s,
                "Server RSS: idle after start {:.1} MB; peak under the mixed load {:.1} MB; at the end of the run {:.1} MB.",
                idle as f64 / 1024.0,
                peak as f64 / 1024.0,
                after as f64 / 1024.0
            );
        }
        s
    }

    pub fn write(&mut self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        self.judge();
        let md = dir.join(format!("report-{}.md", self.backend));
        let json = dir.join(format!("report-{}.json", self.backend));
        std::fs::write(&md, self.markdown())?;
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)?;
        Ok((md, json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The import verdict for 1M tickets imported in `seconds` on `backend`.
    fn import_met(backend: &Backend, seconds: f64) -> Option<bool> {
        let mut r = Report::new(backend, 1_000_000, 5);
        r.datasets.push(Dataset {
            tickets: 1_000_000,
            comments: 4_000_000,
            import_seconds: seconds,
            database_bytes: 0,
        });
        r.judge();
        r.targets.iter().find(|v| v.what.starts_with("import of")).map(|v| v.met)
    }

    #[test]
    fn an_import_on_postgresql_has_half_the_sqlite_rate_as_its_target() {
        let postgres = Backend::Postgres { cluster: None, base_url: String::new() };
        assert_eq!(import_met(&Backend::Sqlite, 290.0), Some(true));
        assert_eq!(import_met(&Backend::Sqlite, 342.0), Some(false));
        assert_eq!(import_met(&postgres, 342.0), Some(true));
        assert_eq!(import_met(&postgres, 610.0), Some(false));
    }
}
