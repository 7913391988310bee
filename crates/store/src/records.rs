//! Records the store reads and writes besides the core's own types.

use ferrodesk_core::ids::*;
use ferrodesk_core::mail::{InboundSource, InboundStatus};
use ferrodesk_core::priority::{Priority, PriorityMatrix};
use ferrodesk_core::ticket::{FieldChange, Status, SupportLevel, Ticket, TicketDraft, TicketType};
use ferrodesk_core::user::{EmailAddress, Role};
use jiff::Timestamp;
use serde_json::Value;

/// Instance-wide settings, stored as key/value rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub priority_matrix: PriorityMatrix,
    pub agents_see_all: bool,
    /// Which sender domains may open tickets by mail.
    pub mail_senders: ferrodesk_core::mail::SenderPolicy,
    /// Whose `Authentication-Results` are believed.
    pub mail_trust: ferrodesk_core::mail::MailTrust,
    /// Notifications an admin switched off (by name, e.g. "received").
    pub disabled_notifications: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: OrganisationId,
    pub name: String,
    /// Members may see each other's tickets.
    pub shares_tickets: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub support_level: SupportLevel,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub name: String,
    pub created_at: Timestamp,
}

/// A personal API token's public part (the secret is only ever shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A public reply or internal note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author_id: Option<UserId>,
    pub body: String,
    pub internal: bool,
    pub created_at: Timestamp,
}

/// One immutable history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub ticket_id: TicketId,
    pub actor_id: Option<UserId>,
    pub at: Timestamp,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// A ticket change to persist atomically.
#[derive(Debug, Clone)]
pub struct TicketChange {
    /// The ticket as it should be stored (its `version` is ignored: the store increments).
    pub ticket: Ticket,
    pub expected_version: i64,
    pub actor: Option<UserId>,
    pub changes: Vec<FieldChange>,
    pub comment: Option<Comment>,
    pub at: Timestamp,
    /// Records the comment under this key in the same transaction.
    pub idempotency: Option<Idempotency>,
    /// Jobs to queue with the change (mail it causes), in the same transaction.
    pub jobs: Vec<NewJob>,
}

#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub role: Option<Role>,
    /// Staff only (every role but requester): the people tickets can be assigned to.
    pub staff_only: bool,
    pub organisation_id: Option<OrganisationId>,
    /// Case-insensitive substring of name or email.
    pub text: Option<String>,
    pub after_email: Option<String>,
    pub limit: u32,
}

/// Sortable ticket columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketSortKey {
    Number,
    CreatedAt,
    UpdatedAt,
    Priority,
}

impl TicketSortKey {
    pub fn column(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::Priority => "priority",
        }
    }

    /// The key's value for a ticket (cursor material).
    pub fn value_of(self, t: &Ticket) -> i64 {
        match self {
            Self::Number => t.number.0,
            Self::CreatedAt => t.created_at.as_microsecond(),
            Self::UpdatedAt => t.updated_at.as_microsecond(),
            Self::Priority => i64::from(t.priority.rank()),
        }
    }
}

/// Where the previous page ended: the sort key's value and the ticket number (tie-breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketCursor {
    pub value: i64,
    pub number: i64,
}

/// Filters, sort and page of a ticket list. Empty vectors mean "any".
#[derive(Debug, Clone)]
pub struct TicketQuery {
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    pub types: Vec<TicketType>,
    pub group_id: Option<Option<GroupId>>,
    pub assignee_id: Option<Option<UserId>>,
    pub requester_id: Option<UserId>,
    pub organisation_id: Option<OrganisationId>,
    pub category_id: Option<CategoryId>,
    pub tag: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub updated_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    /// Full-text words, all required (parsed by `core::search::search_terms`).
    pub terms: Vec<String>,
    pub sort: TicketSortKey,
    pub descending: bool,
    pub after: Option<TicketCursor>,
    pub limit: u32,
}

impl Default for TicketQuery {
    fn default() -> Self {
        Self {
            statuses: vec![],
            priorities: vec![],
            types: vec![],
            group_id: None,
            assignee_id: None,
            requester_id: None,
            organisation_id: None,
            category_id: None,
            tag: None,
            created_after: None,
            created_before: None,
            updated_after: None,
            updated_before: None,
            terms: vec![],
            sort: TicketSortKey::CreatedAt,
            descending: true,
            after: None,
            limit: 50,
        }
    }
}

pub(crate) fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn json_object(text: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// A signed-in browser session. The secret lives only in the cookie; we keep its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A live session with its owner's rights and record: what every signed-in request needs first,
/// read together (`Store::signed_in`).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub actor: ferrodesk_core::access::Actor,
    pub user: crate::User,
}

/// Login throttling: how many attempts a key may make per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRule {
    pub key: String,
    pub limit: i64,
}

/// Time an agent spent on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeEntry {
    pub id: TimeEntryId,
    pub ticket_id: TicketId,
    pub user_id: UserId,
    pub minutes: i64,
    pub note: String,
    pub created_at: Timestamp,
}

/// How another ticket relates to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The other ticket is this one's parent (e.g. the major incident).
    Parent,
    /// The other ticket is this one's child.
    Child,
    Related,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Child => "child",
            Self::Related => "related",
        }
    }
}

/// A create request's `Idempotency-Key`, recorded atomically with what it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub user_id: UserId,
    pub key: String,
    pub request_hash: String,
}

/// A live idempotency key: what request made it and what it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentHit {
    pub request_hash: String,
    pub target_id: uuid::Uuid,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// A person's saved ticket filter: the filter is an API query string (`status=open&tag=vpn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFilter {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub name: String,
    pub query: String,
    pub created_at: Timestamp,
}

