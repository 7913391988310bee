//! Inbound mail applied to the store. The order is the guarantee: the raw message is stored
//! first (so nothing is lost, whatever happens next), then read and threaded, then its whole
//! effect — ticket or comment, files, thread ids, its new state — is written in one
//! transaction. A message that cannot be processed is quarantined with the reason and never
//! blocks the ones behind it.

use std::sync::Arc;

use ferrodesk_core::ids::{AttachmentId, CommentId, TicketId, UserId};
use ferrodesk_core::mail::{InboundSource, InboundStatus};
use ferrodesk_core::priority::{Impact, Urgency};
use ferrodesk_core::ticket::{Channel, DESCRIPTION_MAX_BYTES, SUBJECT_MAX_CHARS, Status, Ticket, TicketDraft};
use ferrodesk_core::user::{EmailAddress, Role, User};
use ferrodesk_store::{
    Attachment, Comment, InboundEffect, InboundOutcome, Mailbox, NewInbound, Received, Settled, Store, StoreError,
};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::classify::{Automation, looks_like_account_verification};
use crate::outbound::{MailJob, Notification, for_comment, queued_within_hour};
use crate::parse::{InboundMail, ParseLimits, read};
use crate::reply::visible_reply;
use crate::thread::{MessageIdSigner, OurId, subject_ticket_number};

