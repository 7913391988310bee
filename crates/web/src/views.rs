//! What the API returns: plain serialisable views of domain records.

use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, Priority, Urgency};
use ferrodesk_core::ticket::{Channel, PendingReason, Status, SupportLevel, Ticket, TicketType};
use ferrodesk_core::user::{Role, User};
use ferrodesk_store::{ApiToken, Category, Comment, Group, HistoryEntry, Organisation};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A page of a list; pass `next_cursor` as `cursor` to get the next one (absent on the last).
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A complete list as a single page (short lists: no cursor).
pub fn page<T>(items: Vec<T>) -> axum::Json<Page<T>> {
    axum::Json(Page { items, next_cursor: None })
}

#[derive(Serialize, ToSchema)]
pub struct TicketView {
    pub id: TicketId,
    pub number: i64,
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    pub subject: String,
    pub description: String,
    pub status: Status,
    pub pending_reason: Option<PendingReason>,
    pub priority: Priority,
    pub priority_overridden: bool,
    pub impact: Impact,
    pub urgency: Urgency,
    pub requester_id: UserId,
    pub organisation_id: Option<OrganisationId>,
    pub category_id: Option<CategoryId>,
    pub group_id: Option<GroupId>,
    pub assignee_id: Option<UserId>,
    pub support_level: SupportLevel,
    pub channel: Channel,
    pub tags: Vec<String>,
    pub watchers: Vec<UserId>,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub resolution_note: Option<String>,
    pub resolution_code: Option<String>,
    pub merged_into: Option<TicketId>,
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_response_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_requester_activity_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_agent_activity_at: Option<Timestamp>,
}

impl From<Ticket> for TicketView {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            number: t.number.0,
            ticket_type: t.ticket_type,
            subject: t.subject,
            description: t.description,
            status: t.status,
            pending_reason: t.pending_reason,
            priority: t.priority,
            priority_overridden: t.priority_overridden,
            impact: t.impact,
            urgency: t.urgency,
            requester_id: t.requester_id,
            organisation_id: t.organisation_id,
            category_id: t.category_id,
            group_id: t.group_id,
            assignee_id: t.assignee_id,
            support_level: t.support_level,
            channel: t.channel,
            tags: t.tags,
            watchers: t.watchers,
            custom_fields: t.custom_fields,
            resolution_note: t.resolution_note,
            resolution_code: t.resolution_code,
            merged_into: t.merged_into,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            first_response_at: t.first_response_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            last_requester_activity_at: t.last_requester_activity_at,
            last_agent_activity_at: t.last_agent_activity_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email.to_string(),
            name: u.name,
            role: u.role,
            organisation_id: u.organisation_id,
            active: u.active,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CommentView {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author_id: Option<UserId>,
    pub body: String,
    pub internal: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id,
            ticket_id: c.ticket_id,
            author_id: c.author_id,
            body: c.body,
            internal: c.internal,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    pub id: i64,
    pub actor_id: Option<UserId>,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        Self { id: h.id, actor_id: h.actor_id, at: h.at, field: h.field, old: h.old_value, new: h.new_value }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub support_level: SupportLevel,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self { id: g.id, name: g.name, support_level: g.support_level }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrganisationView {
    pub id: OrganisationId,
    pub name: String,
    pub shares_tickets: bool,
}

impl From<Organisation> for OrganisationView {
    fn from(o: Organisation) -> Self {
        Self { id: o.id, name: o.name, shares_tickets: o.shares_tickets }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CategoryView {
    pub id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub name: String,
}

impl From<Category> for CategoryView {
    fn from(c: Category) -> Self {
        Self { id: c.id, parent_id: c.parent_id, name: c.name }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TimeEntryView {
    pub id: TimeEntryId,
    pub user_id: UserId,
    pub minutes: i64,
    pub note: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<ferrodesk_store::TimeEntry> for TimeEntryView {
    fn from(e: ferrodesk_store::TimeEntry) -> Self {
        Self { id: e.id, user_id: e.user_id, minutes: e.minutes, note: e.note, created_at: e.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomFieldView {
    pub id: CustomFieldId,
    pub key: String,
    pub label: String,
    pub kind: ferrodesk_core::custom_field::FieldKind,
    pub options: Vec<String>,
    pub required: bool,
    pub ticket_types: Vec<TicketType>,
}

impl From<ferrodesk_core::custom_field::CustomFieldDef> for CustomFieldView {
    fn from(d: ferrodesk_core::custom_field::CustomFieldDef) -> Self {
        Self {
            id: d.id,
            key: d.key,
            label: d.label,
            kind: d.kind,
            options: d.options,
            required: d.required,
            ticket_types: d.ticket_types,
        }
    }
}
