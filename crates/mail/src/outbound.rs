//! Mail we send. Notifications are queued as jobs in the same transaction as what caused them
//! (the outbox) and rendered when they are sent, from the ticket as it is then. Every message
//! carries our signed Message-ID and the ticket's thread in `In-Reply-To`/`References`, so
//! replies thread onto the ticket in any mail program; automatic ones carry `Auto-Submitted`
//! (RFC 3834) so that well-behaved responders never answer them.

use ferrodesk_core::ids::{CommentId, TicketId, UserId};
use ferrodesk_store::{Comment, Mailbox, NewJob};
use jiff::Timestamp;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox as Address, MultiPart, SinglePart};
use serde::{Deserialize, Serialize};

use crate::templates::Templates;
use crate::thread::subject_with_token;

/// The job kind of outgoing mail.
pub const SEND_MAIL: &str = "send_mail";

/// Attempts before a notification is given up (with the hourly backoff: about a day).
pub const MAX_ATTEMPTS: i64 = 30;

/// Which notification a job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notification {
    /// To the sender of a new ticket by mail: we have it, here is its number.
    Received,
    /// To the requester: an agent's public reply.
    AgentReply,
    /// To someone who asked: a link to choose a new password.
    PasswordReset,
    /// To the assignee: the requester answered.
    RequesterReply,
    /// To the requester: we wait for them.
    PendingOnYou,
    /// To the requester: resolved, with links to confirm or reopen.
    Resolved,
    /// To an agent: a ticket was assigned to them (by someone else).
    Assigned,
    /// To the assignee: someone else added an internal note. Answers to it stay internal.
    InternalNote,
    /// To a sender: which attachments of theirs were too big to keep.
    AttachmentsDropped,
    /// To the admins: something needs a person (a flood of mail, a loop).
    AdminAlert,
    /// To a sender: their message was larger than the mailbox takes, and was not read.
    MessageTooLarge,
}

impl Notification {
    /// The notifications an admin may switch off (a password reset always goes out), with
    /// their names (as in settings) and what they are, for the settings page.
    pub const SWITCHABLE: &'static [(Notification, &'static str, &'static str)] = &[
        (Notification::Received, "received", "Tell the sender a mailed request was received"),
        (Notification::AgentReply, "agent_reply", "Mail agents' public answers to the requester"),
        (Notification::RequesterReply, "requester_reply", "Tell the assignee when the requester answers"),
        (Notification::PendingOnYou, "pending_on_you", "Tell the requester when we wait for them"),
        (Notification::Resolved, "resolved", "Tell the requester a ticket is resolved (with confirm/reopen links)"),
        (Notification::Assigned, "assigned", "Tell an agent a ticket was assigned to them"),
        (Notification::InternalNote, "internal_note", "Tell the assignee of internal notes others add"),
        (
            Notification::AttachmentsDropped,
            "attachments_dropped",
            "Tell senders which attachments were too big to keep",
        ),
        (Notification::AdminAlert, "admin_alert", "Mail admins about floods of mail and mail loops"),
        (Notification::MessageTooLarge, "message_too_large", "Tell senders their message was too large to take"),
    ];

    /// Every notification.
    pub const ALL: &'static [Notification] = &[
        Notification::Received,
        Notification::AgentReply,
        Notification::PasswordReset,
        Notification::RequesterReply,
        Notification::PendingOnYou,
        Notification::Resolved,
        Notification::Assigned,
        Notification::InternalNote,
        Notification::AttachmentsDropped,
        Notification::AdminAlert,
        Notification::MessageTooLarge,
    ];

    /// The base name of its templates (`NAME.txt`, `NAME.html`).
    pub fn template_name(self) -> &'static str {
        match self {
            Notification::Received => "received",
            Notification::AgentReply => "agent_reply",
            Notification::PasswordReset => "password_reset",
            Notification::RequesterReply => "requester_reply",
            Notification::PendingOnYou => "pending_on_you",
            Notification::Resolved => "resolved",
            Notification::Assigned => "assigned",
            Notification::InternalNote => "internal_note",
            Notification::AttachmentsDropped => "attachments_dropped",
            Notification::AdminAlert => "admin_alert",
            Notification::MessageTooLarge => "message_too_large",
        }
    }

    /// What its mail is about, so that its templates get exactly those variables (and the
    /// start-up check renders them with the same).
    pub fn parts(self) -> Parts {
        let ticket = Parts { ticket: true, ..Parts::default() };
        match self {
            Notification::PasswordReset => Parts { reset: true, ..Parts::default() },
            Notification::AgentReply | Notification::RequesterReply | Notification::InternalNote => {
                Parts { comment: true, ..ticket }
            }
            Notification::Resolved => Parts { links: true, ..ticket },
            Notification::AttachmentsDropped => Parts { details: true, ..ticket },
            Notification::AdminAlert | Notification::MessageTooLarge => Parts { details: true, ..Parts::default() },
            Notification::Received | Notification::PendingOnYou | Notification::Assigned => ticket,
        }
    }

    /// Whether it is sent by a machine, not a person: `Auto-Submitted` says so (RFC 3834), so
    /// that well-behaved responders never answer it.
    fn auto_submitted(self) -> Option<&'static str> {
        match self {
            Notification::AgentReply => None,
            Notification::Received => Some("auto-replied"),
            _ => Some("auto-generated"),
        }
    }

    /// Its name in settings, if it can be switched off.
    pub fn switch_name(self) -> Option<&'static str> {
        Self::SWITCHABLE.iter().find(|(n, _, _)| *n == self).map(|(_, name, _)| *name)
    }
}

