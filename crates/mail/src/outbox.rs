//! The outbox worker: sends queued mail over SMTP (lettre), retrying with backoff across
//! restarts; a permanent refusal (5xx) or running out of attempts is written on the ticket as
//! an internal note, so agents see it. Any number of processes may run it: jobs are leased.

use std::sync::Arc;

use ferrodesk_core::ids::{CommentId, TicketNumber};
use ferrodesk_core::jobs::backoff_seconds;
use ferrodesk_store::{Comment, Job, JobOutcome, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::ingest::Ingest;
use crate::outbound::{Context, MailJob, Notification, Quoted, SEND_MAIL, render};
use crate::secret::SecretBox;
use crate::templates::Templates;

/// How long a worker may hold a job before another may take it over.
const LEASE: SignedDuration = SignedDuration::from_mins(5);

/// Where outgoing mail goes, checked once at start-up.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    /// `smtps://user:pass@host:465` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), or `smtp://localhost:25` (plain: only to this machine, where nothing crosses
    /// a network).
    pub fn from_url(url: &str) -> Result<Self, String> {
        let plain = url.starts_with("smtp://") && !url.contains("tls=required") && !url.contains("tls=opportunistic");
        if plain {
            let host = url
                .trim_start_matches("smtp://")
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .split(['/', '?'])
                .next()
                .unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
                return Err("unencrypted SMTP is only allowed to this machine (localhost); use smtps:// or \
                            smtp://…?tls=required"
                    .into());
            }
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("the SMTP address is not usable: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { transport })
    }
}

/// Sends due mail jobs.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    ingest: Ingest,
    smtp: Smtp,
    /// Links in mail start with this (the configured address, never a request's Host).
    base_url: String,
    secrets: Option<SecretBox>,
    templates: Arc<Templates>,
}

