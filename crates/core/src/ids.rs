//! Identifier newtypes. Internally every entity has a UUIDv7; tickets also have a short number.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(/// A ticket's internal identifier.
    TicketId);
id_type!(/// A user's identifier (agents, requesters and admins alike).
    UserId);
id_type!(/// A support group's identifier.
    GroupId);
id_type!(/// An organisation's (department or customer) identifier.
    OrganisationId);
id_type!(/// A category's identifier.
    CategoryId);
id_type!(/// A comment's identifier (public reply or internal note).
    CommentId);
id_type!(/// An API token's identifier (not the secret).
    TokenId);
id_type!(/// A custom field definition's identifier.
    CustomFieldId);
id_type!(/// An attachment's identifier.
    AttachmentId);
id_type!(/// A browser session's public identifier (not its secret).
    SessionId);
id_type!(/// A time entry's identifier.
    TimeEntryId);

/// The short, sequential, human ticket number shown as `#1042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct TicketNumber(pub i64);

impl std::fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a client names a ticket in a URL: by its UUID or by its number (`1042` or `#1042`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRef {
    Id(TicketId),
    Number(TicketNumber),
}

impl TicketRef {
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(id) = s.parse::<TicketId>() {
            return Some(Self::Id(id));
        }
        let digits = s.strip_prefix('#').unwrap_or(s);
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok().map(|n| Self::Number(TicketNumber(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_refs_parse_ids_and_numbers_and_refuse_junk() {
        assert_eq!(TicketRef::parse("1042"), Some(TicketRef::Number(TicketNumber(1042))));
        assert_eq!(TicketRef::parse("#7"), Some(TicketRef::Number(TicketNumber(7))));
        let id = TicketId::generate();
        assert_eq!(TicketRef::parse(&id.to_string()), Some(TicketRef::Id(id)));
        for junk in ["", "#", "-1", "1;--", "12a", "99999999999999999999", "(SELECT 1)"] {
            assert_eq!(TicketRef::parse(junk), None, "{junk}");
        }
    }
}
