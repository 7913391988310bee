//! Inbound mail applied to the store. The order is the guarantee: the raw message is stored
//! first (so nothing is lost, whatever happens next), then read and threaded, then its whole
//! effect — ticket or comment, files, thread ids, its new state — is written in one
//! transaction. A message that cannot be processed is quarantined with the reason and never
//! blocks the ones behind it.

//!
//! Processing is three steps: [`gather`] reads the facts (sender, thread, proof of the sender,
//! access), [`crate::decide`] decides (pure), [`outcome`] builds the whole effect, which the
//! store settles in one transaction.

mod gather;
mod outcome;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use ferrodesk_core::ids::{TicketId, UserId};
use ferrodesk_core::mail::{DEFAULT_MAX_MESSAGE_BYTES, InboundSource, InboundStatus};
use ferrodesk_core::ticket::SUBJECT_MAX_CHARS;
use ferrodesk_store::{InboundEffect, InboundOutcome, Mailbox, NewInbound, Received, Settled, Store, StoreError};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::parse::{InboundMail, ParseLimits, read};
use crate::thread::MessageIdSigner;

/// Acknowledgements to one domain per hour, at most.
pub const ACKS_PER_DOMAIN_HOUR: i64 = 50;

/// Messages larger than this are read (parsed, decoded) at most [`LARGE_AT_ONCE`] at a time,
/// per process: each needs about twice its size in memory while it is.
pub const LARGE_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
pub const LARGE_AT_ONCE: usize = 2;

/// The secret our Message-IDs are signed with, in `instance_secrets`.
pub const MESSAGE_ID_SECRET: &str = "mail-message-id";

/// People copied on one mail who become watchers, at most (a mail to 10,000 recipients must
/// not create 10,000 accounts).
pub const MAX_COPIED_WATCHERS: usize = 10;

/// The tag of a ticket opened by what looks like another service's account verification.
pub const VERIFICATION_TAG: &str = "suspected-verification";

/// What agents read above such mail.
const VERIFICATION_FLAG: &str = "[Flagged by the desk: this looks like an account-verification or sign-in mail from \
     another service. Someone may have signed up there with the desk's address. It is kept internal and was not \
     copied to anyone; do not forward its links or codes.]";

/// Settings of the inbound pipeline.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub limits: ParseLimits,
    /// An agent's e-mailed reply that starts with this becomes an internal note.
    pub internal_marker: String,
    /// New tickets one sender may open by mail per hour; more are quarantined.
    pub new_tickets_per_sender_hour: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { limits: ParseLimits::default(), internal_marker: "#internal".into(), new_tickets_per_sender_hour: 20 }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// A new ticket was opened.
    Opened { inbound: uuid::Uuid, ticket: TicketId },
    /// Added to an existing ticket.
    Commented { inbound: uuid::Uuid, ticket: TicketId },
    /// Held on an existing ticket as an internal note, for an agent to accept or discard: it
    /// did not prove its sender.
    Held { inbound: uuid::Uuid, ticket: TicketId },
    /// Stored and deliberately not turned into a ticket (e.g. a bounce), with why.
    Ignored { inbound: uuid::Uuid, why: String },
    /// The same message was received before; nothing new happened.
    Duplicate { inbound: uuid::Uuid, of: uuid::Uuid },
    /// Stored but not processed: an admin can see, retry or discard it.
    Quarantined { inbound: uuid::Uuid, error: String },
}

impl Ingested {
    pub fn inbound_id(&self) -> uuid::Uuid {
        match self {
            Ingested::Opened { inbound, .. }
            | Ingested::Commented { inbound, .. }
            | Ingested::Held { inbound, .. }
            | Ingested::Ignored { inbound, .. }
            | Ingested::Duplicate { inbound, .. }
            | Ingested::Quarantined { inbound, .. } => *inbound,
        }
    }

    /// The ticket the message went to, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            Ingested::Opened { ticket, .. } | Ingested::Commented { ticket, .. } | Ingested::Held { ticket, .. } => {
                Some(*ticket)
            }
            _ => None,
        }
    }
}

