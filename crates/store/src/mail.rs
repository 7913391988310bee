//! SQL for the e-mail channel, shared by both dialects: mailboxes, raw inbound messages and
//! their de-duplication keys, Message-IDs that lead to tickets, instance secrets, bounces.

use ferrodesk_core::ids::TicketId;
use ferrodesk_core::mail::InboundStatus;
use jiff::Timestamp;
use uuid::Uuid;

use crate::micros;
use crate::query::{Param, Stmt};
use crate::records::*;
use crate::row::{INBOUND_COLUMNS, MAILBOX_COLUMNS};

pub(crate) fn insert_mailbox(m: &Mailbox) -> Stmt {
    Stmt::new(
        "INSERT INTO mailboxes (id, name, address, default_group_id, default_category_id, default_type, active, \
         imap_host, imap_port, imap_security, imap_username, imap_password, imap_folder, poll_seconds, \
         after_processing, move_to, updated_at, max_message_bytes, local_senders_as, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        mailbox_params(m, Some(m.created_at)),
    )
}

/// Saves the settings (not the poller's state).
pub(crate) fn update_mailbox(m: &Mailbox) -> Stmt {
    Stmt::new(
        "UPDATE mailboxes SET name = $2, address = $3, default_group_id = $4, default_category_id = $5, \
         default_type = $6, active = $7, imap_host = $8, imap_port = $9, imap_security = $10, imap_username = $11, \
         imap_password = $12, imap_folder = $13, poll_seconds = $14, after_processing = $15, move_to = $16, \
         updated_at = $17, max_message_bytes = $18, local_senders_as = $19 WHERE id = $1",
        mailbox_params(m, None),
    )
}

fn mailbox_params(m: &Mailbox, created_at: Option<Timestamp>) -> Vec<Param> {
    let imap = m.imap.as_ref();
    let mut params = vec![
        Param::Uuid(m.id),
        Param::Text(m.name.clone()),
        Param::Text(m.address.to_string()),
        Param::opt_uuid(m.default_group_id.map(|g| g.0)),
        Param::opt_uuid(m.default_category_id.map(|c| c.0)),
        Param::Text(m.default_type.to_string()),
        Param::Bool(m.active),
        Param::opt_text(imap.map(|i| i.host.clone())),
        Param::opt_int(imap.map(|i| i64::from(i.port))),
        Param::Text(imap.map_or("tls", |i| i.security.as_str()).to_owned()),
        Param::opt_text(imap.map(|i| i.username.clone())),
        Param::opt_text(imap.and_then(|i| i.password_sealed.clone())),
        Param::Text(imap.map_or("INBOX", |i| i.folder.as_str()).to_owned()),
        Param::Int(imap.map_or(60, |i| i.poll_seconds)),
        Param::Text(imap.map_or("seen", |i| i.after.as_str()).to_owned()),
        Param::opt_text(imap.and_then(|i| i.move_to.clone())),
        Param::Int(micros(m.updated_at)),
        Param::Int(m.max_message_bytes),
        Param::opt_uuid(m.local_senders_as.map(|u| u.0)),
    ];
    if let Some(c) = created_at {
        params.push(Param::Int(micros(c)));
    }
    params
}

pub(crate) fn set_imap_state(id: Uuid, s: &ferrodesk_core::mail::ImapState) -> Stmt {
    Stmt::new(
        "UPDATE mailboxes SET imap_uidvalidity = $2, imap_last_uid = $3, last_poll_at = $4, last_error = $5 WHERE id = $1",
        vec![
            Param::Uuid(id),
            Param::opt_int(s.uidvalidity),
            Param::opt_int(s.last_uid),
            Param::opt_int(s.last_poll_at.map(micros)),
            Param::opt_text(s.last_error.clone()),
        ],
    )
}

