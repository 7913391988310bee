//! Domain errors. Each variant has a stable snake_case code that the HTTP edge maps to a status.

/// A rule of the domain was broken by the requested change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field value failed validation (`field`, human-readable reason).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The status change is not allowed by the ticket lifecycle.
    #[error("a ticket cannot go from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    /// The ticket is closed (or merged) and accepts no further change of this kind.
    #[error("ticket is closed")]
    TicketClosed,
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The stable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "validation_failed",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::TicketClosed => "ticket_closed",
        }
    }
}