/// The inbound pipeline over one store.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<dyn Store>,
    signer: Arc<tokio::sync::OnceCell<MessageIdSigner>>,
    config: IngestConfig,
    /// Large messages read and processed at once, at most.
    large: Arc<tokio::sync::Semaphore>,
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, config: IngestConfig) -> Self {
        Self { store, signer: Arc::default(), config, large: Arc::new(tokio::sync::Semaphore::new(LARGE_AT_ONCE)) }
    }

    /// The instance's Message-ID signer: its key is read from the database (created by the
    /// first process that needs it), so every process signs alike.
    pub async fn signer(&self) -> Result<&MessageIdSigner, StoreError> {
        self.signer
            .get_or_try_init(|| async {
                // Not mixed with the configured key: changing that key must not orphan the
                // Message-IDs of mail already sent.
                let key = crate::keys::instance_key(&self.store, None, MESSAGE_ID_SECRET).await?;
                Ok(MessageIdSigner::new(&key))
            })
            .await
    }

    /// Stores and processes one raw message. `Err` only when the message could not even be
    /// stored (the sender, e.g. an MTA, should retry); every later failure quarantines it.
    pub async fn receive(
        &self,
        raw: impl Into<Bytes>,
        mailbox: Option<&Mailbox>,
        source: InboundSource,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let raw = raw.into();
        let record = self.record(raw.clone(), mailbox, source, now);
        let id = record.id;
        let received = self.store.receive_inbound(record).await?;
        self.after_storing(id, received, &raw, mailbox, now).await
    }

    /// Several messages from one source, in order: all stored first in one transaction (one
    /// disk flush instead of one each), then processed one by one (so a reply that follows its
    /// original in the batch threads onto it). `Err` when the batch could not be stored.
    pub async fn receive_batch(
        &self,
        raws: Vec<Bytes>,
        mailbox: Option<&Mailbox>,
        source: InboundSource,
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, StoreError>>, StoreError> {
        let records: Vec<NewInbound> = raws.iter().map(|raw| self.record(raw.clone(), mailbox, source, now)).collect();
        let ids: Vec<uuid::Uuid> = records.iter().map(|r| r.id).collect();
        let received = self.store.receive_inbound_batch(records).await?;
        let mut out = Vec::with_capacity(ids.len());
        for ((id, received), raw) in ids.into_iter().zip(received).zip(raws) {
            out.push(self.after_storing(id, received, &raw, mailbox, now).await);
        }
        Ok(out)
    }

    /// What is stored of a raw message, read from its headers only: the whole message is read
    /// once it is safely stored, so a large one is never held twice while it is written.
    fn record(&self, raw: Bytes, mailbox: Option<&Mailbox>, source: InboundSource, now: Timestamp) -> NewInbound {
        let envelope = crate::parse::envelope(&raw);
        let from = envelope.from.map(|f| f.address);
        NewInbound {
            id: uuid::Uuid::now_v7(),
            mailbox_id: mailbox.map(|m| m.id),
            source,
            received_at: now,
            dedup_key: dedup_key(envelope.message_id.as_deref(), from.as_deref(), &raw),
            message_id: envelope.message_id,
            from_address: from,
            subject: envelope.subject.chars().take(SUBJECT_MAX_CHARS).collect(),
            raw,
        }
    }

    async fn after_storing(
        &self,
        id: uuid::Uuid,
        received: Received,
        raw: &[u8],
        mailbox: Option<&Mailbox>,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        match received {
            Received::Duplicate { of, status } => {
                tracing::info!(inbound = %id, duplicate_of = %of, "mail received again; not processed twice");
                if status == InboundStatus::Pending {
                    // The first copy was stored but never processed (a crash in between).
                    self.process(of, now).await?;
                }
                Ok(Ingested::Duplicate { inbound: id, of })
            }
            Received::Stored => self.read_and_process(id, raw, mailbox, now).await,
        }
    }

    /// Reads a stored message whole and processes it, unless it is larger than its mailbox
    /// takes (then it stays in the quarantine, and its sender is told). Large messages are
    /// read a few at a time, so memory stays bounded however many arrive at once.
    async fn read_and_process(
        &self,
        id: uuid::Uuid,
        raw: &[u8],
        mailbox: Option<&Mailbox>,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let limit = mailbox.map_or(DEFAULT_MAX_MESSAGE_BYTES, |m| m.max_message_bytes);
        if raw.len() as i64 > limit {
            return self.too_large(id, raw, limit, now).await;
        }
        let _permit = match raw.len() > LARGE_MESSAGE_BYTES {
            true => Some(self.large.acquire().await.map_err(|_| StoreError::Database("shutting down".into()))?),
            false => None,
        };
        match read(raw, &self.config.limits) {
            Some(mail) => self.process_mail(id, &mail, mailbox, now).await,
            None => self.quarantine(id, "the message could not be read".into()).await,
        }
    }

    /// A message larger than its mailbox takes: kept, unread, in the quarantine (an admin may
    /// raise the limit and retry it), and its sender — a person, not one of us — told at most
    /// once an hour.
    async fn too_large(&self, id: uuid::Uuid, raw: &[u8], limit: i64, now: Timestamp) -> Result<Ingested, StoreError> {
        let mib = |n: i64| format!("{:.1} MiB", n as f64 / 1024.0 / 1024.0);
        let size = i64::try_from(raw.len()).unwrap_or(i64::MAX);
        let outcome = self
            .quarantine(id, format!("the message ({}) is larger than its mailbox takes ({})", mib(size), mib(limit)))
            .await?;
        let envelope = crate::parse::envelope(raw);
        let (Some(from), Some(crate::Automation::Human)) = (envelope.from, envelope.automation) else {
            return Ok(outcome);
        };
        if self.store.mailboxes().await?.iter().any(|m| m.address.as_str() == from.address) {
            return Ok(outcome);
        }
        let sender = match self.sender(&from, now).await {
            Ok(user) => user,
            Err(_) => return Ok(outcome),
        };
        let topic = format!("too-large:{}", sender.email);
        if crate::outbound::queued_within_hour(&self.store, &topic, now).await? {
            return Ok(outcome);
        }
        let subject = if envelope.subject.is_empty() { "(no subject)".to_owned() } else { envelope.subject };
        let job = crate::outbound::MailJob {
            title: Some(format!("Your message \"{subject}\" was too large to take")),
            details: vec![format!(
                "It was {}; this service desk takes messages of up to {}. It was not turned into a request.",
                mib(size),
                mib(limit)
            )],
            ..crate::outbound::MailJob::about(crate::outbound::Notification::MessageTooLarge, None, sender.id)
        };
        self.store.enqueue_jobs(vec![job.into_job(Some(topic), now)], now).await?;
        Ok(outcome)
    }

    /// Processes a stored message again (a retry after quarantine, or one left pending).
    pub async fn process(&self, id: uuid::Uuid, now: Timestamp) -> Result<Ingested, StoreError> {
        let Some(raw) = self.store.inbound_raw(id).await? else {
            return Err(StoreError::NotFound);
        };
        let Some(message) = self.store.inbound(id).await? else {
            return Err(StoreError::NotFound);
        };
        let mailbox = match message.mailbox_id {
            Some(mid) => self.store.mailboxes().await?.into_iter().find(|m| m.id == mid),
            None => None,
        };
        self.read_and_process(id, &raw, mailbox.as_ref(), now).await
    }

    /// Processes messages left pending for a minute or more (stored, then the process stopped
    /// or the database failed before processing them); returns how many were looked at.
    /// `serve` calls it at start-up and then every half minute.
    pub async fn process_pending(&self, now: Timestamp) -> Result<usize, StoreError> {
        let minute_ago = now.checked_sub(jiff::SignedDuration::from_mins(1)).unwrap_or(now);
        let pending = self.store.pending_inbound(100, minute_ago).await?;
        for message in &pending {
            if let Err(e) = self.process(message.id, now).await {
                tracing::warn!(inbound = %message.id, error = %e, "a pending message could not be processed yet");
            }
        }
        Ok(pending.len())
    }

    /// What became of a message that is already settled, read from its record.
    async fn as_settled(&self, id: uuid::Uuid) -> Result<Ingested, StoreError> {
        let m = self.store.inbound(id).await?.ok_or(StoreError::NotFound)?;
        Ok(match (m.status, m.ticket_id, m.comment_id) {
            (InboundStatus::Processed, Some(ticket), None) => Ingested::Opened { inbound: id, ticket },
            (InboundStatus::Processed, Some(ticket), Some(_)) => Ingested::Commented { inbound: id, ticket },
            (InboundStatus::Held, Some(ticket), _) => Ingested::Held { inbound: id, ticket },
            (InboundStatus::Quarantined, _, _) => {
                Ingested::Quarantined { inbound: id, error: m.error.unwrap_or_default() }
            }
            (InboundStatus::Duplicate, _, _) => Ingested::Duplicate { inbound: id, of: m.duplicate_of.unwrap_or(id) },
            (status, _, _) => Ingested::Ignored { inbound: id, why: m.error.unwrap_or_else(|| status.to_string()) },
        })
    }

    async fn quarantine(&self, id: uuid::Uuid, error: String) -> Result<Ingested, StoreError> {
        tracing::warn!(inbound = %id, %error, "mail quarantined");
        let from = [InboundStatus::Pending, InboundStatus::Quarantined];
        self.store.set_inbound_status(id, InboundStatus::Quarantined, Some(error.clone()), &from).await?;
        Ok(Ingested::Quarantined { inbound: id, error })
    }

    async fn process_mail(
        &self,
        id: uuid::Uuid,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        match self.plan(id, mail, mailbox, now, None).await {
            Ok(outcome) => match self.settle(outcome, mail).await {
                Ok(Some(ingested)) => Ok(ingested),
                // Another process settled it first: report what it did.
                Ok(None) => self.as_settled(id).await,
                Err(e @ (StoreError::Database(_) | StoreError::Busy)) => {
                    // Stored and still pending: the next sweep (or the sender's retry) will
                    // process it. Tell the caller the processing failed.
                    Err(e)
                }
                Err(e) => self.quarantine(id, e.to_string()).await,
            },
            Err(Plan::Quarantine(error)) => self.quarantine(id, error).await,
            Err(Plan::Ignore(why)) => {
                let from = [InboundStatus::Pending, InboundStatus::Quarantined];
                self.store.set_inbound_status(id, InboundStatus::Ignored, Some(why.clone()), &from).await?;
                tracing::info!(inbound = %id, %why, "mail stored, not turned into a ticket");
                Ok(Ingested::Ignored { inbound: id, why })
            }
            Err(Plan::Store(e)) => Err(e),
        }
    }

    /// Applies a planned outcome in one transaction; `None` when another process settled the
    /// message first.
    async fn settle(&self, outcome: InboundOutcome, mail: &InboundMail) -> Result<Option<Ingested>, StoreError> {
        let id = outcome.inbound_id;
        let effect = outcome.effect.clone();
        let status = outcome.status;
        Ok(match self.store.settle_inbound(outcome).await? {
            Settled::Applied(ticket) => Some(match (effect, ticket, status) {
                (InboundEffect::NewTicket { .. }, Some(t), _) => Ingested::Opened { inbound: id, ticket: t.id },
                (InboundEffect::Comment { .. }, Some(t), InboundStatus::Held) => {
                    Ingested::Held { inbound: id, ticket: t.id }
                }
                (InboundEffect::Comment { .. }, Some(t), _) => Ingested::Commented { inbound: id, ticket: t.id },
                _ => Ingested::Ignored { inbound: id, why: format!("{status}: {}", mail.automation.label()) },
            }),
            Settled::AlreadySettled => None,
        })
    }

    /// An agent accepts a held message as its sender's: it is added to the ticket it was held
    /// on as if it had proven its sender (a comment by them, with the mail and status changes
    /// such a comment makes). Refused when it is not held (any more), or cannot be applied now
    /// (e.g. the ticket was closed, the sender deactivated); the message then stays as it was.
    pub async fn accept_held(&self, id: uuid::Uuid, agent: UserId, now: Timestamp) -> Result<Ingested, StoreError> {
        let message = self.store.inbound(id).await?.ok_or(StoreError::NotFound)?;
        let (InboundStatus::Held, Some(ticket)) = (message.status, message.ticket_id) else {
            return Err(StoreError::Refused(format!("the message is {}, not held", message.status)));
        };
        let raw = self.store.inbound_raw(id).await?.ok_or(StoreError::NotFound)?;
        let mail = read(&raw, &self.config.limits)
            .ok_or_else(|| StoreError::Refused("the message could not be read".into()))?;
        let mailbox = match message.mailbox_id {
            Some(mid) => self.store.mailboxes().await?.into_iter().find(|m| m.id == mid),
            None => None,
        };
        let vouch = Vouch { by: agent, ticket };
        match self.plan(id, &mail, mailbox.as_ref(), now, Some(vouch)).await {
            Ok(outcome) => self
                .settle(outcome, &mail)
                .await?
                .ok_or_else(|| StoreError::Refused("the message was decided meanwhile".into())),
            Err(Plan::Quarantine(why) | Plan::Ignore(why)) => Err(StoreError::Refused(why)),
            Err(Plan::Store(e)) => Err(e),
        }
    }

    /// An agent discards a held message: it stays stored, and its note on the ticket.
    pub async fn discard_held(&self, id: uuid::Uuid, agent: UserId, now: Timestamp) -> Result<(), StoreError> {
        if self.store.discard_held(id, agent, now).await? {
            return Ok(());
        }
        match self.store.inbound(id).await? {
            Some(m) => Err(StoreError::Refused(format!("the message is {}, not held", m.status))),
            None => Err(StoreError::NotFound),
        }
    }
}

