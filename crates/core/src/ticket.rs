//! Tickets: their fields, lifecycle and the pure functions that change them.
//!
//! Every change goes through [`Change`], which returns the new ticket and the list of field
//! changes for the immutable history. The store persists both atomically with a version check.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{CategoryId, GroupId, OrganisationId, TicketId, TicketNumber, UserId};
use crate::priority::{Impact, Priority, PriorityMatrix, Urgency, text_enum};

text_enum!(/// What kind of work the ticket is.
    TicketType { Incident = "incident", ServiceRequest = "service_request", Problem = "problem", Change = "change" });
text_enum!(/// Where the lifecycle stands.
    Status { New = "new", Open = "open", Pending = "pending", Resolved = "resolved", Closed = "closed" });
text_enum!(/// Whom a pending ticket waits for.
    PendingReason { Requester = "requester", ThirdParty = "third_party" });
text_enum!(/// How the ticket reached us.
    Channel { Web = "web", Email = "email", Api = "api", Chat = "chat", Phone = "phone", Monitoring = "monitoring" });
text_enum!(/// Support tier working the ticket.
    SupportLevel { L1 = "l1", L2 = "l2", L3 = "l3" });

impl Status {
    /// The lifecycle: new → open → pending ⇄ open → resolved → closed; resolved → open is a
    /// reopen; any unfinished ticket may be closed directly (cancelled); closed is final.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (New, Open | Pending | Resolved | Closed)
                | (Open, Pending | Resolved | Closed)
                | (Pending, Open | Resolved | Closed)
                | (Resolved, Open | Closed)
        )
    }

    /// Whether the ticket still needs work (counts in open views).
    pub fn is_active(self) -> bool {
        matches!(self, Status::New | Status::Open | Status::Pending)
    }
}

