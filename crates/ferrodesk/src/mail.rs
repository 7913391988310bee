//! `ferrodesk mailbox …` and `ferrodesk mail ingest`: mailboxes from the command line, and the
//! pipe an MTA delivers into. The exit code follows sysexits so an MTA knows what to do: 0 when
//! the message is stored (processed, or quarantined for an admin), 75 (`EX_TEMPFAIL`) when it
//! could not be stored and must be retried, 2 for wrong usage.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;
use ferrodesk_core::mail::{AfterProcessing, ImapSecurity, InboundSource};
use ferrodesk_core::ticket::TicketType;
use ferrodesk_mail::ingest::{Ingest, Ingested};
use ferrodesk_store::Store;
use ferrodesk_web::api::mail::{CreateMailbox, ImapInput, add_mailbox};

/// Tells `main` to exit with this code (after printing the message).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub const EX_TEMPFAIL: u8 = 75;
/// The message is larger than any mailbox takes (sysexits `EX_DATAERR`: the MTA bounces it).
pub const EX_DATAERR: u8 = 65;
/// A configuration file cannot be used (sysexits `EX_CONFIG`).
pub const EX_CONFIG: u8 = 78;

// Parsed once per run: the size of the biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox: an address people write to.
    Add {
        /// Short name, used as `--mailbox NAME` (lower-case letters, digits, . _ -).
        name: String,
        /// The address people write to (and our replies come from).
        #[arg(long)]
        address: String,
        /// The support group new tickets from this mailbox go to (by name).
        #[arg(long)]
        group: Option<String>,
        /// The type of new tickets.
        #[arg(long, default_value = "incident", value_parser = ["incident", "service_request", "problem", "change"])]
        r#type: String,
        /// Read the mailbox from this IMAP server.
        #[arg(long)]
        imap_host: Option<String>,
        /// Default: 993 for tls, 143 otherwise.
        #[arg(long)]
        imap_port: Option<u16>,
        #[arg(long, default_value = "tls", value_parser = ["tls", "starttls", "plain"])]
        imap_security: String,
        #[arg(long)]
        imap_user: Option<String>,
        /// Read the IMAP password from standard input (first line); stored sealed with
        /// FERRODESK_SECRET_KEY.
        #[arg(long)]
        imap_password_stdin: bool,
        #[arg(long, default_value = "INBOX")]
        imap_folder: String,
        #[arg(long, default_value_t = 60)]
        poll_seconds: i64,
        /// Move processed mail to this folder (instead of marking it seen).
        #[arg(long)]
        move_to: Option<String>,
        /// The largest message taken, in MiB (1 to 256); larger ones wait in the quarantine
        /// and their sender is told.
        #[arg(long, default_value_t = 50)]
        max_message_mib: i64,
        /// Open tickets from senders without a dotted domain (cron and monitoring on the mail
        /// host, `root@mailhost`) as this user (by address); without it such mail is quarantined.
        #[arg(long)]
        local_senders_as: Option<String>,
    },
    /// List mailboxes.
    List,
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// Read one raw message from standard input and deliver it (for an MTA's pipe).
    Ingest {
        /// The mailbox (by name) the message was sent to.
        #[arg(long)]
        mailbox: String,
    },
}

