//! Statements for the work around tickets: custom field definitions, time entries, links,
//! idempotency keys. Shared by both dialects like `query.rs`.

use ferrodesk_core::custom_field::CustomFieldDef;
use ferrodesk_core::ids::{TicketId, UserId};
use jiff::Timestamp;

use crate::micros;
use crate::query::{Param, Stmt};
use crate::records::*;

pub(crate) fn insert_custom_field(d: &CustomFieldDef, now: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO custom_fields (id, key, label, kind, options, required, ticket_types, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            Param::Uuid(d.id.0),
            Param::Text(d.key.clone()),
            Param::Text(d.label.clone()),
            Param::Text(d.kind.as_str().into()),
            Param::Text(json_text(&d.options)),
            Param::Bool(d.required),
            Param::Text(json_text(&d.ticket_types)),
            Param::Int(micros(now)),
        ],
    )
}

pub(crate) const LIST_CUSTOM_FIELDS: &str =
    "SELECT id, key, label, kind, options, required, ticket_types FROM custom_fields ORDER BY key";

pub(crate) fn insert_time_entry(e: &TimeEntry) -> Stmt {
    Stmt::new(
        "INSERT INTO time_entries (id, ticket_id, user_id, minutes, note, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Param::Uuid(e.id.0),
            Param::Uuid(e.ticket_id.0),
            Param::Uuid(e.user_id.0),
            Param::Int(e.minutes),
            Param::Text(e.note.clone()),
            Param::Int(micros(e.created_at)),
        ],
    )
}

pub(crate) fn list_time_entries(ticket: TicketId) -> Stmt {
    Stmt::new(
        "SELECT id, ticket_id, user_id, minutes, note, created_at FROM time_entries WHERE ticket_id = $1 ORDER BY created_at, id",
        vec![Param::Uuid(ticket.0)],
    )
}

/// Every link row touching either ticket (to check structure before linking).
pub(crate) fn links_touching(a: TicketId, b: TicketId) -> Stmt {
    Stmt::new(
        "SELECT ticket_id, linked_id, kind FROM ticket_links WHERE ticket_id IN ($1, $2) OR linked_id IN ($1, $2)",
        vec![Param::Uuid(a.0), Param::Uuid(b.0)],
    )
}

/// Checks a new link against the existing rows touching both tickets; returns the rows to insert
/// as (ticket_id, linked_id, kind). Parent links are one level deep: a parent has no parent, a
/// child has no children, and a ticket has at most one parent.
pub(crate) fn plan_link(
    from: TicketId,
    to: TicketId,
    kind: LinkKind,
    existing: &[(uuid::Uuid, uuid::Uuid, String)],
) -> Result<Vec<(TicketId, TicketId, &'static str)>, String> {
    if from == to {
        return Err("a ticket cannot be linked to itself".into());
    }
    let linked = |a: TicketId, b: TicketId| {
        existing.iter().any(|(x, y, _)| (*x == a.0 && *y == b.0) || (*x == b.0 && *y == a.0))
    };
    if linked(from, to) {
        return Err("these tickets are already linked".into());
    }
    let has_parent = |t: TicketId| existing.iter().any(|(x, _, k)| *x == t.0 && k == "parent");
    let has_children = |t: TicketId| existing.iter().any(|(_, y, k)| *y == t.0 && k == "parent");
    let (child, parent) = match kind {
        LinkKind::Related => return Ok(vec![(from, to, "related"), (to, from, "related")]),
        LinkKind::Parent => (from, to),
        LinkKind::Child => (to, from),
    };
    if has_parent(child) {
        return Err("the child ticket already has a parent".into());
    }
    if has_children(child) {
        return Err("a ticket with children cannot become a child".into());
    }
    if has_parent(parent) {
        return Err("a child ticket cannot become a parent".into());
    }
    Ok(vec![(child, parent, "parent")])
}

/// The stored link rows between two tickets (either direction), as history needs them.
pub(crate) fn links_between(
    a: TicketId,
    b: TicketId,
    existing: &[(uuid::Uuid, uuid::Uuid, String)],
) -> Vec<(TicketId, TicketId, &'static str)> {
    existing
        .iter()
        .filter(|(x, y, _)| (*x == a.0 && *y == b.0) || (*x == b.0 && *y == a.0))
        .map(|(x, y, k)| (TicketId(*x), TicketId(*y), if k == "parent" { "parent" } else { "related" }))
        .collect()
}