impl SupportLevel {
    pub fn next(self) -> Option<SupportLevel> {
        match self {
            Self::L1 => Some(Self::L2),
            Self::L2 => Some(Self::L3),
            Self::L3 => None,
        }
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub number: TicketNumber,
    pub ticket_type: TicketType,
    pub subject: String,
    pub description: String,
    pub requester_id: UserId,
    pub organisation_id: Option<OrganisationId>,
    pub category_id: Option<CategoryId>,
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority: Priority,
    pub priority_overridden: bool,
    pub status: Status,
    pub pending_reason: Option<PendingReason>,
    pub group_id: Option<GroupId>,
    pub assignee_id: Option<UserId>,
    pub support_level: SupportLevel,
    pub channel: Channel,
    pub tags: Vec<String>,
    pub watchers: Vec<UserId>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub resolution_note: Option<String>,
    pub resolution_code: Option<String>,
    pub merged_into: Option<TicketId>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub last_requester_activity_at: Option<Timestamp>,
    pub last_agent_activity_at: Option<Timestamp>,
}

/// One line of the immutable history: field, old → new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Input to open a new ticket, already validated at the edge.
#[derive(Debug, Clone)]
pub struct TicketDraft {
    pub ticket_type: TicketType,
    pub subject: String,
    pub description: String,
    pub requester_id: UserId,
    pub organisation_id: Option<OrganisationId>,
    pub category_id: Option<CategoryId>,
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority_override: Option<Priority>,
    pub group_id: Option<GroupId>,
    pub assignee_id: Option<UserId>,
    pub channel: Channel,
    pub tags: Vec<String>,
    pub watchers: Vec<UserId>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

pub const SUBJECT_MAX_CHARS: usize = 300;
pub const DESCRIPTION_MAX_BYTES: usize = 256 * 1024;
pub const TAG_MAX_CHARS: usize = 64;
pub const TAGS_MAX: usize = 50;

/// Checks a subject: non-blank, bounded, no control characters.
pub fn validate_subject(subject: &str) -> Result<String, DomainError> {
    let trimmed = subject.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid("subject", "must not be empty"));
    }
    if trimmed.chars().count() > SUBJECT_MAX_CHARS {
        return Err(DomainError::invalid("subject", format!("at most {SUBJECT_MAX_CHARS} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid("subject", "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

pub fn validate_description(text: &str) -> Result<String, DomainError> {
    if text.len() > DESCRIPTION_MAX_BYTES {
        return Err(DomainError::invalid("description", format!("at most {DESCRIPTION_MAX_BYTES} bytes")));
    }
    if text.contains('\0') {
        return Err(DomainError::invalid("description", "must not contain NUL"));
    }
    Ok(text.to_owned())
}

/// Normalises tags: trimmed, lower-case, deduplicated, sorted; letters, digits, `-_.:` only.
pub fn normalise_tags(tags: &[String]) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let t = tag.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > TAG_MAX_CHARS {
            return Err(DomainError::invalid("tags", format!("each tag has 1 to {TAG_MAX_CHARS} characters")));
        }
        if !t.chars().all(|c| c.is_alphanumeric() || "-_.:".contains(c)) {
            return Err(DomainError::invalid("tags", "tags use letters, digits and - _ . : only"));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    if out.len() > TAGS_MAX {
        return Err(DomainError::invalid("tags", format!("at most {TAGS_MAX} tags")));
    }
    Ok(out)
}

impl Ticket {
    /// Builds a new ticket from a draft. Priority comes from the matrix unless overridden.
    pub fn open(
        draft: TicketDraft,
        id: TicketId,
        number: TicketNumber,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Ticket {
        let derived = matrix.derive(draft.impact, draft.urgency);
        let priority = draft.priority_override.unwrap_or(derived);
        let status = if draft.assignee_id.is_some() { Status::Open } else { Status::New };
        Ticket {
            id,
            number,
            ticket_type: draft.ticket_type,
            subject: draft.subject,
            description: draft.description,
            requester_id: draft.requester_id,
            organisation_id: draft.organisation_id,
            category_id: draft.category_id,
            impact: draft.impact,
            urgency: draft.urgency,
            priority,
            priority_overridden: priority != derived,
            status,
            pending_reason: None,
            group_id: draft.group_id,
            assignee_id: draft.assignee_id,
            support_level: SupportLevel::L1,
            channel: draft.channel,
            tags: draft.tags,
            watchers: draft.watchers,
            custom_fields: draft.custom_fields,
            resolution_note: None,
            resolution_code: None,
            merged_into: None,
            version: 1,
            created_at: now,
            updated_at: now,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            last_requester_activity_at: Some(now),
            last_agent_activity_at: None,
        }
    }
}

/// A requested change to a ticket. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub ticket_type: Option<TicketType>,
    pub category_id: Option<Option<CategoryId>>,
    pub impact: Option<Impact>,
    pub urgency: Option<Urgency>,
    /// `Some(Some(p))` overrides the derived priority; `Some(None)` goes back to the matrix.
    pub priority: Option<Option<Priority>>,
    pub status: Option<Status>,
    pub pending_reason: Option<Option<PendingReason>>,
    pub group_id: Option<Option<GroupId>>,
    pub assignee_id: Option<Option<UserId>>,
    pub support_level: Option<SupportLevel>,
    pub tags: Option<Vec<String>>,
    pub watchers: Option<Vec<UserId>>,
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    pub resolution_note: Option<String>,
    pub resolution_code: Option<String>,
}

fn opt_str<T: ToString>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

fn join<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Records a change of one field when old ≠ new.
struct Recorder<'a> {
    changes: &'a mut Vec<FieldChange>,
}

impl Recorder<'_> {
    fn set<T: PartialEq + Clone>(&mut self, field: &str, slot: &mut T, new: T, show: impl Fn(&T) -> Option<String>) {
        if *slot != new {
            self.changes.push(FieldChange { field: field.to_owned(), old: show(slot), new: show(&new) });
            *slot = new;
        }
    }
}

impl Ticket {
    /// Applies a patch, enforcing the lifecycle; returns the changed fields (empty: no-op).
    /// Timestamps (`resolved_at`, `closed_at`, `updated_at`) follow the status.
    /// On error the ticket is left exactly as it was.
    pub fn apply(
        &mut self,
        patch: TicketPatch,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        let mut next = self.clone();
        let changes = next.apply_in_place(patch, matrix, now)?;
        *self = next;
        Ok(changes)
    }

    fn apply_in_place(
        &mut self,
        patch: TicketPatch,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        if self.status == Status::Closed {
            return Err(DomainError::TicketClosed);
        }
        let mut changes = Vec::new();
        let mut r = Recorder { changes: &mut changes };
        if let Some(s) = patch.subject {
            r.set("subject", &mut self.subject, validate_subject(&s)?, |v| Some(v.clone()));
        }
        if let Some(d) = patch.description {
            r.set("description", &mut self.description, validate_description(&d)?, |v| Some(v.clone()));
        }
        if let Some(t) = patch.ticket_type {
            r.set("type", &mut self.ticket_type, t, |v| Some(v.to_string()));
        }
        if let Some(c) = patch.category_id {
            r.set("category_id", &mut self.category_id, c, opt_str);
        }
        if let Some(i) = patch.impact {
            r.set("impact", &mut self.impact, i, |v| Some(v.to_string()));
        }
        if let Some(u) = patch.urgency {
            r.set("urgency", &mut self.urgency, u, |v| Some(v.to_string()));
        }
        let derived = matrix.derive(self.impact, self.urgency);
        let overridden = match patch.priority {
            Some(Some(p)) => Some(p),
            Some(None) => None,
            None if self.priority_overridden => Some(self.priority),
            None => None,
        };
        let priority = overridden.unwrap_or(derived);
        r.set("priority", &mut self.priority, priority, |v| Some(v.to_string()));
        self.priority_overridden = priority != derived;
        if let Some(g) = patch.group_id {
            r.set("group_id", &mut self.group_id, g, opt_str);
        }
        if let Some(a) = patch.assignee_id {
            r.set("assignee_id", &mut self.assignee_id, a, opt_str);
        }
        if let Some(l) = patch.support_level {
            r.set("support_level", &mut self.support_level, l, |v| Some(v.to_string()));
        }
        if let Some(tags) = patch.tags {
            r.set("tags", &mut self.tags, normalise_tags(&tags)?, |v| Some(join(v)));
        }
        if let Some(mut w) = patch.watchers {
            w.sort();
            w.dedup();
            r.set("watchers", &mut self.watchers, w, |v| Some(join(v)));
        }
        if let Some(cf) = patch.custom_fields {
            let mut merged = self.custom_fields.clone();
            for (k, v) in cf {
                if v.is_null() {
                    merged.remove(&k);
                } else {
                    merged.insert(k, v);
                }
            }
            r.set("custom_fields", &mut self.custom_fields, merged, |v| {
                Some(serde_json::Value::Object(v.clone()).to_string())
            });
        }
        if let Some(note) = patch.resolution_note {
            r.set("resolution_note", &mut self.resolution_note, Some(note), Clone::clone);
        }
        if let Some(code) = patch.resolution_code {
            r.set("resolution_code", &mut self.resolution_code, Some(code), Clone::clone);
        }
        // A new ticket that gains an assignee starts being worked on.
        let mut target = patch.status;
        if target.is_none() && self.status == Status::New && self.assignee_id.is_some() {
            target = Some(Status::Open);
        }
        if let Some(to) = target.filter(|to| *to != self.status) {
            if !self.status.can_become(to) {
                return Err(DomainError::InvalidTransition { from: self.status.to_string(), to: to.to_string() });
            }
            r.set("status", &mut self.status, to, |v| Some(v.to_string()));
            match to {
                Status::Resolved => self.resolved_at = Some(now),
                Status::Closed => self.closed_at = Some(now),
                Status::Open => self.resolved_at = None,
                _ => {}
            }
        }
        let reason = match (self.status, patch.pending_reason) {
            (Status::Pending, Some(reason)) => reason.or(Some(PendingReason::Requester)),
            (Status::Pending, None) => self.pending_reason.or(Some(PendingReason::Requester)),
            _ => None,
        };
        r.set("pending_reason", &mut self.pending_reason, reason, opt_str);
        if !changes.is_empty() {
            self.updated_at = now;
        }
        Ok(changes)
    }

    /// Moves the ticket one support level up (L1 → L2 → L3), optionally to another group,
    /// recording the reason as its own history line.
    pub fn escalate(
        &mut self,
        reason: &str,
        group_id: Option<GroupId>,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DomainError::invalid("reason", "an escalation needs a reason"));
        }
        let Some(next) = self.support_level.next() else {
            return Err(DomainError::invalid("support_level", "the ticket is already at L3"));
        };
        let mut patch = TicketPatch { support_level: Some(next), ..TicketPatch::default() };
        if let Some(g) = group_id {
            patch.group_id = Some(Some(g));
            // A new group works it afresh: the old assignee belongs to the old level.
            patch.assignee_id = Some(None);
        }
        let mut changes = self.apply(patch, matrix, now)?;
        changes.push(FieldChange { field: "escalation_reason".into(), old: None, new: Some(reason.to_owned()) });
        Ok(changes)
    }

    /// Resolves with a note saying what fixed it (code `solved` unless given).
    pub fn resolve(
        &mut self,
        note: &str,
        code: Option<&str>,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        let note = note.trim();
        if note.is_empty() {
            return Err(DomainError::invalid("resolution_note", "say what resolved the ticket"));
        }
        let code = code.map(str::trim).filter(|c| !c.is_empty()).unwrap_or("solved");
        let patch = TicketPatch {
            status: Some(Status::Resolved),
            resolution_note: Some(note.to_owned()),
            resolution_code: Some(code.to_owned()),
            ..TicketPatch::default()
        };
        self.apply(patch, matrix, now)
    }

    /// Closes: a resolved ticket keeps its resolution; closing an unresolved one cancels it.
    pub fn close(
        &mut self,
        code: Option<&str>,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        let code = match (code.map(str::trim).filter(|c| !c.is_empty()), self.status) {
            (Some(c), _) => Some(c.to_owned()),
            (None, Status::Resolved) => None,
            (None, _) => Some("cancelled".to_owned()),
        };
        self.apply(
            TicketPatch { status: Some(Status::Closed), resolution_code: code, ..TicketPatch::default() },
            matrix,
            now,
        )
    }

    /// Reopens a resolved ticket, recording why.
    pub fn reopen(
        &mut self,
        reason: Option<&str>,
        by_requester: bool,
        matrix: &PriorityMatrix,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        if self.status != Status::Resolved {
            return Err(DomainError::InvalidTransition { from: self.status.to_string(), to: Status::Open.to_string() });
        }
        let mut changes =
            self.apply(TicketPatch { status: Some(Status::Open), ..TicketPatch::default() }, matrix, now)?;
        if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
            changes.push(FieldChange { field: "reopen_reason".into(), old: None, new: Some(reason.to_owned()) });
        }
        if by_requester {
            self.last_requester_activity_at = Some(now);
        }
        Ok(changes)
    }

