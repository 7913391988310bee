//! The `ferrodesk` binary: command line, configuration, wiring, start-up and shutdown.

mod config;
mod demo;
mod import;
mod mail;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ferrodesk_core::ids::{TokenId, UserId};
use ferrodesk_core::user::{EmailAddress, Role, User, validate_name, validate_password};
use ferrodesk_store::ApiToken;
use ferrodesk_web::AppState;
use ferrodesk_web::auth::{generate_token, hash_password, hash_token};

use crate::config::{Config, GlobalArgs};

#[derive(Parser)]
#[command(name = "ferrodesk", version, about = "Ferrodesk: an IT helpdesk and service desk in one binary")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (applies pending migrations first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FERRODESK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Fill the database with demo data first, if it has no tickets yet.
        #[arg(long)]
        demo: bool,
        /// Where outgoing mail goes: `smtps://user:pass@host:465`, `smtp://user:pass@host:587?tls=required`,
        /// or `smtp://localhost:25`. Without it, mail is queued and sent once this is set.
        #[arg(long, env = "FERRODESK_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
        /// The address people reach this desk at, for links in mail (default: http://LISTEN).
        #[arg(long, env = "FERRODESK_BASE_URL")]
        base_url: Option<String>,
        /// A directory of mail templates replacing built-in ones (see `ferrodesk templates
        /// export`); checked at start-up.
        #[arg(long, env = "FERRODESK_TEMPLATES")]
        templates: Option<std::path::PathBuf>,
        /// Reverse proxies in front of Ferrodesk (addresses or ranges, comma-separated, e.g.
        /// `10.0.0.5,192.168.0.0/16`): only their `X-Forwarded-For` names the client for
        /// sign-in throttling and logs. None by default: the header is ignored.
        #[arg(long, env = "FERRODESK_TRUSTED_PROXIES", default_value = "")]
        trusted_proxies: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Fill an empty database with a believable demo organisation and tickets.
    Demo,
    /// Manage mailboxes (addresses people write to).
    Mailbox {
        #[command(subcommand)]
        command: mail::MailboxCommand,
    },
    /// Deliver mail.
    Mail {
        #[command(subcommand)]
        command: mail::MailCommand,
    },
    /// The texts of the mail Ferrodesk sends.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Merge the search index into one piece (SQLite; PostgreSQL needs nothing). An import does
    /// it at its end; worth running after a long time of use: new tickets and searches then do
    /// less merging. Seconds at a million tickets; a running server keeps working meanwhile.
    CompactSearch,
    /// Import tickets from JSON Lines (one ticket object per line) on standard input or a file.
    Import {
        /// Read this file instead of standard input.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Tickets stored per transaction.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..=10000))]
        batch: u16,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "supervisor", "agent", "requester"])]
        role: String,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Write the built-in templates into DIR, to edit and pass to `serve --templates DIR`.
    Export { dir: std::path::PathBuf },
    /// Check the templates in DIR as `serve` would at start-up.
    Check { dir: std::path::PathBuf },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a personal API token for a user and print it (shown once).
    Create {
        /// The user's e-mail address.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::resolve(&cli.global) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrodesk: {e:#}");
            return ExitCode::from(2);
        }
    };
    config::init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrodesk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrodesk: {e:#}");
            match e.downcast_ref::<mail::Exit>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn ferrodesk_store::Store>> {
    let store = ferrodesk_store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database ({})", config.database_display()))?;
    let applied = store.migrate().await.context("cannot bring the database schema up to date")?;
    for name in applied {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(store)
}

async fn run(command: Command, config: Config) -> Result<()> {
    match command {
        Command::Serve { listen, demo, smtp_url, base_url, templates, trusted_proxies } => {
            let base_url = base_url.unwrap_or_else(|| format!("http://{listen}"));
            let templates = load_templates(templates.as_deref())?;
            let proxies = ferrodesk_web::client::TrustedProxies::parse(&trusted_proxies)
                .map_err(|e| anyhow::anyhow!("FERRODESK_TRUSTED_PROXIES: {e}"))?;
            serve(&config, &listen, demo, smtp_url.as_deref(), &base_url, templates, proxies).await
        }
        Command::Templates { command: TemplatesCommand::Export { dir } } => {
            let written = ferrodesk_mail::templates::Templates::export(&dir).map_err(|e| anyhow::anyhow!(e))?;
            println!("wrote {} templates into {}", written.len(), dir.display());
            Ok(())
        }
        Command::Templates { command: TemplatesCommand::Check { dir } } => {
            let t = load_templates(Some(&dir))?;
            println!("templates ok ({} replacing built-in ones)", t.overridden().len());
            Ok(())
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::CompactSearch => {
            let store = open_store(&config).await?;
            let started = std::time::Instant::now();
            let steps = import::compact_search(store.as_ref()).await?;
            let unit = if steps == 1 { "step" } else { "steps" };
            println!("search index merged ({steps} {unit}, {:.1} s)", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::User { command: UserCommand::Create { email, name, role, password_stdin } } => {
            let store = open_store(&config).await?;
            let password = if password_stdin {
                let mut input = String::new();
                std::io::stdin().read_to_string(&mut input).context("cannot read the password from standard input")?;
                let pw = input.lines().next().unwrap_or_default().to_owned();
                validate_password(&pw)?;
                Some(hash_password(pw).await.map_err(|e| anyhow::anyhow!(e.detail))?)
            } else {
                None
            };
            let user = User {
                id: UserId::generate(),
                email: EmailAddress::parse(&email)?,
                name: validate_name("name", &name)?,
                role: Role::parse(&role, "role")?,
                organisation_id: None,
                active: true,
                created_at: jiff::Timestamp::now(),
            };
            store
                .create_account(&user, password.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the user: {e}"))?;
            println!("created {} {} ({})", user.role, user.email, user.id);
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { user, name } } => {
            let store = open_store(&config).await?;
            let email = EmailAddress::parse(&user)?;
            let Some((user, _)) = store.user_by_email(&email).await? else {
                bail!("no user with the address {email}");
            };
            if !user.active {
                bail!("{email} is deactivated");
            }
            let secret = generate_token();
            let token = ApiToken {
                id: TokenId::generate(),
                user_id: user.id,
                name: validate_name("name", &name)?,
                created_at: jiff::Timestamp::now(),
                last_used_at: None,
                revoked_at: None,
            };
            store.create_token(&token, &hash_token(&secret)).await?;
            println!("{secret}");
            Ok(())
        }
        Command::Import { file, batch } => {
            let store = open_store(&config).await?;
            let (_, skipped) = match file {
                Some(path) => {
                    let f = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                    import::run(store, std::io::BufReader::new(f), usize::from(batch)).await?
                }
                None => import::run(store, std::io::stdin().lock(), usize::from(batch)).await?,
            };
            if skipped > 0 {
                bail!("{skipped} line(s) were skipped; the others were imported");
            }
            Ok(())
        }
        Command::Demo => {
            let store = open_store(&config).await?;
            demo::fill(store.as_ref()).await
        }
        Command::Mailbox { command } => mail::mailbox(open_store(&config).await?, &config, command).await,
        Command::Mail { command } => {
            // A database that cannot be opened is a temporary failure for the MTA.
            let store = open_store(&config)
                .await
                .map_err(|e| mail::Exit { code: mail::EX_TEMPFAIL, message: format!("{e:#}") })?;
            mail::mail(store, command).await
        }
    }
}

/// The mail templates: the built-in ones, with those in `dir` in their place. A template that
/// does not work stops the start (exit 78, a configuration error) with the file and line.
fn load_templates(dir: Option<&std::path::Path>) -> Result<std::sync::Arc<ferrodesk_mail::templates::Templates>> {
    let templates = match dir {
        None => ferrodesk_mail::templates::Templates::built_in(),
        Some(dir) => ferrodesk_mail::templates::Templates::load(dir).map_err(|e| mail::Exit {
            code: mail::EX_CONFIG,
            message: format!("the mail templates in {} cannot be used:\n{e}", dir.display()),
        })?,
    };
    for name in templates.overridden() {
        tracing::info!(template = %name, "mail template replaced");
    }
    Ok(std::sync::Arc::new(templates))
}

async fn serve(
    config: &Config,
    listen: &str,
    with_demo: bool,
    smtp_url: Option<&str>,
    base_url: &str,
    templates: std::sync::Arc<ferrodesk_mail::templates::Templates>,
    trusted_proxies: ferrodesk_web::client::TrustedProxies,
) -> Result<()> {
    // Checked before anything starts: a wrong mail setting should stop us, not lose mail later.
    let smtp = smtp_url.map(ferrodesk_mail::outbox::Smtp::from_url).transpose().map_err(|e| {
        anyhow::anyhow!("FERRODESK_SMTP_URL ({}): {e}", config::redact_url(smtp_url.unwrap_or_default()))
    })?;
    let store = open_store(config).await?;
    if with_demo && demo::is_empty(store.as_ref()).await? {
        demo::fill(store.as_ref()).await?;
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %config.database_display(), "ferrodesk is listening");
    println!("ferrodesk listening on http://{addr}");
    let mut state = AppState::new(store.clone());
    state.secrets = config.secrets.clone();
    if !trusted_proxies.is_empty() {
        tracing::info!(proxies = ?trusted_proxies, "X-Forwarded-For is believed from these reverse proxies only");
    }
    state.trusted_proxies = trusted_proxies;
    // Mail stored but not processed (a stop or a database failure in between): at start-up,
    // then every half minute.
    let ingest = state.ingest.clone();
    tokio::spawn(async move {
        loop {
            match ingest.process_pending(jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "processed mail left pending"),
                Err(e) => tracing::warn!(error = %e, "cannot read pending mail"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    // PostgreSQL's view counters take appended deltas; each key's are folded into one row every
    // second, so a count sums a few rows. Its search index's pending entries are merged as often,
    // so that no request pays for merging them. Both are no-ops on SQLite.
    {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.compact_view_counters().await {
                    tracing::warn!(error = %e, "cannot fold the view counters' deltas");
                }
                if let Err(e) = store.merge_pending_search_entries().await {
                    tracing::warn!(error = %e, "cannot merge the search index's pending entries");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
    match smtp {
        Some(smtp) => {
            let outbox = ferrodesk_mail::outbox::Outbox::new(
                store.clone(),
                state.ingest.clone(),
                smtp,
                base_url,
                state.secrets.clone(),
                templates,
            );
            tokio::spawn(async move {
                loop {
                    match outbox.run_due_once(jiff::Timestamp::now()).await {
                        // More may be due: go on at once.
                        Ok(20..) => continue,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot run queued mail jobs"),
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            });
        }
        None => tracing::info!("outgoing mail is off (set FERRODESK_SMTP_URL); notifications wait in the queue"),
    }
    // Mailboxes read over IMAP, each at its own interval.
    {
        let (store, ingest, secrets) = (store.clone(), state.ingest.clone(), state.secrets.clone());
        tokio::spawn(async move {
            loop {
                if !ferrodesk_mail::imap::poll_due(&store, &ingest, secrets.as_ref(), jiff::Timestamp::now()).await {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
        });
    }
    // Live updates reach viewers connected to other server processes on the same database.
    state.events.connect(store).await.context("cannot listen for other servers' ticket changes")?;
    ferrodesk_web::serve(listener, state, ferrodesk_ui::router(), shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C; the server then stops accepting and drains in-flight requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