pub async fn mailbox(store: Arc<dyn Store>, config: &crate::config::Config, command: MailboxCommand) -> Result<()> {
    match command {
        MailboxCommand::Add {
            name,
            address,
            group,
            r#type,
            imap_host,
            imap_port,
            imap_security,
            imap_user,
            imap_password_stdin,
            imap_folder,
            poll_seconds,
            move_to,
            max_message_mib,
            local_senders_as,
        } => {
            let imap = match imap_host {
                None => None,
                Some(host) => {
                    let password = if imap_password_stdin {
                        let mut input = String::new();
                        std::io::stdin().read_to_string(&mut input).context("cannot read the password")?;
                        Some(input.lines().next().unwrap_or_default().to_owned())
                    } else {
                        None
                    };
                    Some(ImapInput {
                        host,
                        port: imap_port,
                        security: Some(ImapSecurity::parse(&imap_security, "imap-security")?),
                        username: imap_user.context("--imap-user is needed with --imap-host")?,
                        password,
                        folder: Some(imap_folder),
                        poll_seconds: Some(poll_seconds),
                        after_processing: Some(if move_to.is_some() {
                            AfterProcessing::Move
                        } else {
                            AfterProcessing::Seen
                        }),
                        move_to,
                    })
                }
            };
            let default_group_id = match group {
                Some(g) => Some(
                    store
                        .list_groups()
                        .await?
                        .into_iter()
                        .find(|x| x.name.eq_ignore_ascii_case(g.trim()))
                        .map(|x| x.id)
                        .with_context(|| format!("there is no group named {g:?}"))?,
                ),
                None => None,
            };
            // The same checks, defaults and password sealing as the API and the admin page.
            let mut state = ferrodesk_web::AppState::new(store.clone());
            state.secrets = config.secrets.clone();
            let body = CreateMailbox {
                name,
                address,
                default_group_id,
                default_category_id: None,
                default_type: Some(TicketType::parse(&r#type, "type")?),
                max_message_bytes: Some(max_message_mib.saturating_mul(1024 * 1024)),
                local_senders_as: match local_senders_as {
                    Some(address) => {
                        let email = ferrodesk_core::user::EmailAddress::parse(&address)
                            .map_err(|e| anyhow::anyhow!("--local-senders-as: {e}"))?;
                        let (user, _) = store
                            .user_by_email(&email)
                            .await?
                            .with_context(|| format!("--local-senders-as: there is no user {email}"))?;
                        Some(user.id)
                    }
                    None => None,
                },
                imap,
            };
            let mailbox =
                add_mailbox(&state, body).await.map_err(|e| anyhow::anyhow!("cannot add the mailbox: {}", e.detail))?;
            println!("added mailbox {} <{}> ({})", mailbox.name, mailbox.address, mailbox.id);
            Ok(())
        }
        MailboxCommand::List => {
            for m in store.mailboxes().await? {
                let state = if m.active { "active" } else { "inactive" };
                println!("{}\t{}\t{}\t{}", m.name, m.address, m.default_type, state);
            }
            Ok(())
        }
    }
}

pub async fn mail(store: Arc<dyn Store>, command: MailCommand) -> Result<()> {
    match command {
        MailCommand::Ingest { mailbox } => {
            let tempfail = |message: String| Exit { code: EX_TEMPFAIL, message };
            let mailboxes = store.mailboxes().await.map_err(|e| tempfail(format!("cannot read the mailboxes: {e}")))?;
            // An unknown or switched-off mailbox is a configuration slip: the MTA keeps the
            // message and retries, so nothing is lost while an admin fixes it.
            let Some(mailbox) = mailboxes.into_iter().find(|m| m.name == mailbox) else {
                return Err(
                    tempfail(format!("there is no mailbox named {mailbox:?} (see `ferrodesk mailbox list`)")).into()
                );
            };
            if !mailbox.active {
                return Err(tempfail(format!("the mailbox {} is switched off", mailbox.name)).into());
            }
            // Read up to the ceiling: a larger message is refused before it fills the memory.
            let ceiling = ferrodesk_core::mail::MAX_MESSAGE_BYTES.unsigned_abs();
            let mut raw = Vec::new();
            std::io::stdin()
                .lock()
                .take(ceiling + 1)
                .read_to_end(&mut raw)
                .map_err(|e| tempfail(format!("cannot read the message: {e}")))?;
            // Read in doubling steps: give back what the last step over-reserved.
            raw.shrink_to_fit();
            if raw.len() as u64 > ceiling {
                let message =
                    format!("the message is larger than {} MiB, more than any mailbox takes", ceiling / 1024 / 1024);
                return Err(Exit { code: EX_DATAERR, message }.into());
            }
            let ingest = Ingest::new(store, Default::default());
            let result = ingest
                .receive(raw, Some(&mailbox), InboundSource::Pipe, jiff::Timestamp::now())
                .await
                .map_err(|e| tempfail(format!("the message was not stored: {e}")))?;
            println!("{}", describe(&result));
            Ok(())
        }
    }
}

fn describe(result: &Ingested) -> String {
    match result {
        Ingested::Opened { inbound, ticket } => format!("opened ticket {ticket} (message {inbound})"),
        Ingested::Commented { inbound, ticket } => format!("added to ticket {ticket} (message {inbound})"),
        Ingested::Held { inbound, ticket } => {
            format!("held on ticket {ticket} for an agent: it does not prove its sender (message {inbound})")
        }
        Ingested::Ignored { inbound, why } => format!("stored, no ticket: {why} (message {inbound})"),
        Ingested::Duplicate { inbound, of } => format!("already received as message {of} (this copy {inbound})"),
        Ingested::Quarantined { inbound, error } => format!("quarantined: {error} (message {inbound})"),
    }
}
