//! Row decoding shared by both dialects: each driver implements [`RowAccess`], and every
//! record is decoded once, here.

use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, Priority, Urgency};
use ferrodesk_core::ticket::{Channel, PendingReason, Status, SupportLevel, Ticket, TicketType};
use ferrodesk_core::user::{EmailAddress, Role, User};
use uuid::Uuid;

use crate::records::*;
use crate::{StoreError, StoreResult, from_micros};

/// Typed column access by name; implemented for rusqlite and tokio-postgres rows.
pub(crate) trait RowAccess {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn boolean(&self, col: &str) -> StoreResult<bool>;
    fn uuid(&self, col: &str) -> StoreResult<Uuid>;
    fn opt_uuid(&self, col: &str) -> StoreResult<Option<Uuid>>;
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>>;
}

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("column {col}: {e}"))
}

fn parse_enum<T>(
    row: &impl RowAccess,
    col: &str,
    parse: fn(&str, &str) -> Result<T, ferrodesk_core::DomainError>,
) -> StoreResult<T> {
    let v = row.text(col)?;
    parse(&v, col).map_err(|e| corrupt(col, e))
}

fn json_list<T: serde::de::DeserializeOwned>(row: &impl RowAccess, col: &str) -> StoreResult<Vec<T>> {
    serde_json::from_str(&row.text(col)?).map_err(|e| corrupt(col, e))
}

fn opt_instant(row: &impl RowAccess, col: &str) -> StoreResult<Option<jiff::Timestamp>> {
    row.opt_int(col)?.map(from_micros).transpose()
}

fn instant(row: &impl RowAccess, col: &str) -> StoreResult<jiff::Timestamp> {
    from_micros(row.int(col)?)
}

pub(crate) const TICKET_COLUMNS: &str = "t.number, t.id, t.ticket_type, t.subject, t.description, \
    t.requester_id, t.organisation_id, t.category_id, t.impact, t.urgency, t.priority, \
    t.priority_overridden, t.status, t.pending_reason, t.group_id, t.assignee_id, t.support_level, \
    t.channel, t.tags, t.watchers, t.custom_fields, t.resolution_note, t.resolution_code, \
    t.merged_into, t.version, t.created_at, t.updated_at, t.first_response_at, t.resolved_at, \
    t.closed_at, t.last_requester_activity_at, t.last_agent_activity_at";

pub(crate) fn ticket(row: &impl RowAccess) -> StoreResult<Ticket> {
    let rank = row.int("priority")?;
    let priority = i16::try_from(rank).ok().and_then(Priority::from_rank).ok_or_else(|| corrupt("priority", rank))?;
    Ok(Ticket {
        id: TicketId(row.uuid("id")?),
        number: TicketNumber(row.int("number")?),
        ticket_type: parse_enum(row, "ticket_type", TicketType::parse)?,
        subject: row.text("subject")?,
        description: row.text("description")?,
        requester_id: UserId(row.uuid("requester_id")?),
        organisation_id: row.opt_uuid("organisation_id")?.map(OrganisationId),
        category_id: row.opt_uuid("category_id")?.map(CategoryId),
        impact: parse_enum(row, "impact", Impact::parse)?,
        urgency: parse_enum(row, "urgency", Urgency::parse)?,
        priority,
        priority_overridden: row.boolean("priority_overridden")?,
        status: parse_enum(row, "status", Status::parse)?,
        pending_reason: row
            .opt_text("pending_reason")?
            .map(|v| PendingReason::parse(&v, "pending_reason").map_err(|e| corrupt("pending_reason", e)))
            .transpose()?,
        group_id: row.opt_uuid("group_id")?.map(GroupId),
        assignee_id: row.opt_uuid("assignee_id")?.map(UserId),
        support_level: parse_enum(row, "support_level", SupportLevel::parse)?,
        channel: parse_enum(row, "channel", Channel::parse)?,
        tags: json_list(row, "tags")?,
        watchers: json_list(row, "watchers")?,
        custom_fields: json_object(&row.text("custom_fields")?),
        resolution_note: row.opt_text("resolution_note")?,
        resolution_code: row.opt_text("resolution_code")?,
        merged_into: row.opt_uuid("merged_into")?.map(TicketId),
        version: row.int("version")?,
        created_at: instant(row, "created_at")?,
        updated_at: instant(row, "updated_at")?,
        first_response_at: opt_instant(row, "first_response_at")?,
        resolved_at: opt_instant(row, "resolved_at")?,
        closed_at: opt_instant(row, "closed_at")?,
        last_requester_activity_at: opt_instant(row, "last_requester_activity_at")?,
        last_agent_activity_at: opt_instant(row, "last_agent_activity_at")?,
    })
}

pub(crate) const USER_COLUMNS: &str = "id, email, name, role, organisation_id, active, created_at";