pub(crate) fn list_mailboxes() -> Stmt {
    Stmt::new(format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY name"), vec![])
}

pub(crate) fn insert_inbound(m: &NewInbound, status: InboundStatus, duplicate_of: Option<Uuid>) -> Stmt {
    Stmt::new(
        "INSERT INTO inbound_messages (id, mailbox_id, source, received_at, size, message_id, dedup_key, \
         from_address, subject, status, duplicate_of, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)",
        vec![
            Param::Uuid(m.id),
            Param::opt_uuid(m.mailbox_id),
            Param::Text(m.source.to_string()),
            Param::Int(micros(m.received_at)),
            Param::Int(m.raw.len() as i64),
            Param::opt_text(m.message_id.clone()),
            Param::Text(m.dedup_key.clone()),
            Param::opt_text(m.from_address.clone()),
            Param::Text(m.subject.clone()),
            Param::Text(status.to_string()),
            Param::opt_uuid(duplicate_of),
        ],
    )
}

/// The message's bytes, beside its record (which changes; they never do).
pub(crate) fn insert_raw(m: &NewInbound) -> Stmt {
    Stmt::new("INSERT INTO inbound_raw (id, raw) VALUES ($1, $2)", vec![Param::Uuid(m.id), Param::Bytes(m.raw.clone())])
}

/// Claims the key for this message; affects no row when another message holds it.
pub(crate) fn claim_key(m: &NewInbound) -> Stmt {
    Stmt::new(
        "INSERT INTO inbound_keys (dedup_key, inbound_id) VALUES ($1, $2) ON CONFLICT (dedup_key) DO NOTHING",
        vec![Param::Text(m.dedup_key.clone()), Param::Uuid(m.id)],
    )
}

/// The first message that holds a key, and its state.
pub(crate) fn key_holder(key: &str) -> Stmt {
    Stmt::new(
        "SELECT m.id, m.status FROM inbound_keys k JOIN inbound_messages m ON m.id = k.inbound_id WHERE k.dedup_key = $1",
        vec![Param::Text(key.to_owned())],
    )
}

/// Marks the message as duplicate of `of` (used when the key was taken by another copy).
pub(crate) fn mark_duplicate(id: Uuid, of: Uuid) -> Stmt {
    Stmt::new(
        "UPDATE inbound_messages SET status = 'duplicate', duplicate_of = $2 WHERE id = $1",
        vec![Param::Uuid(id), Param::Uuid(of)],
    )
}

pub(crate) fn inbound(id: Uuid) -> Stmt {
    Stmt::new(format!("SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE id = $1"), vec![Param::Uuid(id)])
}

pub(crate) fn inbound_raw(id: Uuid) -> Stmt {
    Stmt::new("SELECT raw FROM inbound_raw WHERE id = $1", vec![Param::Uuid(id)])
}

pub(crate) fn ticket_inbound(ticket: TicketId) -> Stmt {
    Stmt::new(
        format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE ticket_id = $1 AND status = 'processed' \
             ORDER BY received_at, id"
        ),
        vec![Param::Uuid(ticket.0)],
    )
}

/// Newest first, optionally only one state; `before` (receipt time, id) pages: messages of
/// one batch share their receipt time, so the id breaks ties.
pub(crate) fn list_inbound(status: Option<InboundStatus>, before: Option<(Timestamp, Uuid)>, limit: u32) -> Stmt {
    let (at, id) = before.map_or((i64::MAX, Uuid::max()), |(t, id)| (micros(t), id));
    let mut params = vec![Param::Int(at), Param::Int(i64::from(limit)), Param::Uuid(id)];
    let status_filter = match status {
        Some(s) => {
            params.push(Param::Text(s.to_string()));
            "AND status = $4"
        }
        None => "",
    };
    Stmt::new(
        format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages \
             WHERE (received_at < $1 OR (received_at = $1 AND id < $3)) {status_filter} \
             ORDER BY received_at DESC, id DESC LIMIT $2"
        ),
        params,
    )
}

/// The files' contents a settled message stores (each dialect writes them its own way, first):
/// (SHA-256, bytes).
pub(crate) type Blobs = Vec<(String, bytes::Bytes)>;