/// Acknowledgements to one domain per hour, at most.
pub const ACKS_PER_DOMAIN_HOUR: i64 = 50;

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
            | Ingested::Ignored { inbound, .. }
            | Ingested::Duplicate { inbound, .. }
            | Ingested::Quarantined { inbound, .. } => *inbound,
        }
    }

    /// The ticket the message went to, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            Ingested::Opened { ticket, .. } | Ingested::Commented { ticket, .. } => Some(*ticket),
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
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, config: IngestConfig) -> Self {
        Self { store, signer: Arc::default(), config }
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
        raw: Vec<u8>,
        mailbox: Option<&Mailbox>,
        source: InboundSource,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let (record, mail) = self.record(raw, mailbox, source, now);
        let id = record.id;
        let received = self.store.receive_inbound(record).await?;
        self.after_storing(id, received, mail, mailbox, now).await
    }

    /// Several messages from one source, in order: all stored first in one transaction (one
    /// disk flush instead of one each), then processed one by one (so a reply that follows its
    /// original in the batch threads onto it). `Err` when the batch could not be stored.
    pub async fn receive_batch(
        &self,
        raws: Vec<Vec<u8>>,
        mailbox: Option<&Mailbox>,
        source: InboundSource,
        now: Timestamp,
    ) -> Result<Vec<Result<Ingested, StoreError>>, StoreError> {
        let (records, mails): (Vec<NewInbound>, Vec<Option<InboundMail>>) =
            raws.into_iter().map(|raw| self.record(raw, mailbox, source, now)).unzip();
        let ids: Vec<uuid::Uuid> = records.iter().map(|r| r.id).collect();
        let received = self.store.receive_inbound_batch(records).await?;
        let mut out = Vec::with_capacity(ids.len());
        for ((id, received), mail) in ids.into_iter().zip(received).zip(mails) {
            out.push(self.after_storing(id, received, mail, mailbox, now).await);
        }
        Ok(out)
    }

    /// Reads a raw message and builds what is stored of it.
    fn record(
        &self,
        raw: Vec<u8>,
        mailbox: Option<&Mailbox>,
        source: InboundSource,
        now: Timestamp,
    ) -> (NewInbound, Option<InboundMail>) {
        let mail = read(&raw, &self.config.limits);
        let dedup_key = match &mail {
            Some(m) if m.message_id.is_some() => format!("mid:{}", m.message_id.as_deref().unwrap_or_default()),
            _ => format!("sha256:{}", hex::encode(Sha256::digest(&raw))),
        };
        let record = NewInbound {
            id: uuid::Uuid::now_v7(),
            mailbox_id: mailbox.map(|m| m.id),
            source,
            received_at: now,
            message_id: mail.as_ref().and_then(|m| m.message_id.clone()),
            dedup_key,
            from_address: mail.as_ref().and_then(|m| m.from.as_ref().map(|f| f.address.clone())),
            subject: mail.as_ref().map(|m| m.subject.chars().take(SUBJECT_MAX_CHARS).collect()).unwrap_or_default(),
            raw,
        };
        (record, mail)
    }

    async fn after_storing(
        &self,
        id: uuid::Uuid,
        received: Received,
        mail: Option<InboundMail>,
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
            Received::Stored => match mail {
                Some(mail) => self.process_mail(id, &mail, mailbox, now).await,
                None => self.quarantine(id, "the message could not be read".into()).await,
            },
        }
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
        match read(&raw, &self.config.limits) {
            Some(mail) => self.process_mail(id, &mail, mailbox.as_ref(), now).await,
            None => self.quarantine(id, "the message could not be read".into()).await,
        }
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
        match self.plan(id, mail, mailbox, now).await {
            Ok(outcome) => {
                let effect = outcome.effect.clone();
                let status = outcome.status;
                match self.store.settle_inbound(outcome).await {
                    Ok(Settled::Applied(ticket)) => Ok(match (effect, ticket) {
                        (InboundEffect::NewTicket { .. }, Some(t)) => Ingested::Opened { inbound: id, ticket: t.id },
                        (InboundEffect::Comment { .. }, Some(t)) => Ingested::Commented { inbound: id, ticket: t.id },
                        _ => Ingested::Ignored { inbound: id, why: format!("{status}: {}", mail.automation.label()) },
                    }),
                    // Another process settled it first: report what it did.
                    Ok(Settled::AlreadySettled) => self.as_settled(id).await,
                    Err(e @ (StoreError::Database(_) | StoreError::Busy)) => {
                        // Stored and still pending: the next sweep (or the sender's retry) will
                        // process it. Tell the caller the processing failed.
                        Err(e)
                    }
                    Err(e) => self.quarantine(id, e.to_string()).await,
                }
            }
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

    /// Decides what a message does; reads the store, writes nothing.
    async fn plan(
        &self,
        inbound_id: uuid::Uuid,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        now: Timestamp,
    ) -> Result<InboundOutcome, Plan> {
        let machine_note = matches!(mail.automation, Automation::AutoReply { .. } | Automation::Bounce { .. });
        // Machines' mail is useful without a sender (a bounce from a bare MAILER-DAEMON);
        // people's mail needs one to become a requester.
        let from = match &mail.from {
            Some(f) => Some(f),
            None if machine_note => None,
            None => return Err(Plan::Quarantine("the message has no usable sender address (From)".into())),
        };
        let settings = self.store.settings().await?;
        let mailboxes = self.store.mailboxes().await?;
        let ours = |address: &str| mailboxes.iter().any(|m| m.address.as_str() == address);
        if let Some(from) = from {
            if mailboxes.iter().any(|m| m.address.as_str() == from.address) {
                tracing::warn!(inbound = %inbound_id, from = %from.address, "mail from our own address: a loop? not processed");
                self.alert(
                    &format!("own-address:{}", from.address),
                    format!("Mail from the desk's own address {} was not processed", from.address),
                    vec![
                        format!("A message with the subject \"{}\" came in from {}, one of the desk's own addresses.", mail.subject, from.address),
                        "This usually means a mail loop: something forwards the desk's mail back to it. It was stored and ignored.".into(),
                    ],
                    now,
                )
                .await;
                return Err(Plan::Ignore(format!("sent from our own address {}", from.address)));
            }
            // Staff always get through (their domain need not be on a customers' allow list).
            if let Err(why) = settings.mail_senders.admits(&from.address)
                && !self.is_staff(&from.address).await?
            {
                return Err(Plan::Quarantine(why.into()));
            }
        }
        let bounced = match &mail.automation {
            Automation::Bounce { recipients } => recipients.clone(),
            _ => vec![],
        };
        let thread = self.find_thread(mail, from.map(|f| f.address.as_str())).await?;
        let answers_a_note = self.answers_a_note(mail).await?;
        // Someone signed up elsewhere with our address? Such mail is flagged, kept internal and
        // never copied to anyone (case B20).
        let verification = !machine_note && looks_like_account_verification(&mail.subject, &mail.text);
        if verification {
            tracing::warn!(inbound = %inbound_id, "mail looks like an account verification from another service: flagged");
        }
        // People copied on a person's mail become watchers.
        let copied = |from: &crate::parse::MailAddress| {
            let from = from.address.clone();
            let people = mail.automation == Automation::Human && !verification;
            mail.to
                .iter()
                .chain(&mail.cc)
                .filter(move |a| people && a.address != from && !ours(&a.address))
                .filter(|a| settings.mail_senders.admits(&a.address).is_ok())
                .take(MAX_COPIED_WATCHERS)
                .cloned()
                .collect::<Vec<_>>()
        };
        let thread_ids: Vec<String> = mail.message_id.iter().cloned().collect();
        let base = |status: InboundStatus, effect: InboundEffect, files: Vec<(Attachment, Vec<u8>)>| InboundOutcome {
            inbound_id,
            status,
            automation: mail.automation.label().to_owned(),
            effect,
            files,
            thread_ids: thread_ids.clone(),
            bounced: bounced.clone(),
            jobs: vec![],
            at: now,
        };

        if let Some(ticket) = thread.filter(|t| t.status != Status::Closed) {
            // A reply. Machines' mail is kept as an internal note without an author and never
            // changes the ticket's state; people's replies are comments by them.
            let mut author_user = None;
            let (author, is_staff, watchers) = match from {
                Some(from) if !machine_note => {
                    let user = self.sender(from).await?;
                    author_user = Some(user.clone());
                    // Only those taking part may copy others in (a stranger who learnt a
                    // Message-ID cannot hand the ticket to more strangers).
                    let watchers = if user.role.is_staff() || ticket.involves(user.id) {
                        self.users_for(&copied(from)).await?
                    } else {
                        vec![]
                    };
                    (Some(user.id), user.role.is_staff(), watchers)
                }
                _ => (None, false, vec![]),
            };
            let mut body = visible_reply(&mail.text);
            // An answer to mail about a note is a note too, whoever sends it (case B22).
            let mut internal = machine_note || answers_a_note || verification;
            if is_staff && body.trim_start().starts_with(&self.config.internal_marker) {
                internal = true;
                body = body.trim_start()[self.config.internal_marker.len()..].trim_start().to_owned();
            }
            if machine_note {
                body = format!("[{}] {}\n\n{}", mail.automation.label(), mail.subject, body);
            }
            if verification {
                body = format!("{VERIFICATION_FLAG}\n\n{body}");
            }
            let comment = Comment {
                id: CommentId::generate(),
                ticket_id: ticket.id,
                author_id: author,
                body: with_dropped_note(bounded_text(body, "(no text)"), mail),
                internal,
                created_at: now,
            };
            let files = files_for(mail, ticket.id, Some(comment.id), internal, author, now);
            // Those copied in now hear of this answer too.
            let mut with_copied = ticket.clone();
            with_copied.add_watchers(&watchers);
            let mut jobs: Vec<_> =
                for_comment(&comment, is_staff, &with_copied).into_iter().map(|j| j.into_job(None, now)).collect();
            if let Some(user) = author_user.filter(|_| !verification) {
                jobs.extend(self.dropped_notice(mail, &user, ticket.id, now).await?);
            }
            let effect = InboundEffect::Comment { comment, author_is_staff: is_staff, watchers };
            return Ok(InboundOutcome { jobs, ..base(InboundStatus::Processed, effect, files) });
        }

        let from = match (unthreaded(mail), from) {
            (Unthreaded::Ticket, Some(from)) => from,
            (Unthreaded::Ignore(why), _) => {
                tracing::info!(inbound = %inbound_id, "{why}: stored, no ticket");
                return Ok(base(InboundStatus::Ignored, InboundEffect::Nothing, vec![]));
            }
            (Unthreaded::Quarantine(why), _) => return Err(Plan::Quarantine(why.into())),
            (Unthreaded::Ticket, None) => {
                return Err(Plan::Quarantine("the message has no usable sender address".into()));
            }
        };
        let requester = self.sender(from).await?;
        let watchers = self.users_for(&copied(from)).await?;
        // Forged or runaway senders cannot flood the queue: beyond this, mail waits for an admin.
        let hour_ago = now.checked_sub(jiff::SignedDuration::from_hours(1)).unwrap_or(now);
        let recent = ferrodesk_store::TicketQuery {
            requester_id: Some(requester.id),
            created_after: Some(hour_ago),
            ..Default::default()
        };
        if self.store.count_tickets(&recent, &ferrodesk_core::access::TicketScope::All).await?
            >= self.config.new_tickets_per_sender_hour
        {
            let limit = self.config.new_tickets_per_sender_hour;
            self.alert(
                &format!("sender-flood:{}", requester.email),
                format!("Mail from {} is held for review", requester.email),
                vec![
                    format!("More than {limit} new requests came from {} within an hour.", requester.email),
                    "Further mail from this sender waits in the quarantine (Admin → Mail) to be retried or discarded."
                        .into(),
                ],
                now,
            )
            .await;
            return Err(Plan::Quarantine(format!("more than {limit} new tickets from this sender within an hour")));
        }
        let ticket_id = TicketId::generate();
        let subject = match mail.subject.trim() {
            "" => "(no subject)".to_owned(),
            s => s.chars().take(SUBJECT_MAX_CHARS).collect(),
        };
        let mut description = with_dropped_note(bounded_text(mail.text.clone(), "(no text)"), mail);
        if verification {
            description = format!("{VERIFICATION_FLAG}\n\n{description}");
        }
        let draft = TicketDraft {
            ticket_type: mailbox.map(|m| m.default_type).unwrap_or(ferrodesk_core::ticket::TicketType::Incident),
            subject,
            description,
            requester_id: requester.id,
            organisation_id: requester.organisation_id,
            category_id: mailbox.and_then(|m| m.default_category_id),
            impact: Impact::Medium,
            urgency: Urgency::Medium,
            priority_override: None,
            group_id: mailbox.and_then(|m| m.default_group_id),
            assignee_id: None,
            channel: Channel::Email,
            tags: if verification { vec![VERIFICATION_TAG.to_owned()] } else { vec![] },
            watchers,
            custom_fields: serde_json::Map::new(),
        };
        let files = files_for(mail, ticket_id, None, false, Some(requester.id), now);
        let effect = InboundEffect::NewTicket {
            id: ticket_id,
            draft,
            matrix: settings.priority_matrix,
            actor: Some(requester.id),
        };
        let mut jobs = vec![];
        if !verification {
            jobs.extend(self.acknowledgement(mail, &requester, ticket_id, now).await?);
            jobs.extend(self.dropped_notice(mail, &requester, ticket_id, now).await?);
        }
        Ok(InboundOutcome { jobs, ..base(InboundStatus::Processed, effect, files) })
    }

    /// The "we have your request" answer: only to people (never to machines, which is what
    /// keeps two auto-responders from mailing each other forever), and at most one per sender
    /// per hour (forged senders cannot make us flood someone).
    async fn acknowledgement(
        &self,
        mail: &InboundMail,
        requester: &User,
        ticket: TicketId,
        now: Timestamp,
    ) -> Result<Vec<ferrodesk_store::NewJob>, Plan> {
        if mail.automation != Automation::Human {
            return Ok(vec![]);
        }
        let topic = format!("ack:{}", requester.email);
        if queued_within_hour(&self.store, &topic, now).await? {
            tracing::info!(ticket = %ticket, "no acknowledgement: the sender had one within the hour");
            return Ok(vec![]);
        }
        // And per domain: forged senders from one domain cannot make us mail it without end.
        let domain = requester.email.as_str().rsplit('@').next().unwrap_or_default().to_owned();
        let rule = ferrodesk_store::ThrottleRule { key: format!("ack-domain:{domain}"), limit: ACKS_PER_DOMAIN_HOUR };
        if self.store.admit_login(&[rule], now, jiff::SignedDuration::from_hours(1)).await?.is_some() {
            self.alert(
                &format!("ack-domain:{domain}"),
                format!("Acknowledgements to {domain} are paused"),
                vec![
                    format!("More than {ACKS_PER_DOMAIN_HOUR} new requests from addresses at {domain} came in within an hour."),
                    "Their tickets are opened, but no more acknowledgements go to that domain this hour: the senders may be forged."
                        .into(),
                ],
                now,
            )
            .await;
            return Ok(vec![]);
        }
        let job = MailJob::about(Notification::Received, Some(ticket), requester.id);
        Ok(vec![job.into_job(Some(topic), now)])
    }

    /// "These attachments of yours were too big to keep": to a person (never a machine), at
    /// most once an hour per sender, however many messages or files (case A17).
    async fn dropped_notice(
        &self,
        mail: &InboundMail,
        sender: &User,
        ticket: TicketId,
        now: Timestamp,
    ) -> Result<Option<ferrodesk_store::NewJob>, Plan> {
        if mail.dropped.is_empty() || mail.automation != Automation::Human {
            return Ok(None);
        }
        let topic = format!("dropped:{}", sender.email);
        if queued_within_hour(&self.store, &topic, now).await? {
            return Ok(None);
        }
        let details = mail.dropped.iter().map(|d| format!("{} ({} bytes): {}", d.filename, d.size, d.reason)).collect();
        let job = MailJob { details, ..MailJob::about(Notification::AttachmentsDropped, Some(ticket), sender.id) };
        Ok(Some(job.into_job(Some(topic), now)))
    }

    /// Tells the admins (at most once an hour per cause); a failure to do so is logged, never
    /// a reason to fail the message.
    async fn alert(&self, cause: &str, title: String, details: Vec<String>, now: Timestamp) {
        if let Err(e) = crate::alerts::alert_admins(&self.store, cause, title, details, now).await {
            tracing::warn!(error = %e, %cause, "cannot queue an alert to the admins");
        }
    }

    /// The ticket this message answers, in the order the issue sets: a Message-ID we know
    /// (ours verified by MAC, or any message already on a ticket), else the subject token
    /// when the sender takes part in that ticket.
    async fn find_thread(&self, mail: &InboundMail, sender: Option<&str>) -> Result<Option<Ticket>, Plan> {
        let mut foreign = Vec::new();
        let signer = self.signer().await?;
        for id in mail.ancestors() {
            match signer.verify(id) {
                OurId::Ticket { number, .. } => {
                    if let Some(t) = self.store.ticket_by_number(number).await? {
                        return Ok(Some(self.follow_merge(t).await?));
                    }
                }
                OurId::Forged => {
                    tracing::warn!(reference = id, "a reference in our Message-ID format with a bad MAC: ignored")
                }
                OurId::Foreign => foreign.push(id.to_owned()),
            }
        }
        if let Some(id) = self.store.thread_ticket(&foreign).await?
            && let Some(t) = self.store.ticket(id).await?
        {
            return Ok(Some(t));
        }
        let Some(number) = subject_ticket_number(&mail.subject) else { return Ok(None) };
        let Some(ticket) = self.store.ticket_by_number(number).await? else { return Ok(None) };
        let ticket = self.follow_merge(ticket).await?;
        let Some(Ok(address)) = sender.map(EmailAddress::parse) else { return Ok(None) };
        let participant = match self.store.user_by_email(&address).await? {
            Some((user, _)) => user.active && (ticket.involves(user.id) || user.role.is_staff()),
            None => false,
        };
        if !participant {
            tracing::info!(ticket = number.0, "subject names a ticket the sender does not take part in: a new ticket");
        }
        Ok(participant.then_some(ticket))
    }

    /// Whether the message answers our mail about an internal note (any of its ancestors
    /// carries our signed note mark: ours never name such mail to requesters).
    async fn answers_a_note(&self, mail: &InboundMail) -> Result<bool, Plan> {
        let signer = self.signer().await?;
        Ok(mail.ancestors().into_iter().any(|id| matches!(signer.verify(id), OurId::Ticket { internal: true, .. })))
    }

    async fn is_staff(&self, address: &str) -> Result<bool, Plan> {
        let Ok(address) = EmailAddress::parse(address) else { return Ok(false) };
        Ok(self.store.user_by_email(&address).await?.is_some_and(|(u, _)| u.active && u.role.is_staff()))
    }

    async fn follow_merge(&self, ticket: Ticket) -> Result<Ticket, Plan> {
        match ticket.merged_into {
            Some(target) => Ok(self.store.ticket(target).await?.unwrap_or(ticket)),
            None => Ok(ticket),
        }
    }

    /// People copied on a mail, as users (created like senders); deactivated ones are left out.
    async fn users_for(&self, people: &[crate::parse::MailAddress]) -> Result<Vec<UserId>, Plan> {
        let mut out = Vec::with_capacity(people.len());
        for person in people {
            match self.sender(person).await {
                // Named twice (To and Cc): watching once.
                Ok(user) if out.contains(&user.id) => {}
                Ok(user) => out.push(user.id),
                // A deactivated or unusable address is simply not copied in.
                Err(Plan::Quarantine(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The sender as a user: found by address, or created as a requester (without a password,
    /// so the address alone never grants a sign-in).
    async fn sender(&self, from: &crate::parse::MailAddress) -> Result<User, Plan> {
        let address =
            EmailAddress::parse(&from.address).map_err(|e| Plan::Quarantine(format!("sender address: {e}")))?;
        if let Some((user, _)) = self.store.user_by_email(&address).await? {
            if !user.active {
                return Err(Plan::Quarantine(format!("the sender {} is deactivated", user.email)));
            }
            return Ok(user);
        }
        let name = from
            .name
            .as_deref()
            .and_then(|n| ferrodesk_core::user::validate_name("name", n).ok())
            .unwrap_or_else(|| address.as_str().split('@').next().unwrap_or("requester").to_owned());
        let user = User {
            id: UserId::generate(),
            email: address.clone(),
            name,
            role: Role::Requester,
            organisation_id: None,
            active: true,
            created_at: ferrodesk_core::time::to_storage_precision(Timestamp::now()),
        };
        match self.store.create_user(&user, None).await {
            Ok(()) => Ok(user),
            // Created meanwhile by another message from the same sender.
            Err(StoreError::Duplicate { .. }) => match self.store.user_by_email(&address).await? {
                Some((user, _)) => Ok(user),
                None => Err(Plan::Store(StoreError::Database("the sender vanished".into()))),
            },
            Err(e) => Err(Plan::Store(e)),
        }
    }
}

/// What a message that answers no ticket of ours becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unthreaded {
    /// A new ticket.
    Ticket,
    /// Stored, nothing else (machines' mail), with why.
    Ignore(&'static str),
    /// Kept for an admin, with why.
    Quarantine(&'static str),
}

/// The rule for mail that names no ticket of ours: machines' answers are kept and ignored,
/// people's mail opens a ticket if it has a usable sender.
pub fn unthreaded(mail: &InboundMail) -> Unthreaded {
    match (&mail.automation, &mail.from) {
        (Automation::Bounce { .. }, _) => Unthreaded::Ignore("a delivery failure about no ticket of ours"),
        (Automation::AutoReply { .. }, _) => Unthreaded::Ignore("an automatic reply about no ticket of ours"),
        (_, None) => Unthreaded::Quarantine("the message has no usable sender address (From)"),
        (_, Some(_)) => Unthreaded::Ticket,
    }
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

/// Text within the description limit, or `empty` when there is none.
fn bounded_text(text: String, empty: &str) -> String {
    if text.trim().is_empty() {
        return empty.to_owned();
    }
    if text.len() <= DESCRIPTION_MAX_BYTES - 1024 {
        return text;
    }
    let mut end = DESCRIPTION_MAX_BYTES - 1024;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n\n[The message was longer; the whole original is kept with the ticket.]", &text[..end])
}

/// Says which files were not kept, so agents know (and can ask the sender).
fn with_dropped_note(text: String, mail: &InboundMail) -> String {
    if mail.dropped.is_empty() {
        return text;
    }
    let mut out = text;
    out.push_str("\n\n");
    for d in &mail.dropped {
        out.push_str(&format!("[Attachment \"{}\" ({} bytes) was not kept: {}.]\n", d.filename, d.size, d.reason));
    }
    out.trim_end().to_owned()
}

fn files_for(
    mail: &InboundMail,
    ticket: TicketId,
    comment: Option<CommentId>,
    internal: bool,
    uploader: Option<UserId>,
    now: Timestamp,
) -> Vec<(Attachment, Vec<u8>)> {
    mail.files
        .iter()
        .map(|f| {
            let attachment = Attachment {
                id: AttachmentId::generate(),
                ticket_id: ticket,
                comment_id: comment,
                internal,
                filename: ferrodesk_core::attachment::sanitize_filename(&f.filename),
                content_type: f.content_type.clone(),
                size: f.data.len() as i64,
                sha256: hex::encode(Sha256::digest(&f.data)),
                uploaded_by: uploader,
                created_at: ferrodesk_core::time::to_storage_precision(now),
            };
            (attachment, f.data.clone())
        })
        .collect()
}