pub(crate) fn insert_link(a: TicketId, b: TicketId, kind: &str, now: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO ticket_links (ticket_id, linked_id, kind, created_at) VALUES ($1, $2, $3, $4)",
        vec![Param::Uuid(a.0), Param::Uuid(b.0), Param::Text(kind.into()), Param::Int(micros(now))],
    )
}

pub(crate) fn delete_links(a: TicketId, b: TicketId) -> Stmt {
    Stmt::new(
        "DELETE FROM ticket_links WHERE (ticket_id = $1 AND linked_id = $2) OR (ticket_id = $2 AND linked_id = $1)",
        vec![Param::Uuid(a.0), Param::Uuid(b.0)],
    )
}

/// The tickets linked to one, with the link kind seen from it.
pub(crate) fn list_links(ticket: TicketId) -> Stmt {
    Stmt::new(
        format!(
            "SELECT {cols}, l.kind AS link_kind FROM ticket_links l JOIN tickets t ON t.id = l.linked_id WHERE l.ticket_id = $1 \
             UNION ALL \
             SELECT {cols}, 'child' AS link_kind FROM ticket_links l JOIN tickets t ON t.id = l.ticket_id \
             WHERE l.linked_id = $1 AND l.kind = 'parent' ORDER BY number",
            cols = crate::row::TICKET_COLUMNS
        ),
        vec![Param::Uuid(ticket.0)],
    )
}

pub(crate) fn link_kind(stored: &str) -> LinkKind {
    match stored {
        "parent" => LinkKind::Parent,
        "child" => LinkKind::Child,
        _ => LinkKind::Related,
    }
}

/// History lines on both tickets for a link made or removed.
pub(crate) fn link_history(
    rows: &[(TicketId, TicketId, &str)],
    numbers: &[(TicketId, i64)],
    actor: Option<UserId>,
    now: Timestamp,
    removed: bool,
) -> Vec<Stmt> {
    let number =
        |t: TicketId| numbers.iter().find(|(id, _)| *id == t).map(|(_, n)| format!("#{n}")).unwrap_or_default();
    let mut out = Vec::new();
    let mut line = |ticket: TicketId, text: String| {
        let (old, new) =
            if removed { (Param::Text(text), Param::NullText) } else { (Param::NullText, Param::Text(text)) };
        out.push(Stmt::new(
            "INSERT INTO ticket_history (ticket_id, actor_id, at, field, old_value, new_value) VALUES ($1, $2, $3, 'link', $4, $5)",
            vec![Param::Uuid(ticket.0), Param::opt_uuid(actor.map(|a| a.0)), Param::Int(micros(now)), old, new],
        ));
    };
    for (a, b, kind) in rows {
        match *kind {
            "parent" => {
                line(*a, format!("parent {}", number(*b)));
                line(*b, format!("child {}", number(*a)));
            }
            _ => line(*a, format!("related {}", number(*b))),
        }
    }
    out
}

pub(crate) fn move_comments(from: TicketId, to: TicketId) -> Stmt {
    Stmt::new("UPDATE comments SET ticket_id = $2 WHERE ticket_id = $1", vec![Param::Uuid(from.0), Param::Uuid(to.0)])
}

pub(crate) fn find_idempotency(user: UserId, key: &str, now: Timestamp) -> Stmt {
    Stmt::new(
        "SELECT request_hash, target_id FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at >= $3",
        vec![
            Param::Uuid(user.0),
            Param::Text(key.into()),
            Param::Int(micros(now) - IDEMPOTENCY_WINDOW.as_micros() as i64),
        ],
    )
}

/// Records a key unless a live one exists (then no row comes back); an expired one is replaced.
pub(crate) fn record_idempotency(i: &Idempotency, target: uuid::Uuid, now: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, target_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, key) DO UPDATE SET request_hash = excluded.request_hash, target_id = excluded.target_id, \
         created_at = excluded.created_at WHERE idempotency_keys.created_at < $6 RETURNING created_at",
        vec![
            Param::Uuid(i.user_id.0),
            Param::Text(i.key.clone()),
            Param::Text(i.request_hash.clone()),
            Param::Uuid(target),
            Param::Int(micros(now)),
            Param::Int(micros(now) - IDEMPOTENCY_WINDOW.as_micros() as i64),
        ],
    )
}

pub(crate) const ATTACHMENT_COLUMNS: &str =
    "id, ticket_id, comment_id, internal, filename, content_type, size, sha256, uploaded_by, created_at";

pub(crate) fn uploaded_since(user: UserId, since: Timestamp) -> Stmt {
    Stmt::new(
        "SELECT CAST(coalesce(sum(size), 0) AS BIGINT) AS total FROM attachments WHERE uploaded_by = $1 AND created_at >= $2",
        vec![Param::Uuid(user.0), Param::Int(micros(since))],
    )
}