/// Which parts of a ticket a notification shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub ticket: bool,
    pub comment: bool,
    /// The confirm and reopen links.
    pub links: bool,
    pub reset: bool,
    /// Lines about what happened (dropped files, an alert's facts).
    pub details: bool,
}

/// An earlier message of the conversation, quoted below an answer.
#[derive(Debug, Clone, Serialize)]
pub struct Quoted {
    pub author: String,
    /// When, as people read it (UTC).
    pub at: String,
    pub body: String,
}

/// Checks a list of switched-off notifications (names as in `SWITCHABLE`).
pub fn validate_disabled(names: Vec<String>) -> Result<Vec<String>, ferrodesk_core::DomainError> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim().to_owned();
        if !Notification::SWITCHABLE.iter().any(|(_, name, _)| *name == n) {
            let known: Vec<&str> = Notification::SWITCHABLE.iter().map(|(_, name, _)| *name).collect();
            return Err(ferrodesk_core::DomainError::invalid(
                "disabled_notifications",
                format!("{n:?} is not one of: {}", known.join(", ")),
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The payload of a `send_mail` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailJob {
    pub notification: Notification,
    pub ticket: Option<TicketId>,
    pub comment: Option<CommentId>,
    /// The password reset a `PasswordReset` mail is for.
    #[serde(default)]
    pub reset: Option<uuid::Uuid>,
    /// The recipient (looked up when sending, so a changed address is honoured).
    pub to: UserId,
    /// For mail about no ticket (an alert): its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Lines about what happened (dropped files, an alert's facts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl MailJob {
    /// Mail of `notification` to `to`, about `ticket` (none for mail about no ticket).
    pub fn about(notification: Notification, ticket: Option<TicketId>, to: UserId) -> Self {
        MailJob { notification, ticket, comment: None, reset: None, to, title: None, details: vec![] }
    }

    /// The job, due now. `topic` names what rate limits count (e.g. `ack:ADDRESS`).
    pub fn into_job(self, topic: Option<String>, now: Timestamp) -> NewJob {
        NewJob {
            id: uuid::Uuid::now_v7(),
            kind: SEND_MAIL.into(),
            ticket_id: self.ticket,
            payload: serde_json::to_value(&self).unwrap_or_default(),
            topic,
            run_at: now,
            max_attempts: MAX_ATTEMPTS,
        }
    }
}

/// Whether mail on `topic` (see [`MailJob::into_job`]) was queued within the hour before `now`:
/// the once-an-hour rule of acknowledgements, "attachments too big" and admin alerts.
pub async fn queued_within_hour(
    store: &std::sync::Arc<dyn ferrodesk_store::Store>,
    topic: &str,
    now: Timestamp,
) -> Result<bool, ferrodesk_store::StoreError> {
    let hour_ago = now.checked_sub(jiff::SignedDuration::from_hours(1)).unwrap_or(now);
    Ok(store.jobs_on_topic_since(topic, hour_ago).await? > 0)
}

/// The mail a comment causes: a public answer by staff goes to the requester and the ticket's
/// watchers (those copied in); a requester's answer goes to the assignee; a note by someone
/// goes to the assignee (never the requester: notes never leave the desk); nobody is mailed
/// their own words. The desk's own notes (a bounce, a failed delivery) are mailed to nobody:
/// mailing them could loop.
pub fn for_comment(comment: &Comment, author_is_staff: bool, ticket: &ferrodesk_core::ticket::Ticket) -> Vec<MailJob> {
    let (notification, to): (Notification, Vec<UserId>) = match (comment.internal, author_is_staff) {
        (true, _) if comment.author_id.is_none() => return vec![],
        (true, _) => (Notification::InternalNote, ticket.assignee_id.into_iter().collect()),
        (false, true) => {
            (Notification::AgentReply, std::iter::once(ticket.requester_id).chain(ticket.watchers.clone()).collect())
        }
        (false, false) => (Notification::RequesterReply, ticket.assignee_id.into_iter().collect()),
    };
    let mut seen = Vec::new();
    to.into_iter()
        .filter(|to| comment.author_id != Some(*to))
        .filter(|to| {
            let first = !seen.contains(to);
            seen.push(*to);
            first
        })
        .map(|to| MailJob { comment: Some(comment.id), ..MailJob::about(notification, Some(comment.ticket_id), to) })
        .collect()
}

/// The mail a change of a ticket's fields causes: the requester hears of "pending on you" and
/// "resolved"; an agent hears that a ticket was assigned to them by someone else.
pub fn for_change(
    ticket: &ferrodesk_core::ticket::Ticket,
    changes: &[ferrodesk_core::ticket::FieldChange],
    actor: Option<UserId>,
) -> Vec<MailJob> {
    use ferrodesk_core::ticket::{PendingReason, Status};
    let job = |notification, to| MailJob::about(notification, Some(ticket.id), to);
    let mut jobs = Vec::new();
    let became = changes.iter().find(|c| c.field == "status").and_then(|c| c.new.as_deref());
    match (became, ticket.status, ticket.pending_reason) {
        (Some("resolved"), Status::Resolved, _) => jobs.push(job(Notification::Resolved, ticket.requester_id)),
        (Some("pending"), Status::Pending, Some(PendingReason::Requester)) => {
            jobs.push(job(Notification::PendingOnYou, ticket.requester_id))
        }
        _ => {}
    }
    if changes.iter().any(|c| c.field == "assignee_id")
        && let Some(assignee) = ticket.assignee_id
        && Some(assignee) != actor
    {
        jobs.push(job(Notification::Assigned, assignee));
    }
    jobs
}

/// Everything a notification needs, read from the store when it is sent.
pub struct Context<'a> {
    /// The ticket's number (none for mail about no ticket, e.g. a password reset).
    pub number: Option<i64>,
    pub subject: &'a str,
    pub requester_name: &'a str,
    pub recipient_name: &'a str,
    pub recipient: &'a str,
    pub comment: Option<&'a Comment>,
    pub author_name: Option<&'a str>,
    pub mailbox: &'a Mailbox,
    /// Where people open the ticket in the portal.
    pub ticket_url: String,
    pub message_id: String,
    /// The ticket's known Message-IDs, oldest first.
    pub thread: &'a [String],
    /// The password-reset link, for `PasswordReset`.
    pub reset_link: Option<String>,
    /// For `Resolved`: the resolution note, and the confirm and reopen links.
    pub resolution: Option<&'a str>,
    pub action_links: Option<(String, String)>,
    /// Earlier public messages, newest first (for answers that quote the conversation).
    pub conversation: Vec<Quoted>,
    /// Lines about what happened (dropped files, an alert's facts).
    pub details: Vec<String>,
}

impl<'a> Context<'a> {
    /// Believable values for every part `kind` gets: what the start-up check renders.
    pub fn sample(kind: Notification, mailbox: &'a Mailbox) -> Self {
        let parts = kind.parts();
        Context {
            number: parts.ticket.then_some(1042),
            subject: if parts.reset { "Reset your service desk password" } else { "Printer on floor 3 jams" },
            requester_name: "Ann Example",
            recipient_name: "Ann Example",
            recipient: "ann@customer.example",
            comment: None,
            author_name: parts.comment.then_some("Bob Agent"),
            mailbox,
            ticket_url: "https://desk.example/portal/tickets/1042".into(),
            message_id: "fd.1042.sample.000000000000000000000000@desk.example".into(),
            thread: &[],
            reset_link: parts.reset.then(|| "https://desk.example/reset-password?token=sample".into()),
            resolution: parts.ticket.then_some("Replaced the fuser unit."),
            action_links: parts.links.then(|| {
                (
                    "https://desk.example/portal/by-mail?a=confirm".into(),
                    "https://desk.example/portal/by-mail?a=reopen".into(),
                )
            }),
            details: if parts.details {
                vec!["scan.pdf (31457280 bytes): larger than 26214400 bytes".into(), "Second line.".into()]
            } else {
                vec![]
            },
            conversation: if parts.ticket {
                vec![Quoted {
                    author: "Ann Example".into(),
                    at: "2026-11-20 09:15 UTC".into(),
                    body: "The printer on floor 3 jams on every page.\nIt shows error 13.".into(),
                }]
            } else {
                vec![]
            },
        }
    }
}

/// A rendered message, ready to send.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub message: lettre::Message,
    pub recipient: String,
}

/// Renders a notification with `templates`. Fails on an address lettre cannot use or a
/// template that fails on these values.
pub fn render(kind: Notification, ctx: &Context<'_>, templates: &Templates) -> Result<Rendered, String> {
    let subject = match ctx.number {
        Some(n) if kind == Notification::InternalNote => {
            subject_with_token(ferrodesk_core::ids::TicketNumber(n), &format!("(internal) {}", ctx.subject))
        }
        Some(n) => subject_with_token(ferrodesk_core::ids::TicketNumber(n), ctx.subject),
        None => ctx.subject.to_owned(),
    };
    let (text, html) = templates.render(kind, ctx)?;
    let auto = kind.auto_submitted();
    let from = Address::new(Some("Service desk".into()), parse_address(ctx.mailbox.address.as_str())?);
    let to = Address::new(Some(ctx.recipient_name.to_owned()), parse_address(ctx.recipient)?);
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .reply_to(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}>", ctx.message_id)));
    if let Some(parent) = ctx.thread.last() {
        builder = builder.in_reply_to(format!("<{parent}>"));
        let refs = ctx.thread.iter().map(|id| format!("<{id}>")).collect::<Vec<_>>().join(" ");
        builder = builder.references(refs);
    }
    let mut message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(|e| e.to_string())?;
    if let Some(value) = auto {
        let headers = message.headers_mut();
        headers.insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), value.into()));
        // Outlook and Exchange: do not answer this with an out-of-office.
        headers.insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"), "All".into()));
    }
    Ok(Rendered { message, recipient: ctx.recipient.to_owned() })
}

