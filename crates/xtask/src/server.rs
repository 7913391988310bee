//! The system under test: databases prepared once per size (kept under target/bench between
//! runs), copied for each run so runs start from the same state, and `ferrodesk serve`
//! processes started and stopped around the measurements.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::generate::{self, Meta};
use crate::load;

/// Bump when the generator or the preparation changes, so old prepared databases are rebuilt.
const DATA_VERSION: u32 = 1;
const PASSWORD: &str = "bench-password-1";
const ADMIN: &str = "admin@bench.example";
const REQUESTER: &str = "requester@bench.example";

pub enum Backend {
    Sqlite,
    Postgres { cluster: Option<Cluster>, base_url: String },
}

/// A PostgreSQL cluster owned by the benchmark (under target/bench/pg), started for the run.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
}

fn run_as_postgres(program: &Path) -> Command {
    // PostgreSQL refuses to run as root; the cluster then belongs to the postgres user.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn checked(command: &mut Command, what: &str) -> Result<String> {
    let out = command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Backend {
    pub async fn postgres(work: &Path, url: Option<String>) -> Result<Self> {
        if let Some(base_url) = url {
            return Ok(Self::Postgres { cluster: None, base_url });
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (apt-get install postgresql)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .context("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let root = work.join("pg");
        let data = root.join("data");
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&root)?;
            if is_root() {
                checked(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&root), "chown")?;
            }
            let mut initdb = run_as_postgres(&bin.join("initdb"));
            initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8"]);
            checked(&mut initdb, "initdb")?;
        }
        let port = free_port()?;
        // Durable like production (fsync on); memory settings a small dedicated server would use,
        // and checkpoints spaced as PostgreSQL's log asks of a write-heavy server: with the
        // default 1 GB of WAL between checkpoints, the write scenarios ran one checkpoint after
        // another ("checkpoints are occurring too frequently"), each followed by full-page
        // images of every page touched again.
        let mut start = run_as_postgres(&bin.join("pg_ctl"));
        start.arg("-D").arg(&data).arg("-l").arg(root.join("server.log")).args(["-w", "-t", "60", "-o"]).arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=2GB -c work_mem=16MB \
             -c max_wal_size=8GB -c checkpoint_timeout=15min",
            root.display()
        ));
        start.arg("start");
        checked(&mut start, "pg_ctl start")?;
        Ok(Self::Postgres {
            cluster: Some(Cluster { bin, data }),
            base_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    pub fn shutdown(&mut self) {
        if let Self::Postgres { cluster, .. } = self
            && let Some(c) = cluster.take()
        {
            let mut stop = run_as_postgres(&c.bin.join("pg_ctl"));
            stop.arg("-D").arg(&c.data).args(["-m", "fast", "stop"]);
            let _ = checked(&mut stop, "pg_ctl stop");
        }
    }

    fn database_url(&self, name: &str) -> Option<String> {
        match self {
            Self::Sqlite => None,
            Self::Postgres { base_url, .. } => {
                let (head, query) = match base_url.split_once('?') {
                    Some((h, q)) => (h, format!("?{q}")),
                    None => (base_url.as_str(), String::new()),
                };
                let head = head.rsplit_once('/').map(|(h, _)| h).unwrap_or(head);
                Some(format!("{head}/{name}{query}"))
            }
        }
    }

    fn psql(&self, sql: &str) -> Result<String> {
        let url = self.database_url("postgres").context("not PostgreSQL")?;
        let mut c = Command::new("psql");
        c.arg(url).args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        checked(&mut c, "psql")
    }
}

impl Drop for Backend {
    /// The benchmark's own cluster stops with the benchmark, also when it ends in an error.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A database of one size, ready to be copied for a run.
#[derive(Serialize, Deserialize, Clone)]
pub struct Prepared {
    pub version: u32,
    pub tickets: usize,
    pub comments: usize,
    pub import_seconds: f64,
    pub database_bytes: u64,
    /// The number the first imported ticket got (the generator's line 1).
    pub first_number: u64,
    /// Where it is: a data directory (SQLite) or a database name (PostgreSQL).
    pub location: String,
    #[serde(skip)]
    pub meta: Option<std::sync::Arc<Meta>>,
}

pub struct Bench {
    pub binary: PathBuf,
    pub work: PathBuf,
    pub backend: Backend,
    pub source: PathBuf,
}

/// A running `ferrodesk serve`.
pub struct Node {
    child: Child,
    pub base: String,
    pub startup_ms: f64,
    agent_token: String,
    requester_token: String,
}

impl Bench {
    fn ferrodesk(&self, location: &str) -> Command {
        let mut c = Command::new(&self.binary);
        match self.backend.database_url(location) {
            Some(url) => c.arg("--database-url").arg(url),
            None => c.arg("--data-dir").arg(location),
        };
        c
    }

    fn create_user(&self, location: &str, email: &str, name: &str, role: &str) -> Result<()> {
        let mut c = self.ferrodesk(location);
        c.args(["user", "create", "--email", email, "--name", name, "--role", role, "--password-stdin"]);
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            writeln!(stdin, "{PASSWORD}")?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("user create {email} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    fn token(&self, location: &str, email: &str) -> Result<String> {
        let mut c = self.ferrodesk(location);
        c.args(["token", "create", "--user", email, "--name", "bench"]);
        Ok(checked(&mut c, "token create")?.trim().to_owned())
    }

    /// The database of `size` tickets: built once (generate, import, configure), then reused.
    pub async fn prepare(&self, size: usize) -> Result<Prepared> {
        let backend = self.backend.name();
        let jsonl = self.work.join(format!("tickets-{size}.jsonl"));
        let meta_path = self.work.join(format!("meta-{size}.json"));
        let marker = self.work.join(format!("prepared-{backend}-{size}.json"));
        let meta: Meta = match std::fs::read(&meta_path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(meta) if jsonl.exists() && marker_version(&meta_path) => meta,
            _ => {
                eprintln!("== generating {size} tickets");
                let meta = generate::generate(&self.source, size, &jsonl)?;
                std::fs::write(&meta_path, serde_json::to_vec(&VersionedMeta { version: DATA_VERSION, meta: &meta })?)?;
                let _ = std::fs::remove_file(&marker);
                meta
            }
        };
        let meta = std::sync::Arc::new(meta);
        if let Some(mut p) = std::fs::read(&marker).ok().and_then(|b| serde_json::from_slice::<Prepared>(&b).ok())
            && p.version == DATA_VERSION
        {
            p.meta = Some(meta);
            return Ok(p);
        }
        let location = match &self.backend {
            Backend::Sqlite => {
                let dir = self.work.join(format!("sqlite-{size}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                dir.display().to_string()
            }
            Backend::Postgres { .. } => {
                let name = format!("bench_{size}");
                self.backend.psql(&format!("DROP DATABASE IF EXISTS {name}"))?;
                self.backend.psql(&format!("CREATE DATABASE {name}"))?;
                name
            }
        };
        eprintln!("== preparing the {backend} database of {size} tickets");
        let mut migrate = self.ferrodesk(&location);
        migrate.arg("migrate");
        checked(&mut migrate, "ferrodesk migrate")?;
        self.create_user(&location, ADMIN, "Bench Admin", "admin")?;
        self.create_user(&location, REQUESTER, "Bench Requester", "requester")?;
        for (i, (email, _)) in meta.agents.iter().enumerate() {
            self.create_user(&location, email, &format!("Agent {i}"), "agent")?;
        }
        let started = Instant::now();
        let mut import = self.ferrodesk(&location);
        import.arg("import").arg("--file").arg(&jsonl);
        let out = import.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            bail!("ferrodesk import failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let import_seconds = started.elapsed().as_secs_f64();
        eprintln!("   imported in {import_seconds:.1} s");
        // Group memberships and the visibility setting, through the API as an administrator.
        let admin_token = self.token(&location, ADMIN)?;
        let node = self.spawn(&location, 0).await?;
        let http = load::client()?;
        let configured = configure(&http, &node.base, &admin_token, &meta).await;
        node.stop().await?;
        let first_number = configured?;
        let database_bytes = match &self.backend {
            Backend::Sqlite => std::fs::read_dir(&location)?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("ferrodesk.db"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .sum(),
            Backend::Postgres { .. } => {
                self.backend.psql(&format!("SELECT pg_database_size('{location}')"))?.trim().parse().unwrap_or(0)
            }
        };
        let prepared = Prepared {
            version: DATA_VERSION,
            tickets: meta.tickets,
            comments: meta.comments,
            import_seconds,
            database_bytes,
            first_number,
            location,
            meta: None,
        };
        std::fs::write(&marker, serde_json::to_vec_pretty(&prepared)?)?;
        Ok(Prepared { meta: Some(meta), ..prepared })
    }

    /// A fresh copy of the prepared database for node `index` (1 = the first) to run on.
    fn run_copy(&self, prepared: &Prepared) -> Result<String> {
        match &self.backend {
            Backend::Sqlite => {
                let dir = self.work.join("run-sqlite");
                let _ = std::fs::remove_dir_all(&dir);
                checked(Command::new("cp").arg("-a").arg(&prepared.location).arg(&dir), "cp")?;
                Ok(dir.display().to_string())
            }
            Backend::Postgres { .. } => {
                self.backend.psql("DROP DATABASE IF EXISTS bench_run")?;
                self.backend.psql(&format!("CREATE DATABASE bench_run TEMPLATE {}", prepared.location))?;
                Ok("bench_run".into())
            }
        }
    }

    /// Starts a server on a copy of `prepared`; node 2 and later share node 1's database.
    pub async fn start(&self, prepared: &Prepared, index: usize) -> Result<Node> {
        let location = if index == 1 {
            self.run_copy(prepared)?
        } else {
            match &self.backend {
                Backend::Sqlite => bail!("two nodes need PostgreSQL"),
                Backend::Postgres { .. } => "bench_run".to_owned(),
            }
        };
        let meta = prepared.meta.as_ref().context("prepared without its description")?;
        // Migrations added since the data was prepared run now, not inside the start-up figure.
        let mut migrate = self.ferrodesk(&location);
        migrate.arg("migrate");
        checked(&mut migrate, "ferrodesk migrate")?;
        let agent = generate::agent_email(meta.bench_group, 0);
        let agent_token = self.token(&location, &agent)?;
        let requester_token = self.token(&location, REQUESTER)?;
        let mut node = self.spawn(&location, index).await?;
        node.agent_token = agent_token;
        node.requester_token = requester_token;
        Ok(node)
    }

    async fn spawn(&self, location: &str, index: usize) -> Result<Node> {
        let port = free_port()?;
        let log = std::fs::File::create(self.work.join(format!("serve-{index}.log")))?;
        let mut c = self.ferrodesk(location);
        c.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        c.env("RUST_LOG", "warn");
        let started = Instant::now();
        let child = c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let mut node =
            Node { child, base, startup_ms: 0.0, agent_token: String::new(), requester_token: String::new() };
        let http = load::client()?;
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", node.base)).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) || node.child.try_wait()?.is_some() {
                let _ = node.child.kill();
                bail!("ferrodesk serve did not become ready; see {}", self.work.join("serve-*.log").display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        node.startup_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(node)
    }

    /// Start-up time to ready on an empty database (migrations included).
    pub async fn startup_on_empty(&self) -> Result<f64> {
        let location = match &self.backend {
            Backend::Sqlite => {
                let dir = self.work.join("empty-sqlite");
                let _ = std::fs::remove_dir_all(&dir);
                dir.display().to_string()
            }
            Backend::Postgres { .. } => {
                self.backend.psql("DROP DATABASE IF EXISTS bench_empty")?;
                self.backend.psql("CREATE DATABASE bench_empty")?;
                "bench_empty".into()
            }
        };
        // The first start creates the schema; the figure is a start on an existing empty one.
        self.spawn(&location, 0).await?.stop().await?;
        let node = self.spawn(&location, 0).await?;
        let ms = node.startup_ms;
        node.stop().await?;
        Ok(ms)
    }
}

#[derive(Serialize)]
struct VersionedMeta<'a> {
    version: u32,
    #[serde(flatten)]
    meta: &'a Meta,
}

fn marker_version(meta_path: &Path) -> bool {
    #[derive(Deserialize)]
    struct V {
        version: u32,
    }
    std::fs::read(meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<V>(&b).ok())
        .is_some_and(|v| v.version == DATA_VERSION)
}

/// Group memberships and visibility; answers the number of the first imported ticket.
async fn configure(http: &reqwest::Client, base: &str, token: &str, meta: &Meta) -> Result<u64> {
    let api = format!("{base}/api/v1");
    let get = |path: &str| {
        let request = http.get(format!("{api}{path}")).bearer_auth(token);
        async move { Ok::<serde_json::Value, anyhow::Error>(request.send().await?.error_for_status()?.json().await?) }
    };
    let groups = get("/groups?limit=200").await?;
    let agents = get("/users?role=agent&limit=200").await?;
    let id_of = |list: &serde_json::Value, key: &str, value: &str| -> Option<String> {
        list["items"].as_array()?.iter().find(|i| i[key].as_str() == Some(value))?["id"].as_str().map(str::to_owned)
    };
    for (email, group) in &meta.agents {
        let group_name = &meta.groups[*group];
        let group_id = id_of(&groups, "name", group_name).with_context(|| format!("group {group_name} missing"))?;
        let user_id = id_of(&agents, "email", email).with_context(|| format!("agent {email} missing"))?;
        http.post(format!("{api}/groups/{group_id}/members"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "user_id": user_id }))
            .send()
            .await?
            .error_for_status()?;
    }
    let mut settings = get("/settings").await?;
    settings["agents_see_all"] = serde_json::Value::Bool(false);
    http.put(format!("{api}/settings")).bearer_auth(token).json(&settings).send().await?.error_for_status()?;
    let first = get("/tickets?sort=number&limit=1").await?;
    first["items"][0]["number"].as_u64().context("no ticket was imported")
}

impl Node {
    /// Current and peak resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Starts a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    pub async fn stop(mut self) -> Result<()> {
        // SIGTERM: the server drains and exits cleanly (that is part of what is measured).
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..500 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        bail!("ferrodesk serve did not stop within 10 s of SIGTERM")
    }

    pub async fn context(&self, prepared: &Prepared, http: &reqwest::Client) -> Result<load::Context> {
        self.context_with(prepared, http, &[]).await
    }

    /// The load's context, spreading requests over this node and `others`.
    pub async fn context_with(
        &self,
        prepared: &Prepared,
        http: &reqwest::Client,
        others: &[&Node],
    ) -> Result<load::Context> {
        let meta = prepared.meta.as_ref().context("prepared without its description")?;
        let agent = generate::agent_email(meta.bench_group, 0);
        let cookie = sign_in(http, &self.base, &agent, PASSWORD).await.context("the benchmark agent cannot sign in")?;
        let mut bases = vec![self.base.clone()];
        bases.extend(others.iter().map(|n| n.base.clone()));
        Ok(load::Context::new(
            bases,
            self.agent_token.clone(),
            self.requester_token.clone(),
            cookie,
            meta.bench_group_tickets.iter().map(|line| line + prepared.first_number - 1).collect(),
            meta.bench_group_open.iter().map(|line| line + prepared.first_number - 1).collect(),
            meta.sample_texts.clone(),
            meta.common_word.clone(),
            meta.rare_word.clone(),
        ))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A node dropped on an error path must not outlive the benchmark.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Signs in through the API; the session cookie (`name=value`) to send with page requests.
pub async fn sign_in(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Result<String> {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await?
        .error_for_status()?;
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-fd_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("no session cookie after signing in")
}