pub(crate) fn user(row: &impl RowAccess) -> StoreResult<User> {
    Ok(User {
        id: UserId(row.uuid("id")?),
        email: EmailAddress::parse(&row.text("email")?).map_err(|e| corrupt("email", e))?,
        name: row.text("name")?,
        role: parse_enum(row, "role", Role::parse)?,
        organisation_id: row.opt_uuid("organisation_id")?.map(OrganisationId),
        active: row.boolean("active")?,
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn token(row: &impl RowAccess) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: TokenId(row.uuid("id")?),
        user_id: UserId(row.uuid("user_id")?),
        name: row.text("name")?,
        created_at: instant(row, "created_at")?,
        last_used_at: opt_instant(row, "last_used_at")?,
        revoked_at: opt_instant(row, "revoked_at")?,
    })
}

pub(crate) fn organisation(row: &impl RowAccess) -> StoreResult<Organisation> {
    Ok(Organisation {
        id: OrganisationId(row.uuid("id")?),
        name: row.text("name")?,
        shares_tickets: row.boolean("shares_tickets")?,
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn group(row: &impl RowAccess) -> StoreResult<Group> {
    Ok(Group {
        id: GroupId(row.uuid("id")?),
        name: row.text("name")?,
        support_level: parse_enum(row, "support_level", SupportLevel::parse)?,
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn category(row: &impl RowAccess) -> StoreResult<Category> {
    Ok(Category {
        id: CategoryId(row.uuid("id")?),
        parent_id: row.opt_uuid("parent_id")?.map(CategoryId),
        name: row.text("name")?,
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn comment(row: &impl RowAccess) -> StoreResult<Comment> {
    Ok(Comment {
        id: CommentId(row.uuid("id")?),
        ticket_id: TicketId(row.uuid("ticket_id")?),
        author_id: row.opt_uuid("author_id")?.map(UserId),
        body: row.text("body")?,
        internal: row.boolean("internal")?,
        created_at: instant(row, "created_at")?,
    })
}

/// A comment's text and whether it is internal (`query::comment_texts`), for a search entry.
pub(crate) fn comment_text(row: &impl RowAccess) -> StoreResult<(String, bool)> {
    Ok((row.text("body")?, row.boolean("internal")?))
}

pub(crate) fn history_entry(row: &impl RowAccess) -> StoreResult<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.int("id")?,
        ticket_id: TicketId(row.uuid("ticket_id")?),
        actor_id: row.opt_uuid("actor_id")?.map(UserId),
        at: instant(row, "at")?,
        field: row.text("field")?,
        old_value: row.opt_text("old_value")?,
        new_value: row.opt_text("new_value")?,
    })
}

/// (role, organisation, organisation shares tickets) of an active user.
pub(crate) fn actor(row: &impl RowAccess) -> StoreResult<(Role, Option<OrganisationId>, bool)> {
    Ok((
        parse_enum(row, "role", Role::parse)?,
        row.opt_uuid("organisation_id")?.map(OrganisationId),
        row.boolean("shares_tickets")?,
    ))
}

pub(crate) fn session(row: &impl RowAccess) -> StoreResult<Session> {
    Ok(Session {
        id: SessionId(row.uuid("id")?),
        user_id: UserId(row.uuid("user_id")?),
        csrf_token: row.text("csrf_token")?,
        created_at: instant(row, "created_at")?,
        last_seen_at: instant(row, "last_seen_at")?,
        expires_at: instant(row, "expires_at")?,
    })
}

pub(crate) fn custom_field(row: &impl RowAccess) -> StoreResult<ferrodesk_core::custom_field::CustomFieldDef> {
    use ferrodesk_core::custom_field::{CustomFieldDef, FieldKind};
    Ok(CustomFieldDef {
        id: CustomFieldId(row.uuid("id")?),
        key: row.text("key")?,
        label: row.text("label")?,
        kind: parse_enum(row, "kind", FieldKind::parse)?,
        options: json_list(row, "options")?,
        required: row.boolean("required")?,
        ticket_types: json_list(row, "ticket_types")?,
    })
}

pub(crate) fn time_entry(row: &impl RowAccess) -> StoreResult<TimeEntry> {
    Ok(TimeEntry {
        id: TimeEntryId(row.uuid("id")?),
        ticket_id: TicketId(row.uuid("ticket_id")?),
        user_id: UserId(row.uuid("user_id")?),
        minutes: row.int("minutes")?,
        note: row.text("note")?,
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn attachment(row: &impl RowAccess) -> StoreResult<Attachment> {
    Ok(Attachment {
        id: AttachmentId(row.uuid("id")?),
        ticket_id: TicketId(row.uuid("ticket_id")?),
        comment_id: row.opt_uuid("comment_id")?.map(CommentId),
        internal: row.boolean("internal")?,
        filename: row.text("filename")?,
        content_type: row.text("content_type")?,
        size: row.int("size")?,
        sha256: row.text("sha256")?,
        uploaded_by: row.opt_uuid("uploaded_by")?.map(UserId),
        created_at: instant(row, "created_at")?,
    })
}

pub(crate) fn status_count(row: &impl RowAccess) -> StoreResult<(Status, i64)> {
    Ok((parse_enum(row, "status", Status::parse)?, row.int("n")?))
}

pub(crate) fn saved_filter(row: &impl RowAccess) -> StoreResult<SavedFilter> {
    Ok(SavedFilter {
        id: row.uuid("id")?,
        user_id: UserId(row.uuid("user_id")?),
        name: row.text("name")?,
        query: row.text("query")?,
        created_at: instant(row, "created_at")?,
    })
}

/// A `ticket_links` row: (ticket, linked ticket, stored kind).
pub(crate) fn link(row: &impl RowAccess) -> StoreResult<(Uuid, Uuid, String)> {
    Ok((row.uuid("ticket_id")?, row.uuid("linked_id")?, row.text("kind")?))
}

pub(crate) const MAILBOX_COLUMNS: &str = "id, name, address, default_group_id, default_category_id, default_type, \
    active, created_at, updated_at, imap_host, imap_port, imap_security, imap_username, imap_password, imap_folder, \
    poll_seconds, after_processing, move_to, imap_uidvalidity, imap_last_uid, last_poll_at, last_error, \
    max_message_bytes, local_senders_as";

pub(crate) fn mailbox(row: &impl RowAccess) -> StoreResult<Mailbox> {
    Ok(Mailbox {
        id: row.uuid("id")?,
        name: row.text("name")?,
        address: EmailAddress::parse(&row.text("address")?).map_err(|e| corrupt("address", e))?,
        default_group_id: row.opt_uuid("default_group_id")?.map(GroupId),
        default_category_id: row.opt_uuid("default_category_id")?.map(CategoryId),
        default_type: parse_enum(row, "default_type", TicketType::parse)?,
        active: row.boolean("active")?,
        max_message_bytes: row.int("max_message_bytes")?,
        local_senders_as: row.opt_uuid("local_senders_as")?.map(UserId),
        imap: match row.opt_text("imap_host")? {
            Some(host) => Some(ferrodesk_core::mail::ImapSettings {
                host,
                port: u16::try_from(row.opt_int("imap_port")?.unwrap_or(993)).map_err(|e| corrupt("imap_port", e))?,
                security: parse_enum(row, "imap_security", ferrodesk_core::mail::ImapSecurity::parse)?,
                username: row.opt_text("imap_username")?.unwrap_or_default(),
                password_sealed: row.opt_text("imap_password")?,
                folder: row.text("imap_folder")?,
                poll_seconds: row.int("poll_seconds")?,
                after: parse_enum(row, "after_processing", ferrodesk_core::mail::AfterProcessing::parse)?,
                move_to: row.opt_text("move_to")?,
            }),
            None => None,
        },
        imap_state: ferrodesk_core::mail::ImapState {
            uidvalidity: row.opt_int("imap_uidvalidity")?,
            last_uid: row.opt_int("imap_last_uid")?,
            last_poll_at: opt_instant(row, "last_poll_at")?,
            last_error: row.opt_text("last_error")?,
        },
        created_at: instant(row, "created_at")?,
        updated_at: instant(row, "updated_at")?,
    })
}

pub(crate) const INBOUND_COLUMNS: &str = "id, mailbox_id, source, received_at, size, message_id, from_address, \
    subject, status, automation, error, ticket_id, comment_id, duplicate_of, attempts, processed_at, held_note_id, \
    decided_by, decided_at";

pub(crate) fn inbound(row: &impl RowAccess) -> StoreResult<InboundMessage> {
    use ferrodesk_core::mail::{InboundSource, InboundStatus};
    Ok(InboundMessage {
        id: row.uuid("id")?,
        mailbox_id: row.opt_uuid("mailbox_id")?,
        source: parse_enum(row, "source", InboundSource::parse)?,
        received_at: instant(row, "received_at")?,
        size: row.int("size")?,
        message_id: row.opt_text("message_id")?,
        from_address: row.opt_text("from_address")?,
        subject: row.text("subject")?,
        status: parse_enum(row, "status", InboundStatus::parse)?,
        automation: row.opt_text("automation")?,
        error: row.opt_text("error")?,
        ticket_id: row.opt_uuid("ticket_id")?.map(TicketId),
        comment_id: row.opt_uuid("comment_id")?.map(CommentId),
        duplicate_of: row.opt_uuid("duplicate_of")?,
        attempts: row.int("attempts")?,
        processed_at: opt_instant(row, "processed_at")?,
        held_note_id: row.opt_uuid("held_note_id")?.map(CommentId),
        decided_by: row.opt_uuid("decided_by")?.map(UserId),
        decided_at: opt_instant(row, "decided_at")?,
    })
}

pub(crate) fn job(row: &impl RowAccess) -> StoreResult<Job> {
    let payload = row.text("payload")?;
    Ok(Job {
        id: row.uuid("id")?,
        kind: row.text("kind")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("payload", e))?,
        topic: row.opt_text("topic")?,
        ticket_id: row.opt_uuid("ticket_id")?.map(TicketId),
        state: parse_enum(row, "state", ferrodesk_core::jobs::JobState::parse)?,
        run_at: instant(row, "run_at")?,
        attempts: row.int("attempts")?,
        max_attempts: row.int("max_attempts")?,
        last_error: row.opt_text("last_error")?,
        created_at: instant(row, "created_at")?,
    })
}