/// A ticket brought in from elsewhere, with its conversation. The store gives it the next
/// number (its `number` and `version` are ignored).
#[derive(Debug, Clone)]
pub struct ImportedTicket {
    pub ticket: ferrodesk_core::ticket::Ticket,
    pub comments: Vec<Comment>,
}

/// A file attached to a ticket (optionally to one of its comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub ticket_id: TicketId,
    pub comment_id: Option<CommentId>,
    /// Attached to an internal note: never shown to requesters.
    pub internal: bool,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: Option<UserId>,
    pub created_at: Timestamp,
}

/// How much one user may upload in a rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadQuota {
    pub since: Timestamp,
    pub max_bytes: i64,
}

/// A mailbox: an address people write to, with the defaults for tickets it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: uuid::Uuid,
    /// Short name used on the command line (`--mailbox NAME`).
    pub name: String,
    /// Our address: where people write and what our replies come from.
    pub address: EmailAddress,
    pub default_group_id: Option<GroupId>,
    pub default_category_id: Option<CategoryId>,
    pub default_type: TicketType,
    pub active: bool,
    /// Larger messages are kept, unread, in the quarantine, and their sender is told.
    pub max_message_bytes: i64,
    /// Mail from addresses without a dotted domain opens tickets as this user; without one it
    /// is quarantined.
    pub local_senders_as: Option<UserId>,
    /// Read over IMAP, when set (else mail arrives by relay or pipe).
    pub imap: Option<ferrodesk_core::mail::ImapSettings>,
    pub imap_state: ferrodesk_core::mail::ImapState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A raw inbound message as received, before processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInbound {
    pub id: uuid::Uuid,
    pub mailbox_id: Option<uuid::Uuid>,
    pub source: InboundSource,
    pub received_at: Timestamp,
    pub raw: bytes::Bytes,
    pub message_id: Option<String>,
    /// The Message-ID, or a hash of the whole message when it has none.
    pub dedup_key: String,
    pub from_address: Option<String>,
    pub subject: String,
}

/// What storing a raw message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New: stored as `pending`.
    Stored,
    /// Seen before: stored as `duplicate` of the first copy, whose state is given.
    Duplicate { of: uuid::Uuid, status: InboundStatus },
}

/// A stored inbound message (without its raw bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: uuid::Uuid,
    pub mailbox_id: Option<uuid::Uuid>,
    pub source: InboundSource,
    pub received_at: Timestamp,
    pub size: i64,
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    pub status: InboundStatus,
    /// "human", "generated", "auto-reply" or "bounce", once processed.
    pub automation: Option<String>,
    pub error: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub comment_id: Option<CommentId>,
    pub duplicate_of: Option<uuid::Uuid>,
    pub attempts: i64,
    pub processed_at: Option<Timestamp>,
    /// The internal note it was held as, when it proved nothing about its sender.
    pub held_note_id: Option<CommentId>,
    /// Who accepted or discarded it when it was held, and when.
    pub decided_by: Option<UserId>,
    pub decided_at: Option<Timestamp>,
}

/// What processing an inbound message does to tickets.
#[derive(Debug, Clone)]
pub enum InboundEffect {
    /// Nothing (e.g. a bounce about no ticket of ours).
    Nothing,
    /// Opens a ticket with this id.
    NewTicket { id: TicketId, draft: TicketDraft, matrix: PriorityMatrix, actor: Option<UserId> },
    /// Adds a comment to an existing ticket (to the ticket as it is then), and these people
    /// as its watchers (those copied on the mail).
    Comment { comment: Comment, author_is_staff: bool, watchers: Vec<UserId> },
}

/// What settling a processed message did.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Applied; the ticket it opened or commented on, if any.
    Applied(Option<Box<Ticket>>),
    /// Another process settled it first; nothing was written.
    AlreadySettled,
}

/// The whole result of processing one inbound message, applied in one transaction: the
/// ticket or comment, its files, the Message-IDs that now lead to the ticket, and the
/// message's new state. Refused (`Refused`) when the message is no longer pending or
/// quarantined, so two processors cannot both apply it.
#[derive(Debug, Clone)]
pub struct InboundOutcome {
    pub inbound_id: uuid::Uuid,
    pub status: InboundStatus,
    pub automation: String,
    pub effect: InboundEffect,
    pub files: Vec<(Attachment, bytes::Bytes)>,
    /// Message-IDs to remember as belonging to the ticket.
    pub thread_ids: Vec<String>,
    /// Addresses a bounce reported as failing.
    pub bounced: Vec<String>,
    /// Jobs to queue with it (e.g. the acknowledgement to the sender).
    pub jobs: Vec<NewJob>,
    /// Internal notes without an author added to the ticket after the effect (e.g. people
    /// copied on the mail who were not made watchers).
    pub notes: Vec<Comment>,
    /// The agent who accepted a held message (it is settled from `held`, not only from
    /// `pending` or `quarantined`).
    pub decided_by: Option<UserId>,
    pub at: Timestamp,
}

/// A job to run later (in the same transaction as what caused it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: uuid::Uuid,
    pub kind: String,
    pub payload: Value,
    /// What the job is about, for rate limits (e.g. "ack:ann@example.org").
    pub topic: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub run_at: Timestamp,
    pub max_attempts: i64,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: uuid::Uuid,
    pub kind: String,
    pub payload: Value,
    pub topic: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub state: ferrodesk_core::jobs::JobState,
    pub run_at: Timestamp,
    /// Attempts so far, including the one that claimed it.
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// How a claimed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Try again at `at`.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Give up (a permanent failure, or out of attempts).
    Dead {
        error: String,
    },
}

/// A password reset: the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