fn parse_address(a: &str) -> Result<lettre::Address, String> {
    a.parse::<lettre::Address>().map_err(|e| format!("unusable address {a:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseLimits, parse};

    fn mailbox() -> Mailbox {
        crate::templates::sample_mailbox()
    }

    #[test]
    fn notifications_thread_and_say_they_are_automatic() {
        let mb = mailbox();
        let thread = vec!["m1@customer.example".to_owned()];
        let ctx = Context {
            number: Some(1042),
            subject: "Printer <jammed>",
            requester_name: "Ann",
            recipient_name: "Ann \"the boss\" Example",
            recipient: "ann@customer.example",
            comment: None,
            author_name: None,
            mailbox: &mb,
            ticket_url: "https://desk.example/portal/tickets/1042".into(),
            message_id: "fd.1042.abc.0011@desk.example".into(),
            thread: &thread,
            reset_link: None,
            resolution: None,
            action_links: None,
            conversation: vec![],
            details: vec![],
        };
        let raw = render(Notification::Received, &ctx, &Templates::built_in())
            .unwrap_or_else(|e| panic!("{e}"))
            .message
            .formatted();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        // Read back with our own parser: what a mail program sees.
        let read = parse(&raw, &ParseLimits::default());
        assert_eq!(read.subject, "[#1042] Printer <jammed>");
        assert_eq!(read.message_id.as_deref(), Some("fd.1042.abc.0011@desk.example"));
        assert_eq!(read.in_reply_to, ["m1@customer.example"]);
        assert_eq!(read.from.map(|f| f.address).as_deref(), Some("help@desk.example"));
        assert_eq!(read.to[0].address, "ann@customer.example");
        assert!(read.text.contains("ticket #1042"), "{}", read.text);
        assert!(read.html.unwrap_or_default().contains("Printer &lt;jammed&gt;"));
        assert!(read.automation.is_automatic(), "our own acknowledgement must look automatic to us too");
    }

    fn sample_ticket() -> ferrodesk_core::ticket::Ticket {
        ferrodesk_core::ticket::Ticket::open(
            ferrodesk_core::ticket::TicketDraft {
                ticket_type: ferrodesk_core::ticket::TicketType::Incident,
                subject: "s".into(),
                description: "d".into(),
                requester_id: UserId::generate(),
                organisation_id: None,
                category_id: None,
                impact: ferrodesk_core::priority::Impact::Low,
                urgency: ferrodesk_core::priority::Urgency::Low,
                priority_override: None,
                group_id: None,
                assignee_id: None,
                channel: ferrodesk_core::ticket::Channel::Email,
                tags: vec![],
                watchers: vec![],
                custom_fields: serde_json::Map::new(),
            },
            TicketId::generate(),
            ferrodesk_core::ids::TicketNumber(7),
            &ferrodesk_core::priority::PriorityMatrix::default(),
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn field_changes_mail_the_right_people() {
        use ferrodesk_core::ticket::FieldChange;
        let mut t = sample_ticket();
        let agent = UserId::generate();
        t.assignee_id = Some(agent);
        let assign = vec![FieldChange { field: "assignee_id".into(), old: None, new: Some(agent.to_string()) }];
        let kinds = |jobs: Vec<MailJob>| jobs.into_iter().map(|j| (j.notification, j.to)).collect::<Vec<_>>();
        assert_eq!(kinds(for_change(&t, &assign, Some(UserId::generate()))), [(Notification::Assigned, agent)]);
        assert!(for_change(&t, &assign, Some(agent)).is_empty(), "taking a ticket yourself mails nobody");
        t.status = ferrodesk_core::ticket::Status::Resolved;
        let resolve =
            vec![FieldChange { field: "status".into(), old: Some("open".into()), new: Some("resolved".into()) }];
        assert_eq!(kinds(for_change(&t, &resolve, Some(agent))), [(Notification::Resolved, t.requester_id)]);
    }

    #[test]
    fn comments_mail_the_right_people() {
        let mut ticket = sample_ticket();
        let requester = ticket.requester_id;
        let (assignee, colleague, copied) = (UserId::generate(), UserId::generate(), UserId::generate());
        ticket.assignee_id = Some(assignee);
        ticket.watchers = vec![copied];
        let comment = |internal, author| Comment {
            id: CommentId::generate(),
            ticket_id: ticket.id,
            author_id: author,
            body: "x".into(),
            internal,
            created_at: Timestamp::UNIX_EPOCH,
        };
        let to = |jobs: Vec<MailJob>| jobs.into_iter().map(|j| (j.notification, j.to)).collect::<Vec<_>>();
        // A public answer: the requester and whoever was copied in.
        assert_eq!(
            to(for_comment(&comment(false, Some(assignee)), true, &ticket)),
            [(Notification::AgentReply, requester), (Notification::AgentReply, copied)]
        );
        // The requester's answer: the assignee; nobody hears their own words.
        assert_eq!(
            to(for_comment(&comment(false, Some(requester)), false, &ticket)),
            [(Notification::RequesterReply, assignee)]
        );
        // A note: the assignee when someone else wrote it; the desk's own notes go to nobody.
        assert_eq!(
            to(for_comment(&comment(true, Some(colleague)), true, &ticket)),
            [(Notification::InternalNote, assignee)]
        );
        assert!(for_comment(&comment(true, Some(assignee)), true, &ticket).is_empty());
        assert!(for_comment(&comment(true, None), false, &ticket).is_empty());
        ticket.assignee_id = None;
        assert!(for_comment(&comment(false, Some(requester)), false, &ticket).is_empty());
    }
}