/// What settling a processed message writes besides the ticket change: its files' contents,
/// then their attachment rows, the Message-IDs that now lead to the ticket, bounces; and, last,
/// the guarded state change (which affects no row when the message was settled meanwhile).
pub(crate) fn settle_statements(
    o: InboundOutcome,
    ticket: Option<TicketId>,
    comment: Option<Uuid>,
) -> (Blobs, Vec<Stmt>, Stmt) {
    let mut effects = Vec::new();
    let mut blobs = Vec::new();
    for (attachment, data) in o.files.iter().cloned() {
        blobs.push((attachment.sha256.clone(), data));
        effects.push(crate::ticket_work::insert_attachment(&attachment));
    }
    if let Some(t) = ticket {
        effects.extend(o.thread_ids.iter().map(|id| remember_thread_id(id, t, o.at)));
    }
    effects.extend(o.bounced.iter().map(|a| record_bounce(a, o.at)));
    effects.extend(o.jobs.iter().map(|j| insert_job(j, o.at)));
    let settle = settle_inbound(&o, ticket, comment);
    (blobs, effects, settle)
}

/// The states a message may be settled from: pending or quarantined, and held when an agent
/// accepts it.
fn settles_from(o: &InboundOutcome) -> &'static str {
    if o.decided_by.is_some() { "('pending', 'quarantined', 'held')" } else { "('pending', 'quarantined')" }
}

/// Whether a message may still be settled; `lock` is the dialect's row lock (PostgreSQL:
/// `FOR UPDATE`), so a concurrent settler waits and then sees it settled.
pub(crate) fn unsettled(o: &InboundOutcome, lock: &str) -> Stmt {
    Stmt::new(
        format!("SELECT id FROM inbound_messages WHERE id = $1 AND status IN {} {lock}", settles_from(o)),
        vec![Param::Uuid(o.inbound_id)],
    )
}

/// Settles a message that is still unsettled; affects no row otherwise. A held message
/// remembers the note it is held as; an accepted one who accepted it.
fn settle_inbound(o: &InboundOutcome, ticket: Option<TicketId>, comment: Option<Uuid>) -> Stmt {
    let held_note = comment.filter(|_| o.status == InboundStatus::Held);
    Stmt::new(
        format!(
            "UPDATE inbound_messages SET status = $2, automation = $3, ticket_id = $4, comment_id = $5, error = NULL, \
             attempts = attempts + 1, processed_at = $6, held_note_id = coalesce($7, held_note_id), \
             decided_by = $8, decided_at = $9 WHERE id = $1 AND status IN {}",
            settles_from(o)
        ),
        vec![
            Param::Uuid(o.inbound_id),
            Param::Text(o.status.to_string()),
            Param::Text(o.automation.clone()),
            Param::opt_uuid(ticket.map(|t| t.0)),
            Param::opt_uuid(comment),
            Param::Int(micros(o.at)),
            Param::opt_uuid(held_note),
            Param::opt_uuid(o.decided_by.map(|u| u.0)),
            Param::opt_int(o.decided_by.map(|_| micros(o.at))),
        ],
    )
}

/// Discards a held message (it stays stored, its note stays on the ticket); no row when it is
/// no longer held.
pub(crate) fn discard_held(id: Uuid, by: ferrodesk_core::ids::UserId, at: Timestamp) -> Stmt {
    Stmt::new(
        "UPDATE inbound_messages SET status = 'discarded', decided_by = $2, decided_at = $3 \
         WHERE id = $1 AND status = 'held'",
        vec![Param::Uuid(id), Param::Uuid(by.0), Param::Int(micros(at))],
    )
}

/// The messages held on a ticket (as notes among its comments, wherever merges moved them),
/// decided or not, oldest first.
pub(crate) fn held_on_ticket(ticket: TicketId) -> Stmt {
    Stmt::new(
        format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE held_note_id IN \
             (SELECT id FROM comments WHERE ticket_id = $1) ORDER BY received_at, id"
        ),
        vec![Param::Uuid(ticket.0)],
    )
}

/// One job by id (e.g. the mail a reply's Message-ID names).
pub(crate) fn job(id: Uuid) -> Stmt {
    Stmt::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), vec![Param::Uuid(id)])
}