/// Earlier messages quoted below an answer, at most.
const QUOTED_MESSAGES: usize = 5;

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        ingest: Ingest,
        smtp: Smtp,
        base_url: &str,
        secrets: Option<SecretBox>,
        templates: Arc<Templates>,
    ) -> Self {
        Self { store, ingest, smtp, base_url: base_url.trim_end_matches('/').to_owned(), secrets, templates }
    }

    /// Claims and runs the jobs due now; returns how many it ran. Tests call this directly;
    /// `serve` calls it every few seconds.
    pub async fn run_due_once(&self, now: Timestamp) -> Result<usize, StoreError> {
        let jobs = self.store.claim_jobs(now, LEASE, 20).await?;
        for job in &jobs {
            let outcome = if job.kind == SEND_MAIL {
                self.send(job, now).await
            } else {
                JobOutcome::Dead { error: format!("unknown job kind {:?}", job.kind) }
            };
            if let JobOutcome::Dead { error } = &outcome {
                tracing::warn!(job = %job.id, %error, "job given up");
            }
            self.store.finish_job(job.id, outcome, now).await?;
        }
        Ok(jobs.len())
    }

    async fn send(&self, job: &Job, now: Timestamp) -> JobOutcome {
        match self.try_send(job).await {
            Ok(()) => JobOutcome::Done,
            Err(Failure::Permanent(error)) => {
                self.note_failure(job, &error, now).await;
                JobOutcome::Dead { error }
            }
            Err(Failure::Temporary(error)) if job.attempts >= job.max_attempts => {
                let error = format!("gave up after {} attempts: {error}", job.attempts);
                self.note_failure(job, &error, now).await;
                JobOutcome::Dead { error }
            }
            Err(Failure::Temporary(error)) => {
                let at = now.checked_add(SignedDuration::from_secs(backoff_seconds(job.attempts))).unwrap_or(now);
                tracing::info!(job = %job.id, %error, retry_at = %at, "mail not sent yet");
                JobOutcome::Retry { at, error }
            }
        }
    }

    async fn try_send(&self, job: &Job) -> Result<(), Failure> {
        let mail: MailJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| Failure::Permanent(format!("unreadable job: {e}")))?;
        if mail.notification == Notification::PasswordReset {
            return self.send_about_no_ticket(job, &mail).await;
        }
        // Switched off by an admin after it was queued (or before): nothing goes out.
        if let Some(name) = mail.notification.switch_name()
            && self.store.settings().await?.disabled_notifications.iter().any(|d| d == name)
        {
            tracing::info!(job = %job.id, notification = name, "notification switched off: not sent");
            return Ok(());
        }
        if mail.ticket.is_none() {
            return self.send_about_no_ticket(job, &mail).await;
        }
        let ticket_id = mail.ticket.ok_or_else(|| Failure::Permanent("the job names no ticket".into()))?;
        let ticket =
            self.store.ticket(ticket_id).await?.ok_or_else(|| Failure::Permanent("the ticket is gone".into()))?;
        let recipient = match self.store.user(mail.to).await? {
            Some(u) if u.active => u,
            _ => return Err(Failure::Permanent("the recipient is gone or deactivated".into())),
        };
        let comments = self.store.comments(ticket.id, true).await?;
        let comment = match mail.comment {
            Some(id) => Some(
                comments
                    .iter()
                    .find(|c| c.id == id)
                    .cloned()
                    .ok_or_else(|| Failure::Permanent("the comment is gone".into()))?,
            ),
            None => None,
        };
        // Defence in depth: a note never goes to a requester, whatever queued it.
        if comment.as_ref().is_some_and(|c| c.internal) && !recipient.role.is_staff() {
            return Err(Failure::Permanent("internal notes are never mailed to requesters".into()));
        }
        let author_name = match comment.as_ref().and_then(|c| c.author_id) {
            Some(id) => self.store.user(id).await?.map(|u| u.name),
            None => None,
        };
        let requester_name = match self.store.user(ticket.requester_id).await? {
            Some(u) => u.name,
            None => recipient.name.clone(),
        };
        let mailbox = match self.store.ticket_mailbox(ticket.id).await? {
            Some(m) => m,
            None => self.default_mailbox().await?,
        };
        let thread = self.store.thread_ids(ticket.id).await?;
        let action_links = if mail.notification == Notification::Resolved {
            let links = crate::links::TicketLinks::load(&self.store, self.secrets.as_ref()).await?;
            let url = |a| format!("{}/portal/by-mail?{}", self.base_url, links.query(ticket.id, a, Timestamp::now()));
            Some((url(crate::links::LinkAction::Confirm), url(crate::links::LinkAction::Reopen)))
        } else {
            None
        };
        let conversation = self.conversation(&ticket, &comments, comment.as_ref(), &requester_name).await?;
        let signer = self.ingest.signer().await?;
        let domain = mailbox.address.as_str().rsplit('@').next().unwrap_or("localhost").to_owned();
        let internal = mail.notification == Notification::InternalNote;
        let message_id =
            signer.message_id(TicketNumber(ticket.number.0), internal, &job.id.simple().to_string(), &domain);
        let rendered = render(
            mail.notification,
            &Context {
                number: Some(ticket.number.0),
                subject: &ticket.subject,
                requester_name: &requester_name,
                recipient_name: &recipient.name,
                recipient: recipient.email.as_str(),
                comment: comment.as_ref(),
                author_name: author_name.as_deref(),
                mailbox: &mailbox,
                ticket_url: format!(
                    "{}/{}/tickets/{}",
                    self.base_url,
                    if recipient.role.is_staff() { "desk" } else { "portal" },
                    ticket.number.0
                ),
                message_id: message_id.clone(),
                thread: &thread,
                reset_link: None,
                resolution: ticket.resolution_note.as_deref(),
                action_links,
                conversation,
                details: mail.details.clone(),
            },
            &self.templates,
        )
        .map_err(Failure::Permanent)?;
        self.deliver(rendered.message).await?;
        // A note's mail is no part of the thread the requester sees: their mail must never
        // name it (an answer naming it would be taken as internal).
        if !internal {
            self.store.remember_thread_id(&message_id, ticket.id, Timestamp::now()).await?;
        }
        Ok(())
    }

    /// Mail about no ticket: a password-reset link (to the account's own address) or an alert.
    async fn send_about_no_ticket(&self, job: &Job, mail: &MailJob) -> Result<(), Failure> {
        let recipient = match self.store.user(mail.to).await? {
            Some(u) if u.active => u,
            _ => return Err(Failure::Permanent("the account is gone or deactivated".into())),
        };
        let reset_link = match (mail.notification, mail.reset) {
            (Notification::PasswordReset, Some(reset)) => {
                let tokens = crate::reset::ResetTokens::load(&self.store, self.secrets.as_ref()).await?;
                Some(format!("{}/reset-password?token={}", self.base_url, tokens.token(reset)))
            }
            (Notification::PasswordReset, None) => return Err(Failure::Permanent("the job names no reset".into())),
            _ => None,
        };
        let subject = match mail.notification {
            Notification::PasswordReset => "Reset your service desk password".to_owned(),
            _ => mail.title.clone().unwrap_or_else(|| "Service desk alert".into()),
        };
        let mailbox = self.default_mailbox().await?;
        let domain = mailbox.address.as_str().rsplit('@').next().unwrap_or("localhost").to_owned();
        let rendered = render(
            mail.notification,
            &Context {
                number: None,
                subject: &subject,
                requester_name: &recipient.name,
                recipient_name: &recipient.name,
                recipient: recipient.email.as_str(),
                comment: None,
                author_name: None,
                mailbox: &mailbox,
                ticket_url: String::new(),
                message_id: format!("fd-{}.{}@{domain}", mail.notification.template_name(), job.id.simple()),
                thread: &[],
                resolution: None,
                action_links: None,
                reset_link,
                conversation: vec![],
                details: mail.details.clone(),
            },
            &self.templates,
        )
        .map_err(Failure::Permanent)?;
        self.deliver(rendered.message).await
    }

    async fn default_mailbox(&self) -> Result<ferrodesk_store::Mailbox, Failure> {
        self.store
            .mailboxes()
            .await?
            .into_iter()
            .find(|m| m.active)
            .ok_or_else(|| Failure::Permanent("there is no mailbox to send from".into()))
    }

    async fn deliver(&self, message: lettre::Message) -> Result<(), Failure> {
        match self.smtp.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(format!("the mail server refused it: {e}"))),
            Err(e) => Err(Failure::Temporary(format!("the mail server is not reachable or deferred it: {e}"))),
        }
    }

    /// The public messages before `answer` (or all, for mail about no message), newest first,
    /// ending with the request itself: what the requester sees quoted below an answer. Internal
    /// notes are never quoted.
    async fn conversation(
        &self,
        ticket: &ferrodesk_core::ticket::Ticket,
        comments: &[Comment],
        answer: Option<&Comment>,
        requester_name: &str,
    ) -> Result<Vec<Quoted>, Failure> {
        let before = |c: &&Comment| !c.internal && answer.is_none_or(|a| c.id != a.id && c.created_at <= a.created_at);
        let shown: Vec<&Comment> = comments.iter().filter(before).rev().take(QUOTED_MESSAGES).collect();
        // Their authors in one read, not one per message.
        let ids: Vec<_> = shown.iter().filter_map(|c| c.author_id).collect();
        let authors = self.store.users_by_ids(&ids).await?;
        let mut quoted: Vec<Quoted> = shown
            .into_iter()
            .map(|c| {
                let author = match c.author_id {
                    Some(id) => {
                        authors.iter().find(|u| u.id == id).map_or_else(|| "Someone".to_owned(), |u| u.name.clone())
                    }
                    None => "Service desk".to_owned(),
                };
                Quoted { author, at: when(c.created_at), body: c.body.clone() }
            })
            .collect();
        if quoted.len() < QUOTED_MESSAGES {
            quoted.push(Quoted {
                author: requester_name.to_owned(),
                at: when(ticket.created_at),
                body: ticket.description.clone(),
            });
        }
        Ok(quoted)
    }

    /// Tells the ticket's agents that a mail could not be delivered.
    async fn note_failure(&self, job: &Job, error: &str, now: Timestamp) {
        let Some(ticket) = job.ticket_id else { return };
        let note = Comment {
            id: CommentId::generate(),
            ticket_id: ticket,
            author_id: None,
            body: format!("An e-mail about this ticket could not be delivered: {error}"),
            internal: true,
            created_at: ferrodesk_core::time::to_storage_precision(now),
        };
        if let Err(e) = self.store.add_comment(note, false, None, vec![]).await {
            tracing::warn!(%ticket, error = %e, "cannot note a failed delivery on the ticket");
        }
    }
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

enum Failure {
    /// Will not succeed by trying again.
    Permanent(String),
    /// May succeed later (network, 4xx, our database).
    Temporary(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Temporary(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Smtp;

    #[tokio::test]
    async fn unencrypted_smtp_only_to_this_machine() {
        assert!(Smtp::from_url("smtp://localhost:25").is_ok());
        assert!(Smtp::from_url("smtp://user:pw@127.0.0.1:2525").is_ok());
        assert!(Smtp::from_url("smtp://relay.example.org:25").is_err());
        assert!(Smtp::from_url("smtp://user:pw@relay.example.org:587?tls=required").is_ok());
        assert!(Smtp::from_url("smtps://user:pw@relay.example.org").is_ok());
        assert!(Smtp::from_url("http://relay.example.org").is_err());
    }
}
