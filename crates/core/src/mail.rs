//! E-mail channel vocabulary: what happened to an inbound message, where it came from, and
//! the rules for mailbox names.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::priority::text_enum;

text_enum!(/// What became of an inbound message. Every message is stored `pending` first.
InboundStatus {
    Pending = "pending",
    Processed = "processed",
    Ignored = "ignored",
    Duplicate = "duplicate",
    Quarantined = "quarantined",
    Discarded = "discarded",
});

text_enum!(/// How a message reached us.
    InboundSource { Pipe = "pipe", Http = "http", Imap = "imap" });

impl InboundStatus {
    /// An admin may send a message through processing again (after fixing the cause).
    pub fn can_retry(self) -> bool {
        matches!(self, InboundStatus::Quarantined | InboundStatus::Pending)
    }

    /// An admin may give up on a message (it stays stored, marked discarded).
    pub fn can_discard(self) -> bool {
        matches!(self, InboundStatus::Quarantined)
    }
}

/// Mailbox names are used on the command line (`--mailbox NAME`): 1–64 characters of
/// lower-case letters, digits, `.`, `_` and `-`.
pub fn validate_mailbox_name(name: &str) -> Result<String, DomainError> {
    let n = name.trim();
    if n.is_empty() || n.len() > 64 {
        return Err(DomainError::invalid("name", "1 to 64 characters"));
    }
    if !n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)) {
        return Err(DomainError::invalid("name", "only lower-case letters, digits, '.', '_' and '-'"));
    }
    Ok(n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        assert_eq!(validate_mailbox_name(" support ").ok().as_deref(), Some("support"));
        assert!(validate_mailbox_name("Support").is_err());
        assert!(validate_mailbox_name("a b").is_err());
        assert!(validate_mailbox_name("").is_err());
        assert!(validate_mailbox_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn only_quarantined_mail_is_retried_or_discarded() {
        assert!(InboundStatus::Quarantined.can_retry() && InboundStatus::Quarantined.can_discard());
        assert!(!InboundStatus::Processed.can_retry() && !InboundStatus::Duplicate.can_discard());
    }
}