/// Moves a message to another state (quarantine with its error, discard, back to pending for
/// a retry); `from` lists the states it may leave.
pub(crate) fn set_inbound_status(
    id: Uuid,
    status: InboundStatus,
    error: Option<String>,
    from: &[InboundStatus],
    count_attempt: bool,
) -> Stmt {
    let allowed = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
    Stmt::new(
        format!(
            "UPDATE inbound_messages SET status = $2, error = $3, attempts = attempts + $4 \
             WHERE id = $1 AND status IN ({allowed})"
        ),
        vec![
            Param::Uuid(id),
            Param::Text(status.to_string()),
            Param::opt_text(error),
            Param::Int(i64::from(count_attempt)),
        ],
    )
}

pub(crate) fn remember_thread_id(message_id: &str, ticket: TicketId, at: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO mail_threads (message_id, ticket_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (message_id) DO NOTHING",
        vec![Param::Text(message_id.to_owned()), Param::Uuid(ticket.0), Param::Int(micros(at))],
    )
}

/// The ticket one of these Message-IDs belongs to, following merges to the surviving ticket.
/// The ids come nearest first; the nearest known one wins.
pub(crate) fn thread_lookup(ids: &[String]) -> Stmt {
    let placeholders = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    Stmt::new(
        format!(
            "SELECT mt.message_id, coalesce(t.merged_into, t.id) AS ticket_id FROM mail_threads mt \
             JOIN tickets t ON t.id = mt.ticket_id WHERE mt.message_id IN ({placeholders})"
        ),
        ids.iter().map(|i| Param::Text(i.clone())).collect(),
    )
}

pub(crate) fn insert_secret(name: &str, value: Vec<u8>, at: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO instance_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        vec![Param::Text(name.to_owned()), Param::Bytes(value.into()), Param::Int(micros(at))],
    )
}

pub(crate) fn secret(name: &str) -> Stmt {
    Stmt::new("SELECT value FROM instance_secrets WHERE name = $1", vec![Param::Text(name.to_owned())])
}

pub(crate) fn record_bounce(address: &str, at: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO email_bounces (address, bounces, last_bounce_at) VALUES ($1, 1, $2) \
         ON CONFLICT (address) DO UPDATE SET bounces = email_bounces.bounces + 1, last_bounce_at = $2",
        vec![Param::Text(address.to_owned()), Param::Int(micros(at))],
    )
}

pub(crate) fn bounces(address: &str) -> Stmt {
    Stmt::new("SELECT bounces FROM email_bounces WHERE address = $1", vec![Param::Text(address.to_owned())])
}

/// Messages still waiting (e.g. after a crash between storing and processing), oldest first.
pub(crate) fn pending_inbound(limit: u32, received_before: Timestamp) -> Stmt {
    Stmt::new(
        format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE status = 'pending' AND received_at < $2 \
             ORDER BY received_at LIMIT $1"
        ),
        vec![Param::Int(i64::from(limit)), Param::Int(micros(received_before))],
    )
}

pub(crate) const JOB_COLUMNS: &str =
    "id, kind, payload, topic, ticket_id, state, run_at, attempts, max_attempts, last_error, created_at";

pub(crate) fn insert_job(j: &NewJob, now: Timestamp) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO jobs ({JOB_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7, NULL, $8, $8)"
        ),
        vec![
            Param::Uuid(j.id),
            Param::Text(j.kind.clone()),
            Param::Text(j.payload.to_string()),
            Param::opt_text(j.topic.clone()),
            Param::opt_uuid(j.ticket_id.map(|t| t.0)),
            Param::Int(micros(j.run_at)),
            Param::Int(j.max_attempts),
            Param::Int(micros(now)),
        ],
    )
}

/// Takes up to `limit` due jobs: queued, due, and not leased by a live worker. `lock` is the
/// dialect's row-locking clause for the inner select (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
pub(crate) fn claim_jobs(now: Timestamp, lease_until: Timestamp, limit: u32, lock: &str) -> Stmt {
    Stmt::new(
        format!(
            "UPDATE jobs SET attempts = attempts + 1, lease_until = $2, updated_at = $1 WHERE id IN \
             (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= $1 AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY run_at LIMIT $3 {lock}) RETURNING {JOB_COLUMNS}"
        ),
        vec![Param::Int(micros(now)), Param::Int(micros(lease_until)), Param::Int(i64::from(limit))],
    )
}