pub(crate) fn insert_blob(sha256: &str, data: bytes::Bytes, now: Timestamp) -> Stmt {
    Stmt::new(
        "INSERT INTO blobs (sha256, size, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        vec![Param::Text(sha256.into()), Param::Int(data.len() as i64), Param::Bytes(data), Param::Int(micros(now))],
    )
}

pub(crate) fn insert_attachment(a: &Attachment) -> Stmt {
    Stmt::new(
        format!("INSERT INTO attachments ({ATTACHMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        vec![
            Param::Uuid(a.id.0),
            Param::Uuid(a.ticket_id.0),
            Param::opt_uuid(a.comment_id.map(|c| c.0)),
            Param::Bool(a.internal),
            Param::Text(a.filename.clone()),
            Param::Text(a.content_type.clone()),
            Param::Int(a.size),
            Param::Text(a.sha256.clone()),
            Param::opt_uuid(a.uploaded_by.map(|u| u.0)),
            Param::Int(micros(a.created_at)),
        ],
    )
}

pub(crate) fn list_attachments(ticket: TicketId, include_internal: bool) -> Stmt {
    let mut params = vec![Param::Uuid(ticket.0)];
    let filter = if include_internal {
        ""
    } else {
        params.push(Param::Bool(false));
        " AND internal = $2"
    };
    Stmt::new(
        format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE ticket_id = $1{filter} ORDER BY created_at, id"),
        params,
    )
}

pub(crate) fn move_attachments(from: TicketId, to: TicketId) -> Stmt {
    Stmt::new(
        "UPDATE attachments SET ticket_id = $2 WHERE ticket_id = $1",
        vec![Param::Uuid(from.0), Param::Uuid(to.0)],
    )
}

pub(crate) fn update_custom_field(d: &CustomFieldDef) -> Stmt {
    Stmt::new(
        "UPDATE custom_fields SET label = $1, options = $2, required = $3, ticket_types = $4 WHERE id = $5",
        vec![
            Param::Text(d.label.clone()),
            Param::Text(json_text(&d.options)),
            Param::Bool(d.required),
            Param::Text(json_text(&d.ticket_types)),
            Param::Uuid(d.id.0),
        ],
    )
}

pub(crate) fn insert_saved_filter(f: &SavedFilter) -> Stmt {
    Stmt::new(
        "INSERT INTO saved_filters (id, user_id, name, query, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Param::Uuid(f.id),
            Param::Uuid(f.user_id.0),
            Param::Text(f.name.clone()),
            Param::Text(f.query.clone()),
            Param::Int(micros(f.created_at)),
        ],
    )
}

pub(crate) fn list_saved_filters(user: UserId) -> Stmt {
    Stmt::new(
        "SELECT id, user_id, name, query, created_at FROM saved_filters WHERE user_id = $1 ORDER BY name",
        vec![Param::Uuid(user.0)],
    )
}

pub(crate) fn delete_saved_filter(user: UserId, id: uuid::Uuid) -> Stmt {
    Stmt::new("DELETE FROM saved_filters WHERE user_id = $1 AND id = $2", vec![Param::Uuid(user.0), Param::Uuid(id)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_structure_is_one_level_deep() {
        let (a, b, c) = (TicketId::generate(), TicketId::generate(), TicketId::generate());
        assert!(plan_link(a, a, LinkKind::Related, &[]).is_err());
        assert_eq!(plan_link(a, b, LinkKind::Parent, &[]).map(|r| r.len()), Ok(1));
        assert_eq!(plan_link(a, b, LinkKind::Related, &[]).map(|r| r.len()), Ok(2));
        // b is a's parent already.
        let existing = vec![(a.0, b.0, "parent".to_string())];
        assert!(plan_link(a, b, LinkKind::Related, &existing).is_err(), "already linked");
        assert!(plan_link(a, c, LinkKind::Parent, &existing).is_err(), "one parent only");
        assert!(plan_link(b, c, LinkKind::Parent, &existing).is_err(), "a parent cannot become a child");
        assert!(plan_link(c, a, LinkKind::Parent, &existing).is_err(), "a child cannot become a parent");
        assert!(plan_link(b, c, LinkKind::Child, &existing).is_ok(), "a parent gains more children");
        let with_other = vec![(a.0, b.0, "parent".to_string()), (c.0, b.0, "related".to_string())];
        assert_eq!(links_between(b, a, &with_other), vec![(a, b, "parent")], "either direction, only this pair");
        assert!(links_between(a, c, &with_other).is_empty());
    }
}