    /// Accounts for a new comment: activity timestamps, first response, and a requester's
    /// reply bringing a ticket that waited on them back to open. Closed tickets take no comments.
    pub fn note_comment(
        &mut self,
        by_staff: bool,
        internal: bool,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        if self.status == Status::Closed {
            return Err(DomainError::TicketClosed);
        }
        let mut changes = Vec::new();
        self.updated_at = now;
        if internal {
            return Ok(changes);
        }
        if by_staff {
            self.first_response_at.get_or_insert(now);
            self.last_agent_activity_at = Some(now);
        } else {
            self.last_requester_activity_at = Some(now);
            if self.status == Status::Pending && self.pending_reason == Some(PendingReason::Requester) {
                changes.push(FieldChange {
                    field: "status".into(),
                    old: Some(self.status.to_string()),
                    new: Some(Status::Open.to_string()),
                });
                changes.push(FieldChange {
                    field: "pending_reason".into(),
                    old: Some(PendingReason::Requester.to_string()),
                    new: None,
                });
                self.status = Status::Open;
                self.pending_reason = None;
            }
        }
        Ok(changes)
    }

    /// Merges this (duplicate) ticket into `target`: this one is closed as merged, the target
    /// gains this one's requester and watchers as watchers. Returns (own changes, target's).
    pub fn merge_into(
        &mut self,
        target: &mut Ticket,
        now: Timestamp,
    ) -> Result<(Vec<FieldChange>, Vec<FieldChange>), DomainError> {
        if self.id == target.id {
            return Err(DomainError::invalid("into", "a ticket cannot be merged into itself"));
        }
        if target.status == Status::Closed {
            return Err(DomainError::invalid("into", "the target ticket is closed"));
        }
        if self.status == Status::Closed {
            return Err(DomainError::TicketClosed);
        }
        let mut own =
            vec![FieldChange { field: "merged_into".into(), old: None, new: Some(target.number.to_string()) }];
        own.push(FieldChange {
            field: "status".into(),
            old: Some(self.status.to_string()),
            new: Some(Status::Closed.to_string()),
        });
        self.merged_into = Some(target.id);
        self.status = Status::Closed;
        self.closed_at = Some(now);
        self.resolution_code = Some("merged".into());
        self.updated_at = now;

        let mut watchers = target.watchers.clone();
        watchers.extend(self.watchers.iter().copied());
        watchers.push(self.requester_id);
        watchers.retain(|w| *w != target.requester_id);
        watchers.sort();
        watchers.dedup();
        let mut theirs =
            vec![FieldChange { field: "merged_from".into(), old: None, new: Some(self.number.to_string()) }];
        if watchers != target.watchers {
            theirs.push(FieldChange {
                field: "watchers".into(),
                old: Some(join(&target.watchers)),
                new: Some(join(&watchers)),
            });
            target.watchers = watchers;
        }
        target.updated_at = now;
        Ok((own, theirs))
    }