pub(crate) fn finish_job(id: Uuid, outcome: &JobOutcome, now: Timestamp) -> Stmt {
    let (state, run_at, error) = match outcome {
        JobOutcome::Done => ("done", None, None),
        JobOutcome::Retry { at, error } => ("queued", Some(micros(*at)), Some(error.clone())),
        JobOutcome::Dead { error } => ("dead", None, Some(error.clone())),
    };
    Stmt::new(
        "UPDATE jobs SET state = $2, run_at = coalesce($3, run_at), last_error = coalesce($4, last_error), \
         lease_until = NULL, updated_at = $5 WHERE id = $1",
        vec![
            Param::Uuid(id),
            Param::Text(state.into()),
            Param::opt_int(run_at),
            Param::opt_text(error),
            Param::Int(micros(now)),
        ],
    )
}

pub(crate) fn jobs_on_topic_since(topic: &str, since: Timestamp) -> Stmt {
    Stmt::new(
        "SELECT count(*) AS n FROM jobs WHERE topic = $1 AND created_at >= $2",
        vec![Param::Text(topic.to_owned()), Param::Int(micros(since))],
    )
}

pub(crate) fn jobs_of_ticket(ticket: TicketId) -> Stmt {
    Stmt::new(
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE ticket_id = $1 ORDER BY created_at"),
        vec![Param::Uuid(ticket.0)],
    )
}

/// The Message-IDs of a ticket's mail, oldest first (for `References`).
pub(crate) fn thread_ids(ticket: TicketId) -> Stmt {
    Stmt::new(
        "SELECT message_id FROM mail_threads WHERE ticket_id = $1 ORDER BY created_at, message_id LIMIT 20",
        vec![Param::Uuid(ticket.0)],
    )
}

/// The mailbox a ticket's mail came in through (its first message), if any.
pub(crate) fn ticket_mailbox(ticket: TicketId) -> Stmt {
    Stmt::new(
        format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = \
             (SELECT mailbox_id FROM inbound_messages WHERE ticket_id = $1 AND mailbox_id IS NOT NULL \
              ORDER BY received_at LIMIT 1)"
        ),
        vec![Param::Uuid(ticket.0)],
    )
}

/// Voids a user's outstanding resets (a newer one was issued, or the password changed).
pub(crate) fn void_resets(user: ferrodesk_core::ids::UserId, now: Timestamp) -> Stmt {
    Stmt::new(
        "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        vec![Param::Uuid(user.0), Param::Int(micros(now))],
    )
}

pub(crate) fn insert_reset(r: &PasswordReset) -> Stmt {
    Stmt::new(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Param::Uuid(r.id),
            Param::Uuid(r.user_id.0),
            Param::Text(r.token_hash.clone()),
            Param::Int(micros(r.created_at)),
            Param::Int(micros(r.expires_at)),
        ],
    )
}

/// Claims a live reset by its token hash: marks it used, returns its user; no row when the
/// token is unknown, used, voided or expired.
pub(crate) fn claim_reset(token_hash: &str, now: Timestamp) -> Stmt {
    Stmt::new(
        "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
         RETURNING user_id",
        vec![Param::Text(token_hash.to_owned()), Param::Int(micros(now))],
    )
}

pub(crate) fn set_password(user: ferrodesk_core::ids::UserId, hash: &str) -> Stmt {
    Stmt::new(
        "UPDATE users SET password_hash = $1 WHERE id = $2 AND active",
        vec![Param::Text(hash.to_owned()), Param::Uuid(user.0)],
    )
}

pub(crate) fn end_sessions(user: ferrodesk_core::ids::UserId) -> Stmt {
    Stmt::new("DELETE FROM sessions WHERE user_id = $1", vec![Param::Uuid(user.0)])
}
