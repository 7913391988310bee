//! Ferrodesk's persistence. [`Store`] is shaped by use cases; [`sqlite::SqliteStore`] and
//! [`postgres::PgStore`] implement it with hand-written SQL. Handlers never contain SQL.
//!
//! Every write that changes a ticket goes through [`Store::save_ticket`], which applies the new
//! ticket row, its history lines and an optional comment atomically, guarded by the version the
//! caller read (optimistic concurrency).

mod mail;
mod migrate;
pub mod postgres;
mod query;
mod records;
mod row;
pub mod sqlite;
mod ticket_work;

use std::sync::Arc;

use async_trait::async_trait;
use ferrodesk_core::access::{Actor, TicketScope};
use ferrodesk_core::custom_field::CustomFieldDef;
use ferrodesk_core::ids::*;
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_core::priority::PriorityMatrix;
use ferrodesk_core::ticket::{Ticket, TicketDraft};
use ferrodesk_core::user::{EmailAddress, User};
use jiff::Timestamp;

pub use migrate::{MIGRATION_NAMES, Migration};
pub use records::*;

/// What can go wrong in the store. Internal causes are logged by the caller, never shown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (`what` names it, e.g. "email").
    #[error("{what} already exists")]
    Duplicate { what: String },
    /// The ticket changed since the caller read it.
    #[error("the ticket was changed by someone else (now version {current})")]
    Conflict { current: i64 },
    /// A referenced row does not exist (e.g. an unknown group id).
    #[error("{what} does not exist")]
    MissingReference { what: String },
    #[error("not found")]
    NotFound,
    /// The database gave up on a transaction because of contention (deadlock, serialization);
    /// nothing was written and the request can be retried.
    #[error("the database is busy")]
    Busy,
    /// The disk (or the database's space) is full; nothing was written.
    #[error("the disk is full")]
    Full,
    /// The user's upload quota would be exceeded.
    #[error("upload quota exceeded")]
    QuotaExceeded,
    /// A value is refused by a rule that needs the stored data (e.g. an address that imitates
    /// an existing user's).
    #[error(transparent)]
    Invalid(#[from] ferrodesk_core::error::DomainError),
    /// The change breaks a rule only the store can check atomically (e.g. link structure).
    #[error("{0}")]
    Refused(String),
    /// Too many attempts; try again at `until` (microseconds). Used inside the store.
    #[error("too many attempts")]
    Throttled { until: i64 },
    /// The schema on disk cannot be used by this binary; start-up must stop.
    #[error("{0}")]
    Schema(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The persistence operations Ferrodesk needs, one per use case.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which dialect this is ("sqlite" or "postgres").
    fn dialect(&self) -> &'static str;
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Tells every other server process on this database (PostgreSQL `NOTIFY`). SQLite has one
    /// process per database, so there is nobody to tell.
    async fn announce(&self, _payload: &str) -> StoreResult<()> {
        Ok(())
    }
    /// What other processes announce, as it arrives (PostgreSQL `LISTEN`, reconnecting when
    /// the connection drops); `None` where no other process can exist (SQLite).
    async fn announcements(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<String>>> {
        Ok(None)
    }
    /// Applies pending migrations; returns the names applied now. Refuses a changed or
    /// unknown (newer) migration without writing anything.
    async fn migrate(&self) -> StoreResult<Vec<String>>;

    // Settings
    async fn settings(&self) -> StoreResult<Settings>;
    /// What opening a ticket reads: the settings (its priority matrix) and the custom field
    /// definitions (its values are checked against them). One read where the backend can do
    /// both at once (SQLite: one hop to a reader thread instead of two, on every create).
    async fn ticket_rules(&self) -> StoreResult<(Settings, Vec<CustomFieldDef>)> {
        tokio::try_join!(self.settings(), self.custom_fields())
    }
    async fn save_settings(&self, settings: &Settings) -> StoreResult<()>;

    // People
    /// Stores an account as given; new accounts from people (API, desk, CLI, mail, import) go
    /// through [`Store::create_account`].
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;
    /// Creates an account for a new address, refusing one that could pass for another:
    /// invisible or look-alike characters, mixed scripts, or a look-alike of an existing
    /// user's address (`Invalid`, on the `email` field).
    async fn create_account(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        ferrodesk_core::user::vet_new_address(&user.email)?;
        if let Some(original) = ferrodesk_core::user::look_alike_of(&user.email)
            && self.user_by_email(&original).await?.is_some()
        {
            return Err(ferrodesk_core::error::DomainError::invalid(
                "email",
                format!("looks like the existing address {original}; type the address plainly"),
            )
            .into());
        }
        self.create_user(user, password_hash).await
    }
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Sets a password; any outstanding e-mailed reset of the user becomes void.
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()>;
    /// Issues a reset (voiding the user's earlier ones) and queues its mail, atomically.
    async fn create_password_reset(&self, reset: &PasswordReset, mail: NewJob) -> StoreResult<()>;
    /// Uses a reset: when `token_hash` names a live one, sets the password, voids every other
    /// reset of the user and ends all their sessions, atomically; returns the user.
    async fn use_password_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserId>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user and their password hash, for login.
    async fn user_by_email(&self, email: &EmailAddress) -> StoreResult<Option<(User, Option<String>)>>;
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// The users with these ids (in no particular order; unknown ids are skipped).
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// Everything access decisions need about an active user; `None` if missing or inactive.
    async fn actor(&self, id: UserId) -> StoreResult<Option<Actor>>;

    // API tokens
    async fn create_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()>;
    /// The rights of the active owner of an unrevoked token with this hash; records its use.
    async fn token_actor(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Actor>>;
    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>>;
    /// Every user's tokens, newest first (for admins).
    async fn list_all_tokens(&self, limit: u32) -> StoreResult<Vec<ApiToken>>;
    /// Revokes a token of this user; false when there was no such live token.
    async fn revoke_token(&self, user: UserId, id: TokenId, now: Timestamp) -> StoreResult<bool>;

    // Sessions and login throttling
    async fn create_session(&self, session: &Session, secret_hash: &str) -> StoreResult<()>;
    /// The live session with this secret hash (not expired, not idle longer than `idle`) with
    /// its owner, who must be active; records activity at most once a minute.
    async fn signed_in(
        &self,
        secret_hash: &str,
        now: Timestamp,
        idle: jiff::SignedDuration,
    ) -> StoreResult<Option<SignedIn>>;
    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<Session>>;
    /// Ends one session of a user; false when there was none.
    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool>;
    /// Ends every session of a user except `keep`; returns how many ended.
    async fn delete_sessions(&self, user: UserId, keep: Option<SessionId>) -> StoreResult<u64>;
    /// Counts a login attempt against every rule, atomically: all counted, or none when any key
    /// is at its limit — then returns when the earliest blocking window ends.
    async fn admit_login(
        &self,
        rules: &[ThrottleRule],
        now: Timestamp,
        window: jiff::SignedDuration,
    ) -> StoreResult<Option<Timestamp>>;
    /// Forgets a key's attempts (after a successful login).
    async fn clear_login_attempts(&self, key: &str) -> StoreResult<()>;

    // Organisation structure
    async fn create_organisation(&self, org: &Organisation) -> StoreResult<()>;
    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>>;
    async fn create_group(&self, group: &Group) -> StoreResult<()>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<bool>;
    async fn group_members(&self, group: GroupId) -> StoreResult<Vec<UserId>>;
    async fn create_category(&self, category: &Category) -> StoreResult<()>;
    async fn list_categories(&self) -> StoreResult<Vec<Category>>;
    /// Saves a changed organisation, group or category; `NotFound` when it does not exist.
    async fn update_organisation(&self, org: &Organisation) -> StoreResult<()>;
    async fn update_group(&self, group: &Group) -> StoreResult<()>;
    async fn update_category(&self, category: &Category) -> StoreResult<()>;

    // Tickets
    /// Opens a ticket: allocates the next number, stores it with its search entry and a
    /// "created" history line, atomically.
    async fn create_ticket(
        &self,
        draft: TicketDraft,
        matrix: &PriorityMatrix,
        actor: Option<UserId>,
        now: Timestamp,
        idempotency: Option<Idempotency>,
    ) -> StoreResult<Ticket>;
    /// Stores a batch of imported tickets in one transaction (all or none), numbering them in
    /// order; returns their numbers.
    async fn import_tickets(&self, batch: Vec<ImportedTicket>) -> StoreResult<Vec<TicketNumber>>;
    /// Before a first import: when there are no tickets yet, sets aside the secondary indexes of
    /// the ticket tables (remembering their definitions) so the rows go in without maintaining
    /// them. Returns how many were set aside (0: tickets exist, or the backend keeps them).
    async fn set_aside_ticket_indexes(&self) -> StoreResult<usize>;
    /// Builds every index set aside, e.g. after an import, or one that was interrupted (every
    /// migrate does this). Returns how many were built.
    async fn rebuild_set_aside_indexes(&self) -> StoreResult<usize>;
    /// Set up for writing in bulk (`true`, an import) or for serving (`false`): on SQLite the
    /// writer's page cache, which at a million tickets must hold the indexes being filled, and
    /// how the search index merges its segments (whole levels at once while importing; the
    /// next migrate restores the serving way if an import dies).
    async fn bulk_writes(&self, on: bool) -> StoreResult<()>;
    /// One step (about `pages` pages of work, in its own transaction, so writes of a running
    /// server go on between steps) of merging the search index into one segment; `true` while
    /// there is more to do. SQLite's index is a set of segments that every write merges a
    /// little; one segment after a large import spares new tickets and searches that work.
    /// PostgreSQL maintains its indexes itself: always `false`.
    async fn compact_search_index(&self, pages: u32) -> StoreResult<bool>;
    /// Folds each view counter's appended deltas into one row (PostgreSQL, migration 0021; the
    /// server calls it every second, any number of servers at once) and says how many summed rows
    /// it wrote.
    /// SQLite updates its counters in place: always 0.
    async fn compact_view_counters(&self) -> StoreResult<u64>;
    /// Moves the search index's pending entries into the index proper and says how many pages
    /// of them it moved. PostgreSQL's GIN index collects new entries in a pending list, and the
    /// write that finds the list over 4 MB merges all of it inside its own request (0.3–2.5 s
    /// under the comment load at 1M tickets); the server calls this every second so that no
    /// request does. SQLite merges its own way (`compact_search_index`): always 0.
    async fn merge_pending_search_entries(&self) -> StoreResult<u64>;
    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>>;
    async fn ticket_by_number(&self, number: TicketNumber) -> StoreResult<Option<Ticket>>;
    /// Stores `change.ticket` if the stored version is still `change.expected_version`, with
    /// its history and optional comment; returns the ticket with its new version.
    async fn save_ticket(&self, change: TicketChange) -> StoreResult<Ticket>;
    /// Adds a reply or note to the ticket as it is now (read and changed in one transaction,
    /// with `Ticket::note_comment`), so that concurrent changes never refuse a comment; returns
    /// the ticket with its new version.
    async fn add_comment(
        &self,
        comment: Comment,
        author_is_staff: bool,
        idempotency: Option<Idempotency>,
        jobs: Vec<NewJob>,
    ) -> StoreResult<Ticket>;
    /// One page of tickets within `scope`, filtered and sorted by `query`.
    async fn list_tickets(&self, query: &TicketQuery, scope: &TicketScope) -> StoreResult<Vec<Ticket>>;
    /// How many tickets within `scope` match `query` (its page and sort are ignored).
    async fn count_tickets(&self, query: &TicketQuery, scope: &TicketScope) -> StoreResult<i64>;
    /// `count_tickets` of each query, in order (a queue page's view counts). Concurrently by
    /// default (PostgreSQL: each on its own backend); SQLite runs them in one hop to a reader,
    /// where each count is a fraction of a millisecond and each hop costs thread switches.
    async fn count_tickets_each(&self, queries: &[TicketQuery], scope: &TicketScope) -> StoreResult<Vec<i64>> {
        futures_util::future::try_join_all(queries.iter().map(|q| self.count_tickets(q, scope))).await
    }
    async fn comments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Comment>>;
    /// A ticket with all its comments, internal notes included (the caller decides who sees
    /// them), in one read (SQLite: one hop to a reader, one snapshot; PostgreSQL: both
    /// statements in one round trip). The ticket is never read after its comments: a comment
    /// added in between can only make the version shown stale (a client sending it back gets
    /// 412 and reads again), never newer than the comments shown.
    async fn ticket_with_comments(&self, ticket: TicketRef) -> StoreResult<Option<(Ticket, Vec<Comment>)>>;
    /// Merges: saves both changes (each version-guarded) and moves the source's conversation
    /// to the target, atomically. Returns (source, target) as stored.
    async fn merge_tickets(&self, source: TicketChange, target: TicketChange) -> StoreResult<(Ticket, Ticket)>;
    /// Links `from` to `to` (`Parent`: `to` becomes `from`'s parent; `Child`: the reverse),
    /// refusing self-links, duplicates and anything deeper than parent → children.
    async fn link_tickets(
        &self,
        from: TicketId,
        to: TicketId,
        kind: LinkKind,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Removes any link between two tickets; false when there was none.
    async fn unlink_tickets(
        &self,
        a: TicketId,
        b: TicketId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The tickets linked to this one and how.
    async fn ticket_links(&self, ticket: TicketId) -> StoreResult<Vec<(LinkKind, Ticket)>>;
    async fn add_time_entry(&self, entry: &TimeEntry) -> StoreResult<()>;
    async fn time_entries(&self, ticket: TicketId) -> StoreResult<Vec<TimeEntry>>;
    /// A live idempotency key of this user.
    async fn idempotent_target(&self, user: UserId, key: &str, now: Timestamp) -> StoreResult<Option<IdempotentHit>>;

    // Attachments
    /// Stores the file (once per content) and its attachment row, unless the uploader's bytes
    /// within the quota window would pass the quota — checked atomically.
    async fn add_attachment(&self, attachment: &Attachment, data: Vec<u8>, quota: UploadQuota) -> StoreResult<()>;
    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>>;
    async fn attachments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Attachment>>;
    async fn blob(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>>;

    // Saved filters
    async fn create_saved_filter(&self, filter: &SavedFilter) -> StoreResult<()>;
    async fn saved_filters(&self, user: UserId) -> StoreResult<Vec<SavedFilter>>;
    /// Deletes one of the user's filters; false when there was none.
    async fn delete_saved_filter(&self, user: UserId, id: uuid::Uuid) -> StoreResult<bool>;

    // Custom fields
    async fn create_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()>;
    async fn custom_fields(&self) -> StoreResult<Vec<CustomFieldDef>>;
    /// Saves a changed definition (key and kind never change).
    async fn update_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()>;
    async fn history(&self, ticket: TicketId) -> StoreResult<Vec<HistoryEntry>>;

    // E-mail
    async fn create_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()>;
    /// Saves a changed mailbox; `NotFound` when it does not exist.
    async fn update_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()>;
    async fn mailboxes(&self) -> StoreResult<Vec<Mailbox>>;
    /// Records how the IMAP poller left a mailbox (UIDVALIDITY, last UID stored, last poll).
    async fn set_imap_state(&self, mailbox: uuid::Uuid, state: &ferrodesk_core::mail::ImapState) -> StoreResult<()>;
    /// Stores a raw message before anything else happens. The first copy of a message (by
    /// `dedup_key`) is stored `pending`; later copies are stored as `duplicate` of it.
    async fn receive_inbound(&self, message: NewInbound) -> StoreResult<Received>;
    /// `receive_inbound` for several messages in one transaction (in order).
    async fn receive_inbound_batch(&self, messages: Vec<NewInbound>) -> StoreResult<Vec<Received>>;
    async fn inbound(&self, id: uuid::Uuid) -> StoreResult<Option<InboundMessage>>;
    async fn inbound_raw(&self, id: uuid::Uuid) -> StoreResult<Option<Vec<u8>>>;
    /// Newest first; `before` (receipt time, id of the last message seen) pages.
    async fn list_inbound(
        &self,
        status: Option<InboundStatus>,
        before: Option<(Timestamp, uuid::Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>>;
    /// The messages that went to a ticket (opened it or were added to it), oldest first.
    async fn ticket_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>>;
    /// Messages stored before `received_before` but never processed (a crash or a database
    /// failure in between), oldest first.
    async fn pending_inbound(&self, limit: u32, received_before: Timestamp) -> StoreResult<Vec<InboundMessage>>;
    /// Applies a processed message in one transaction (ticket or comment, files, thread ids,
    /// bounces, jobs, the message's new state) if it is still pending or quarantined (checked
    /// first, under a lock), else writes nothing and answers `AlreadySettled`.
    async fn settle_inbound(&self, outcome: InboundOutcome) -> StoreResult<Settled>;
    /// Moves a message to `status` (with `error`) if it is in one of `from`; false otherwise.
    async fn set_inbound_status(
        &self,
        id: uuid::Uuid,
        status: InboundStatus,
        error: Option<String>,
        from: &[InboundStatus],
    ) -> StoreResult<bool>;
    /// Discards a held message (`by` decided); false when it is no longer held.
    async fn discard_held(&self, id: uuid::Uuid, by: UserId, at: Timestamp) -> StoreResult<bool>;
    /// The messages held (as internal notes) on a ticket, decided or not, oldest first.
    async fn held_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>>;
    /// The ticket the nearest known of these Message-IDs belongs to (after merges).
    async fn thread_ticket(&self, message_ids: &[String]) -> StoreResult<Option<TicketId>>;
    /// The instance-wide secret `name`; the first caller's `fresh` value becomes it, so every
    /// process on this database gets the same.
    async fn instance_secret(&self, name: &str, fresh: Vec<u8>) -> StoreResult<Vec<u8>>;
    /// How often mail to this address bounced.
    async fn bounce_count(&self, address: &str) -> StoreResult<i64>;
    /// The Message-IDs known on a ticket, oldest first (at most 20).
    async fn thread_ids(&self, ticket: TicketId) -> StoreResult<Vec<String>>;
    /// Remembers that a Message-ID (e.g. of mail we sent) belongs to a ticket.
    async fn remember_thread_id(&self, message_id: &str, ticket: TicketId, at: Timestamp) -> StoreResult<()>;
    /// The mailbox the ticket's first inbound message came through.
    async fn ticket_mailbox(&self, ticket: TicketId) -> StoreResult<Option<Mailbox>>;

    // Jobs
    /// Queues jobs outside any ticket change, as queued at `now` (what topic rate limits count).
    async fn enqueue_jobs(&self, jobs: Vec<NewJob>, now: Timestamp) -> StoreResult<()>;
    /// Leases up to `limit` due jobs until `now + lease` and counts the attempt; a job whose
    /// worker died is claimable again once its lease ends.
    async fn claim_jobs(&self, now: Timestamp, lease: jiff::SignedDuration, limit: u32) -> StoreResult<Vec<Job>>;
    async fn finish_job(&self, id: uuid::Uuid, outcome: JobOutcome, now: Timestamp) -> StoreResult<()>;
    /// How many jobs on `topic` were queued since `since` (rate limits).
    async fn jobs_on_topic_since(&self, topic: &str, since: Timestamp) -> StoreResult<i64>;
    async fn ticket_jobs(&self, ticket: TicketId) -> StoreResult<Vec<Job>>;
    async fn job(&self, id: uuid::Uuid) -> StoreResult<Option<Job>>;
    /// How many tickets are in each status.
    async fn ticket_counts(&self) -> StoreResult<Vec<(ferrodesk_core::ticket::Status, i64)>>;
}

/// Opens the store a database URL names: `sqlite://PATH` (or a plain path) or `postgres://…`.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(sqlite::SqliteStore::open(std::path::Path::new(path)).await?))
    }
}

/// The change a comment makes to `current` (status, activity times), ready to save with the
/// jobs (mail) it causes.
pub(crate) fn comment_change(
    current: Ticket,
    comment: Comment,
    author_is_staff: bool,
    idempotency: Option<Idempotency>,
    jobs: Vec<NewJob>,
) -> StoreResult<TicketChange> {
    let mut next = current.clone();
    let changes = next
        .note_comment(author_is_staff, comment.internal, comment.created_at)
        .map_err(|e| StoreError::Refused(e.to_string()))?;
    Ok(TicketChange {
        ticket: next,
        expected_version: current.version,
        actor: comment.author_id,
        changes,
        at: comment.created_at,
        comment: Some(comment),
        idempotency,
        jobs,
    })
}

/// A mailed comment's change: the comment, and the people copied on it as new watchers.
pub(crate) fn inbound_comment_change(
    current: Ticket,
    comment: Comment,
    author_is_staff: bool,
    watchers: &[UserId],
) -> StoreResult<TicketChange> {
    let mut change = comment_change(current, comment, author_is_staff, None, vec![])?;
    if let Some(added) = change.ticket.add_watchers(watchers) {
        change.changes.push(added);
    }
    Ok(change)
}

/// The ticket id a thread lookup chose: the first of `ids` (nearest first) that was found.
pub(crate) fn nearest_thread(ids: &[String], found: Vec<(String, uuid::Uuid)>) -> Option<TicketId> {
    ids.iter().find_map(|id| found.iter().find(|(m, _)| m == id).map(|(_, t)| TicketId(*t)))
}

/// Converts an instant to stored microseconds.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn from_micros(v: i64) -> StoreResult<Timestamp> {
    Timestamp::from_microsecond(v).map_err(|e| StoreError::Database(format!("bad stored instant {v}: {e}")))
}