/// What makes a second copy of a message a duplicate: its Message-ID together with its sender
/// and its body, so that whoever sends a Message-ID first cannot suppress a later, different
/// message that carries it; the whole message's hash when it has no Message-ID. Copies of one
/// message delivered to two of our mailboxes differ in their trace headers (`Received`,
/// `Delivered-To`) and perhaps in line endings, never in their body, so they stay duplicates.
pub fn dedup_key(message_id: Option<&str>, from: Option<&str>, raw: &[u8]) -> String {
    let Some(id) = message_id else {
        return format!("sha256:{}", hex::encode(Sha256::digest(raw)));
    };
    let body = match (raw.windows(4).position(|w| w == b"\r\n\r\n"), raw.windows(2).position(|w| w == b"\n\n")) {
        (Some(crlf), Some(lf)) if lf < crlf => &raw[lf + 2..],
        (Some(crlf), _) => &raw[crlf + 4..],
        (None, Some(lf)) => &raw[lf + 2..],
        (None, None) => &[][..],
    };
    let mut hash = Sha256::new();
    hash.update(from.unwrap_or_default().as_bytes());
    hash.update([0]);
    for line in body.split(|b| *b == b'\n') {
        let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |p| p + 1);
        hash.update(&line[..end]);
        hash.update(b"\n");
    }
    format!("mid:{id}|{}", hex::encode(&hash.finalize()[..16]))
}

/// An agent's acceptance of a held message: it stands for the proof of its sender, on the
/// ticket it was held on.
#[derive(Debug, Clone, Copy)]
struct Vouch {
    by: UserId,
    ticket: TicketId,
}

/// Why a message is not applied as a ticket change.
enum Plan {
    Quarantine(String),
    Ignore(String),
    Store(StoreError),
}

impl From<StoreError> for Plan {
    fn from(e: StoreError) -> Self {
        Plan::Store(e)
    }
}
