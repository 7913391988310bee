//! The last step before settling: a decision turned into the whole effect of a message (the
//! ticket or comment, its files, notes, watchers and mail), to be written in one transaction.

use ferrodesk_core::ids::{AttachmentId, CommentId, TicketId, UserId};
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_core::priority::{Impact, Urgency};
use ferrodesk_core::ticket::{Channel, DESCRIPTION_MAX_BYTES, SUBJECT_MAX_CHARS, Ticket, TicketDraft};
use ferrodesk_core::user::User;
use ferrodesk_store::{Attachment, Comment, InboundEffect, InboundOutcome, Mailbox, NewJob};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::gather::Gathered;
use super::{ACKS_PER_DOMAIN_HOUR, Ingest, Plan, VERIFICATION_FLAG, VERIFICATION_TAG, Vouch};
use crate::classify::Automation;
use crate::decide::{CommentDecision, CommentKind, Decision, decide};
use crate::outbound::{MailJob, Notification, for_comment, queued_within_hour};
use crate::parse::InboundMail;
use crate::trust::{CopiedPerson, copied_watchers};

impl Ingest {
    /// Gathers the facts, decides, and builds the effect; reads the store and writes nothing
    /// but the accounts of senders and copied people the effect names.
    pub(super) async fn plan(
        &self,
        inbound_id: uuid::Uuid,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        now: Timestamp,
        vouch: Option<Vouch>,
    ) -> Result<InboundOutcome, Plan> {
        let g = self.gather(mail, vouch).await?;
        // The mail host's own senders (cron, monitoring), when the mailbox names who they are;
        // its bounces and auto-replies stay machines' mail.
        let machine = matches!(mail.automation, Automation::AutoReply { .. } | Automation::Bounce { .. });
        if let (None, Some(local), Some(user), None, false) =
            (&mail.from, &mail.local_from, mailbox.and_then(|m| m.local_senders_as), vouch, machine)
        {
            return self.local_sender_ticket(mail, mailbox, &g, local, user, now, inbound_id).await;
        }
        let decision = decide(&g.facts(mail, &self.config.internal_marker));
        let base = base_outcome(inbound_id, mail, vouch.map(|v| v.by), now);
        if vouch.is_some() && !matches!(decision, Decision::Comment(_)) {
            return Err(Plan::Quarantine("the ticket it was held on is closed or gone".into()));
        }
        match decision {
            Decision::FromOurselves => {
                let from = mail.from.as_ref().map(|f| f.address.clone()).unwrap_or_default();
                tracing::warn!(inbound = %inbound_id, %from, "mail from our own address: a loop? not processed");
                self.alert(
                    &format!("own-address:{from}"),
                    format!("Mail from the desk's own address {from} was not processed"),
                    vec![
                        format!("A message with the subject \"{}\" came in from {from}, one of the desk's own addresses.", mail.subject),
                        "This usually means a mail loop: something forwards the desk's mail back to it. It was stored and ignored.".into(),
                    ],
                    now,
                )
                .await;
                Err(Plan::Ignore(format!("sent from our own address {from}")))
            }
            Decision::Quarantine(why) => Err(Plan::Quarantine(why)),
            Decision::Ignore(why) => {
                tracing::info!(inbound = %inbound_id, "{why}: stored, no ticket");
                Ok(InboundOutcome { status: InboundStatus::Ignored, ..base })
            }
            Decision::NewTicket { copy_in, flagged } => {
                self.new_ticket(mail, mailbox, &g, copy_in, flagged, base).await
            }
            Decision::Comment(c) => match &g.thread {
                Some(ticket) => self.comment(mail, &g, ticket, c, base).await,
                None => Err(Plan::Quarantine("the ticket it answers vanished".into())),
            },
        }
    }

    async fn new_ticket(
        &self,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        g: &Gathered,
        copy_in: bool,
        flagged: bool,
        base: InboundOutcome,
    ) -> Result<InboundOutcome, Plan> {
        let now = base.at;
        let Some(from) = &mail.from else {
            return Err(Plan::Quarantine("the message has no usable sender address".into()));
        };
        let requester = self.account(from, g, now).await?;
        let opening = Opening { copy_in, flagged, preface: None, answer_sender: !flagged };
        self.opened_by(mail, mailbox, g, requester, opening, base).await
    }

    /// A new ticket from the mail host's own sender `local`, opened as `user`: no answer goes
    /// back (a cron job reads none), nobody copied is added.
    #[allow(clippy::too_many_arguments)]
    async fn local_sender_ticket(
        &self,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        g: &Gathered,
        local: &str,
        user: UserId,
        now: Timestamp,
        inbound_id: uuid::Uuid,
    ) -> Result<InboundOutcome, Plan> {
        let requester = match self.store.user(user).await? {
            Some(u) if u.active => u,
            _ => return Err(Plan::Quarantine("the user this mailbox opens local senders' tickets as is gone".into())),
        };
        let preface = Some(format!("[Sent by {local}, a sender on the mail host.]"));
        let opening = Opening { copy_in: false, flagged: false, preface, answer_sender: false };
        self.opened_by(mail, mailbox, g, requester, opening, base_outcome(inbound_id, mail, None, now)).await
    }