    /// Adds watchers (never the requester, no repeats); the recorded change, if anyone was new.
    pub fn add_watchers(&mut self, users: &[UserId]) -> Option<FieldChange> {
        let mut watchers = self.watchers.clone();
        watchers.extend(users.iter().copied().filter(|u| *u != self.requester_id));
        watchers.sort();
        watchers.dedup();
        if watchers == self.watchers {
            return None;
        }
        let change =
            FieldChange { field: "watchers".into(), old: Some(join(&self.watchers)), new: Some(join(&watchers)) };
        self.watchers = watchers;
        Some(change)
    }

    /// Whether the user takes part in the ticket as requester or watcher.
    pub fn involves(&self, user: UserId) -> bool {
        self.requester_id == user || self.watchers.contains(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample(now: Timestamp) -> Ticket {
        let draft = TicketDraft {
            ticket_type: TicketType::Incident,
            subject: "Printer on 3rd floor jams".into(),
            description: "It jams.".into(),
            requester_id: UserId::generate(),
            organisation_id: None,
            category_id: None,
            impact: Impact::Medium,
            urgency: Urgency::Medium,
            priority_override: None,
            group_id: None,
            assignee_id: None,
            channel: Channel::Web,
            tags: vec![],
            watchers: vec![],
            custom_fields: Default::default(),
        };
        Ticket::open(draft, TicketId::generate(), TicketNumber(1001), &PriorityMatrix::default(), now)
    }

    #[test]
    fn lifecycle_table() {
        use Status::*;
        let allowed = [
            (New, Open),
            (New, Pending),
            (New, Resolved),
            (New, Closed),
            (Open, Pending),
            (Open, Resolved),
            (Open, Closed),
            (Pending, Open),
            (Pending, Resolved),
            (Pending, Closed),
            (Resolved, Open),
            (Resolved, Closed),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                let expected = allowed.contains(&(*from, *to));
                assert_eq!(from.can_become(*to), expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn invalid_transition_is_refused_and_leaves_ticket_unchanged() {
        let now = Timestamp::UNIX_EPOCH;
        let mut t = sample(now);
        t.apply(TicketPatch { status: Some(Status::Resolved), ..Default::default() }, &PriorityMatrix::default(), now)
            .unwrap_or_default();
        t.apply(TicketPatch { status: Some(Status::Closed), ..Default::default() }, &PriorityMatrix::default(), now)
            .unwrap_or_default();
        let before = t.clone();
        let err =
            t.apply(TicketPatch { status: Some(Status::Open), ..Default::default() }, &PriorityMatrix::default(), now);
        assert_eq!(err, Err(DomainError::TicketClosed));
        assert_eq!(t, before);
    }

    #[test]
    fn impact_change_rederives_priority_unless_overridden() {
        let now = Timestamp::UNIX_EPOCH;
        let m = PriorityMatrix::default();
        let mut t = sample(now);
        let changes = t.apply(TicketPatch { impact: Some(Impact::High), ..Default::default() }, &m, now);
        assert_eq!(t.priority, Priority::High);
        assert!(changes.is_ok_and(|c| c.iter().any(|c| c.field == "priority")));
        let _ = t.apply(TicketPatch { priority: Some(Some(Priority::Low)), ..Default::default() }, &m, now);
        assert!(t.priority_overridden);
        let _ = t.apply(TicketPatch { urgency: Some(Urgency::High), ..Default::default() }, &m, now);
        assert_eq!(t.priority, Priority::Low, "override survives impact/urgency edits");
        let _ = t.apply(TicketPatch { priority: Some(None), ..Default::default() }, &m, now);
        assert_eq!(t.priority, Priority::Critical);
        assert!(!t.priority_overridden);
    }

    #[test]
    fn assigning_a_new_ticket_opens_it_and_escalation_climbs_levels() {
        let now = Timestamp::UNIX_EPOCH;
        let m = PriorityMatrix::default();
        let mut t = sample(now);
        let _ = t.apply(TicketPatch { assignee_id: Some(Some(UserId::generate())), ..Default::default() }, &m, now);
        assert_eq!(t.status, Status::Open);
        assert!(t.escalate(" ", None, &m, now).is_err());
        assert!(t.escalate("needs network team", Some(GroupId::generate()), &m, now).is_ok());
        assert_eq!(t.support_level, SupportLevel::L2);
        assert_eq!(t.assignee_id, None);
        assert!(t.escalate("still broken", None, &m, now).is_ok());
        assert!(t.escalate("again", None, &m, now).is_err(), "no level above L3");
    }

    #[test]
    fn tags_are_normalised_and_junk_refused() {
        let tags = normalise_tags(&[" VPN ".into(), "vpn".into(), "wifi".into()]);
        assert_eq!(tags, Ok(vec!["vpn".to_string(), "wifi".to_string()]));
        assert!(normalise_tags(&["a b".into()]).is_err());
        assert!(normalise_tags(&["<script>".into()]).is_err());
        assert!(validate_subject("   ").is_err());
        assert!(validate_subject("a\u{0}b").is_err());
    }

    #[test]
    fn requester_reply_reopens_a_ticket_waiting_on_them_and_staff_reply_counts_as_response() {
        let now = Timestamp::UNIX_EPOCH;
        let m = PriorityMatrix::default();
        let mut t = sample(now);
        let _ = t.apply(TicketPatch { status: Some(Status::Pending), ..Default::default() }, &m, now);
        assert_eq!(t.pending_reason, Some(PendingReason::Requester));
        let _ = t.note_comment(true, true, now);
        assert_eq!(t.first_response_at, None, "an internal note is not a response");
        let _ = t.note_comment(true, false, now);
        assert_eq!(t.first_response_at, Some(now));
        let changes = t.note_comment(false, false, now).unwrap_or_default();
        assert_eq!(t.status, Status::Open);
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn merging_closes_the_duplicate_and_keeps_its_people_on_the_target() {
        let now = Timestamp::UNIX_EPOCH;
        let mut dup = sample(now);
        let mut target = sample(now);
        target.number = TicketNumber(1002);
        let (own, theirs) = dup.merge_into(&mut target, now).unwrap_or_default();
        assert_eq!(dup.status, Status::Closed);
        assert_eq!(dup.merged_into, Some(target.id));
        assert!(target.watchers.contains(&dup.requester_id));
        assert!(own.iter().any(|c| c.field == "merged_into") && theirs.iter().any(|c| c.field == "merged_from"));
        let mut again = target.clone();
        assert!(target.clone().merge_into(&mut again, now).is_err(), "not into itself");
        assert!(dup.merge_into(&mut target, now).is_err(), "a merged ticket is closed");
    }

    proptest! {
        /// Whatever sequence of status requests arrives, the ticket only ever follows the lifecycle.
        #[test]
        fn status_only_moves_along_the_lifecycle(steps in proptest::collection::vec(0usize..5, 0..20)) {
            let now = Timestamp::UNIX_EPOCH;
            let m = PriorityMatrix::default();
            let mut t = sample(now);
            for s in steps {
                let before = t.status;
                let to = Status::ALL[s];
                let result = t.apply(TicketPatch { status: Some(to), ..Default::default() }, &m, now);
                match result {
                    Ok(_) => prop_assert!(before == to || before.can_become(to)),
                    Err(_) => prop_assert_eq!(t.status, before),
                }
                if t.status == Status::Resolved { prop_assert!(t.resolved_at.is_some()); }
            }
        }
    }
}
