//! `cargo xtask bench-mail`: how many messages per second the inbound pipeline takes on SQLite,
//! through each way mail arrives — the MTA pipe (`ferrodesk mail ingest`, one process per
//! message), the relay endpoint (`POST /api/v1/mail/inbound`), and IMAP (a real Dovecot, read
//! by `ferrodesk serve`). Messages are built from the real ticket texts; 30% are replies that
//! name an earlier message (`In-Reply-To`), so threading is part of every figure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SECRET_KEY: &str = "q83vEjRWeJq8bN7wEjRWeJq8bN7wEjRWeJq8bN7wEjQ=";
pub(crate) const DESK: &str = "support@desk.example";
const IMAP_PASSWORD: &str = "bench-pa55";

#[derive(clap::Args)]
pub struct MailBenchArgs {
    /// Messages through the pipe (one process each).
    #[arg(long, default_value_t = 600)]
    pipe: usize,
    /// Messages through the relay endpoint.
    #[arg(long, default_value_t = 5000)]
    http: usize,
    /// Messages through IMAP.
    #[arg(long, default_value_t = 3000)]
    imap: usize,
    /// Concurrent deliveries (pipe processes, HTTP clients).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

/// Raw messages: new requests from 500 senders, and replies naming one of them.
pub(crate) fn messages(texts: &[String], count: usize, seed: u64, tag: &str) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    let mut originals: Vec<(String, String)> = Vec::new();
    for i in 0..count {
        let text = &texts[rng.random_range(0..texts.len())];
        let subject: String = text.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
        let id = format!("{tag}{i}@bench.example");
        let reply = !originals.is_empty() && rng.random_bool(0.3);
        let (from, headers, subject) = if reply {
            let (parent, from) = &originals[rng.random_range(0..originals.len())];
            (from.clone(), format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"), format!("Re: {subject}"))
        } else {
            let from = format!("user{}@customer.example", rng.random_range(0..500));
            originals.push((id.clone(), from.clone()));
            (from, String::new(), subject)
        };
        out.push(format!(
            "From: {from}\r\nTo: {DESK}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\
             {headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n\
             On Monday, the desk wrote:\r\n> an earlier message\r\n"
        ));
    }
    out
}

pub(crate) struct Setup {
    binary: PathBuf,
    dir: PathBuf,
}

impl Setup {
    fn ferrodesk(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--data-dir").arg(&self.dir).env("FERRODESK_SECRET_KEY", SECRET_KEY).env("FERRODESK_LOG", "warn");
        c
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut c = self.ferrodesk();
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().with_context(|| format!("cannot run ferrodesk {args:?}"))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("ferrodesk {args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(crate) fn fresh(binary: &Path, work: &Path, name: &str) -> Result<Self> {
        let dir = work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let setup = Self { binary: binary.to_owned(), dir };
        setup.run(&["migrate"], None)?;
        setup.run(
            &[
                "user",
                "create",
                "--email",
                "admin@desk.example",
                "--name",
                "Bench admin",
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some("a long bench password\n"),
        )?;
        Ok(setup)
    }
}

pub async fn run(binary: &Path, work: &Path, texts: &[String], args: &MailBenchArgs) -> Result<String> {
    let mut report = String::from("| path | messages | seconds | messages/s |\n|---|---|---|---|\n");
    let mut line = |path: &str, n: usize, took: Duration| {
        let rate = n as f64 / took.as_secs_f64();
        eprintln!("   {path}: {n} messages in {:.1} s = {rate:.0}/s", took.as_secs_f64());
        report.push_str(&format!("| {path} | {n} | {:.1} | **{rate:.0}** |\n", took.as_secs_f64()));
    };

    // The pipe: a process per message, as an MTA runs it.
    eprintln!("== mail: MTA pipe ({} messages, {} at a time)", args.pipe, args.concurrency);
    let setup = Setup::fresh(binary, work, "mail-pipe")?;
    setup.run(&["mailbox", "add", "support", "--address", DESK], None)?;
    let batch = Arc::new(messages(texts, args.pipe, 1, "p"));
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (batch, next, binary, dir) = (batch.clone(), next.clone(), setup.binary.clone(), setup.dir.clone());
            std::thread::spawn(move || -> Result<()> {
                let s = Setup { binary, dir };
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(m) = batch.get(i) else { return Ok(()) };
                    s.run(&["mail", "ingest", "--mailbox", "support"], Some(m))?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("a pipe worker panicked"))??;
    }
    line("pipe (`ferrodesk mail ingest`, process per message)", args.pipe, started.elapsed());

    // The relay endpoint, on a running server.
    eprintln!("== mail: relay endpoint ({} messages, {} clients)", args.http, args.concurrency);
    let setup = Setup::fresh(binary, work, "mail-http")?;
    setup.run(&["mailbox", "add", "support", "--address", DESK], None)?;
    let token = setup.run(&["token", "create", "--user", "admin@desk.example"], None)?.trim().to_owned();
    let (mut server, base) = serve(&setup).await?;
    let batch = Arc::new(messages(texts, args.http, 2, "h"));
    let http = reqwest::Client::new();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (batch, next, http, base, token) = (batch.clone(), next.clone(), http.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = batch.get(i) else { return Ok::<(), anyhow::Error>(()) };
                let r = http
                    .post(format!("{base}/api/v1/mail/inbound?mailbox=support"))
                    .bearer_auth(&token)
                    .header("content-type", "message/rfc822")
                    .body(m.clone())
                    .send()
                    .await?;
                if r.status() != reqwest::StatusCode::CREATED {
                    bail!("delivery answered {}", r.status());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    line("relay endpoint (`POST /api/v1/mail/inbound`)", args.http, started.elapsed());
    let _ = server.kill();
    let _ = server.wait();

    // IMAP: the messages wait in a Dovecot folder; the server reads them in batches.
    eprintln!("== mail: IMAP ({} messages)", args.imap);
    let setup = Setup::fresh(binary, work, "mail-imap")?;
    let dovecot = Dovecot::start(&work.join("mail-dovecot"))?;
    let batch = messages(texts, args.imap, 3, "i");
    dovecot.deliver(&batch)?;
    setup.run(
        &[
            "mailbox",
            "add",
            "support",
            "--address",
            DESK,
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            &dovecot.port.to_string(),
            "--imap-security",
            "plain",
            "--imap-user",
            DESK,
            "--imap-password-stdin",
            "--poll-seconds",
            "10",
        ],
        Some(&format!("{IMAP_PASSWORD}\n")),
    )?;
    let token = setup.run(&["token", "create", "--user", "admin@desk.example"], None)?.trim().to_owned();
    let started = Instant::now();
    let (mut server, base) = serve(&setup).await?;
    loop {
        let mailboxes: serde_json::Value =
            http.get(format!("{base}/api/v1/mailboxes")).bearer_auth(&token).send().await?.json().await?;
        if let Some(e) = mailboxes["items"][0]["imap"]["last_error"].as_str() {
            bail!("the IMAP poll failed: {e}");
        }
        if dovecot.unseen()? == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("IMAP did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    line("IMAP (Dovecot, batches of 50, mark seen)", args.imap, started.elapsed());
    let _ = server.kill();
    let _ = server.wait();
    drop(dovecot);
    Ok(report)
}

pub(crate) async fn serve(setup: &Setup) -> Result<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(setup.dir.join("serve.log"))?;
    let child = setup
        .ferrodesk()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..2000 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok((child, base));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("ferrodesk serve did not start")
}

/// A Dovecot for the benchmark (as in the tests): messages are written straight into its
/// Maildir, as a local delivery agent would.
struct Dovecot {
    port: u16,
    root: PathBuf,
    child: std::process::Child,
}

impl Dovecot {
    fn start(root: &Path) -> Result<Self> {
        let _ = std::fs::remove_dir_all(root);
        for sub in ["run", "state", "home", "mail"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let uid = Command::new("id").arg("-u").output()?;
        let (uid, gid) = if String::from_utf8_lossy(&uid.stdout).trim() == "0" { (65534, 65534) } else { (1000, 1000) };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let r = root.display();
        std::fs::write(root.join("passwd"), format!("{DESK}:{{PLAIN}}{IMAP_PASSWORD}\n"))?;
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                "base_dir = {r}/run\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\nlisten = 127.0.0.1\nprotocols = imap\n\
                 ssl = no\ndisable_plaintext_auth = no\nmail_location = maildir:{r}/mail/%u\nfirst_valid_uid = 0\n\
                 passdb {{\n driver = passwd-file\n args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
                 userdb {{\n driver = static\n args = uid={uid} gid={gid} home={r}/home/%u\n}}\n\
                 service imap-login {{\n chroot =\n inet_listener imap {{\n address = 127.0.0.1\n port = {port}\n }}\n inet_listener imaps {{\n port = 0\n }}\n}}\n\
                 service anvil {{\n chroot =\n}}\n"
            ),
        )?;
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start Dovecot (apt-get install dovecot-imapd)")?;
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let dovecot = Self { port, root: root.to_owned(), child };
                for sub in ["new", "cur", "tmp"] {
                    std::fs::create_dir_all(dovecot.maildir().join(sub))?;
                }
                let _ = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(root.join("mail")).status();
                return Ok(dovecot);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("Dovecot did not start")
    }

    fn maildir(&self) -> PathBuf {
        self.root.join("mail").join(DESK)
    }

    fn deliver(&self, messages: &[String]) -> Result<()> {
        for (i, m) in messages.iter().enumerate() {
            std::fs::write(self.maildir().join("new").join(format!("{}.{i}.bench", 1_700_000_000 + i)), m)?;
        }
        let _ = Command::new("chown").arg("-R").arg("65534:65534").arg(self.root.join("mail")).status();
        Ok(())
    }

    /// Messages not yet marked seen (Maildir: in `new/`, or in `cur/` without the S flag).
    fn unseen(&self) -> Result<usize> {
        let mut n = std::fs::read_dir(self.maildir().join("new"))?.count();
        for e in std::fs::read_dir(self.maildir().join("cur"))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if !name.rsplit_once(":2,").is_some_and(|(_, flags)| flags.contains('S')) {
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the ticket texts for the messages.
pub fn texts(source: &Path) -> Result<Vec<String>> {
    let texts = crate::generate::all_texts(source)?;
    if texts.is_empty() {
        bail!("no texts in {}", source.display());
    }
    Ok(texts)
}