    /// A new ticket requested by `requester`, from this message.
    async fn opened_by(
        &self,
        mail: &InboundMail,
        mailbox: Option<&Mailbox>,
        g: &Gathered,
        requester: User,
        opening: Opening,
        base: InboundOutcome,
    ) -> Result<InboundOutcome, Plan> {
        let Opening { copy_in, flagged, preface, answer_sender } = opening;
        let now = base.at;
        self.refuse_floods(&requester, now).await?;
        let copied = if flagged { vec![] } else { self.copied_people(mail, g).await? };
        let (watchers, waiting) = copied_watchers(copy_in, requester.organisation_id, copied);
        let ticket_id = TicketId::generate();
        let subject = match mail.subject.trim() {
            "" => "(no subject)".to_owned(),
            s => s.chars().take(SUBJECT_MAX_CHARS).collect(),
        };
        // The signature is cut here too; the whole message is kept with the ticket.
        let text = crate::reply::without_signature(&mail.text);
        let mut description = with_dropped_note(bounded_text(text, "(no text)"), mail);
        if flagged {
            description = format!("{VERIFICATION_FLAG}\n\n{description}");
        }
        if let Some(preface) = preface {
            description = format!("{preface}\n\n{description}");
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
            tags: if flagged { vec![VERIFICATION_TAG.to_owned()] } else { vec![] },
            watchers: self.watcher_accounts(&watchers, now).await?,
            custom_fields: serde_json::Map::new(),
        };
        let files = files_for(mail, ticket_id, None, false, Some(requester.id), now);
        let effect = InboundEffect::NewTicket {
            id: ticket_id,
            draft,
            matrix: g.settings.priority_matrix.clone(),
            actor: Some(requester.id),
        };
        let mut jobs = vec![];
        if answer_sender {
            jobs.extend(self.acknowledgement(mail, &requester, ticket_id, now).await?);
            jobs.extend(self.dropped_notice(mail, &requester, ticket_id, now).await?);
        }
        let notes = waiting_note(ticket_id, &waiting, copy_in, now).into_iter().collect();
        Ok(InboundOutcome { effect, files, jobs, notes, ..base })
    }

    /// Forged or runaway senders cannot flood the queue: beyond the hourly limit of new
    /// tickets, their mail waits in the quarantine for an admin.
    async fn refuse_floods(&self, requester: &User, now: Timestamp) -> Result<(), Plan> {
        let hour_ago = now.checked_sub(jiff::SignedDuration::from_hours(1)).unwrap_or(now);
        let recent = ferrodesk_store::TicketQuery {
            requester_id: Some(requester.id),
            created_after: Some(hour_ago),
            ..Default::default()
        };
        let limit = self.config.new_tickets_per_sender_hour;
        if self.store.count_tickets(&recent, &ferrodesk_core::access::TicketScope::All).await? < limit {
            return Ok(());
        }
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
        Err(Plan::Quarantine(format!("more than {limit} new tickets from this sender within an hour")))
    }

    /// A reply on an existing ticket: the sender's comment, a machine's note, or a held note.
    async fn comment(
        &self,
        mail: &InboundMail,
        g: &Gathered,
        ticket: &Ticket,
        c: CommentDecision,
        base: InboundOutcome,
    ) -> Result<InboundOutcome, Plan> {
        let now = base.at;
        let mut body = c.body;
        let (author, staff, status) = match c.kind {
            CommentKind::BySender { staff, .. } => {
                let from = mail.from.as_ref().ok_or_else(|| Plan::Quarantine("the message has no sender".into()))?;
                (Some(self.account(from, g, now).await?), staff, InboundStatus::Processed)
            }
            CommentKind::MachineNote => {
                body = format!("[{}] {}\n\n{body}", mail.automation.label(), mail.subject);
                (None, false, InboundStatus::Processed)
            }
            CommentKind::Held(reason) => {
                let claimed = match &mail.from {
                    Some(f) => match &f.name {
                        Some(name) => format!("{name} <{}>", f.address),
                        None => f.address.clone(),
                    },
                    None => "nobody".to_owned(),
                };
                body = format!(
                    "[Unverified message claiming to be {claimed}: {}. It was not added as their reply and mailed \
                     to nobody; accept it to add it as theirs, or discard it.]\n\n{body}",
                    reason.explained()
                );
                tracing::warn!(ticket = %ticket.id, from = %claimed, ?reason, "mail held: it does not prove its sender");
                (None, false, InboundStatus::Held)
            }
        };
        if c.flagged {
            body = format!("{VERIFICATION_FLAG}\n\n{body}");
        }
        let comment = Comment {
            id: CommentId::generate(),
            ticket_id: ticket.id,
            author_id: author.as_ref().map(|u| u.id),
            body: with_dropped_note(bounded_text(body, "(no text)"), mail),
            internal: c.internal,
            created_at: now,
        };
        let files = files_for(mail, ticket.id, Some(comment.id), c.internal, comment.author_id, now);
        let copy_in = matches!(c.kind, CommentKind::BySender { copy_in: true, .. });
        let (watchers, waiting) = match c.kind {
            CommentKind::BySender { .. } => {
                let copied = self.copied_people(mail, g).await?;
                let (add, waiting) = copied_watchers(copy_in, ticket.organisation_id, copied);
                // Those already watching need no confirmation.
                let waiting = waiting.into_iter().filter(|p| !p.user.is_some_and(|u| ticket.involves(u))).collect();
                (self.watcher_accounts(&add, now).await?, waiting)
            }
            _ => (vec![], vec![]),
        };
        // Those copied in now hear of this answer too; a held or machine note mails nobody.
        let mut with_copied = ticket.clone();
        with_copied.add_watchers(&watchers);
        let mut jobs: Vec<NewJob> = match c.kind {
            CommentKind::BySender { .. } => {
                for_comment(&comment, staff, &with_copied).into_iter().map(|j| j.into_job(None, now)).collect()
            }
            _ => vec![],
        };
        if let Some(user) = author.filter(|_| !c.flagged) {
            jobs.extend(self.dropped_notice(mail, &user, ticket.id, now).await?);
        }
        let notes = waiting_note(ticket.id, &waiting, copy_in, now).into_iter().collect();
        let effect = InboundEffect::Comment { comment, author_is_staff: staff, watchers };
        Ok(InboundOutcome { status, effect, files, jobs, notes, ..base })
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
    ) -> Result<Vec<NewJob>, Plan> {
        // A calendar invitation's organiser gets no "we have your request".
        if mail.automation != Automation::Human || mail.calendar_method.is_some() {
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
    ) -> Result<Option<NewJob>, Plan> {
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
}

/// How a new ticket is opened from a message.
struct Opening {
    /// People copied on it may become watchers.
    copy_in: bool,
    /// It looks like another service's account verification.
    flagged: bool,
    /// A line put above the text.
    preface: Option<String>,
    /// Its sender gets the acknowledgement and the dropped-files notice.
    answer_sender: bool,
}

/// The outcome every plan starts from: the message processed, changing nothing yet.
fn base_outcome(
    inbound_id: uuid::Uuid,
    mail: &InboundMail,
    decided_by: Option<UserId>,
    at: Timestamp,
) -> InboundOutcome {
    InboundOutcome {
        inbound_id,
        status: InboundStatus::Processed,
        automation: mail.automation.label().to_owned(),
        effect: InboundEffect::Nothing,
        files: vec![],
        thread_ids: mail.message_id.iter().cloned().collect(),
        bounced: match &mail.automation {
            Automation::Bounce { recipients } => recipients.clone(),
            _ => vec![],
        },
        jobs: vec![],
        notes: vec![],
        decided_by,
        at,
    }
}

/// The internal note listing people copied on a message who were not made watchers, for an
/// agent to add if they should follow the ticket.
fn waiting_note(ticket: TicketId, waiting: &[CopiedPerson], copy_in: bool, now: Timestamp) -> Option<Comment> {
    if waiting.is_empty() {
        return None;
    }
    let why = if copy_in {
        "they are outside the ticket's organisation"
    } else {
        "the message does not prove who sent it, or its sender does not take part in the ticket"
    };
    let people = waiting.iter().map(|p| p.email.as_str()).collect::<Vec<_>>().join(", ");
    Some(Comment {
        id: CommentId::generate(),
        ticket_id: ticket,
        author_id: None,
        body: format!(
            "[Copied on the mail but not made watchers, because {why}: {people}. Add them as watchers if they \
             should follow this ticket.]"
        ),
        internal: true,
        created_at: now,
    })
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

/// Says which files were not kept, or arrived damaged, so agents know (and can ask the
/// sender).
fn with_dropped_note(text: String, mail: &InboundMail) -> String {
    let damaged: Vec<&str> = mail.files.iter().filter(|f| f.damaged).map(|f| f.filename.as_str()).collect();
    if mail.dropped.is_empty() && damaged.is_empty() {
        return text;
    }
    let mut out = text;
    out.push_str("\n\n");
    for d in &mail.dropped {
        out.push_str(&format!("[Attachment \"{}\" ({} bytes) was not kept: {}.]\n", d.filename, d.size, d.reason));
    }
    for name in damaged {
        let original = name.strip_suffix(".damaged").unwrap_or(name);
        out.push_str(&format!(
            "[Attachment \"{original}\" arrived damaged (its encoding is broken or cut short): it is kept as \
             received, still encoded, as \"{name}\". Ask the sender to send it again.]\n"
        ));
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
) -> Vec<(Attachment, bytes::Bytes)> {
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
