//! E-mail channel vocabulary: what happened to an inbound message, where it came from, and
//! the rules for mailbox names.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::priority::text_enum;

text_enum!(/// What became of an inbound message. Every message is stored `pending` first. `held`:
/// kept on its ticket as an internal note until an agent accepts it as its sender's message
/// or discards it, because it did not prove who sent it.
InboundStatus {
    Pending = "pending",
    Processed = "processed",
    Ignored = "ignored",
    Duplicate = "duplicate",
    Quarantined = "quarantined",
    Discarded = "discarded",
    Held = "held",
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

/// The largest message a mailbox takes unless its admin says otherwise: larger ones are kept
/// in the quarantine, unread, and their sender is told.
pub const DEFAULT_MAX_MESSAGE_BYTES: i64 = 50 * 1024 * 1024;

/// The most a mailbox may be set to take, and what the relay endpoint and the pipe accept at
/// all (a larger message is refused before it is read, so memory stays bounded).
pub const MAX_MESSAGE_BYTES: i64 = 256 * 1024 * 1024;

/// Checks a mailbox's message size limit: 1 MiB to [`MAX_MESSAGE_BYTES`].
pub fn validate_max_message_bytes(bytes: i64) -> Result<i64, DomainError> {
    if (1024 * 1024..=MAX_MESSAGE_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(DomainError::invalid("max_message_bytes", format!("1 MiB to {} MiB", MAX_MESSAGE_BYTES / 1024 / 1024)))
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

text_enum!(/// How to reach an IMAP server.
    ImapSecurity { Tls = "tls", Starttls = "starttls", Plain = "plain" });

text_enum!(/// What to do with a message in the IMAP folder once it is safely stored.
    AfterProcessing { Seen = "seen", Move = "move" });

/// Where and how a mailbox is read over IMAP. The password is kept sealed (see the mail
/// crate's `secret`), never here in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    /// The sealed password (`v1:…`), if one is set.
    pub password_sealed: Option<String>,
    pub folder: String,
    pub poll_seconds: i64,
    pub after: AfterProcessing,
    pub move_to: Option<String>,
}

impl ImapSettings {
    /// Checks the settings; unencrypted IMAP only to this machine (nothing crosses a network).
    pub fn validate(&self) -> Result<(), DomainError> {
        let host = self.host.trim();
        if host.is_empty()
            || host.len() > 253
            || host.chars().any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
        {
            return Err(DomainError::invalid("imap.host", "a host name or address"));
        }
        if self.port == 0 {
            return Err(DomainError::invalid("imap.port", "1 to 65535"));
        }
        if self.security == ImapSecurity::Plain && !matches!(host, "localhost" | "127.0.0.1" | "::1") {
            return Err(DomainError::invalid(
                "imap.security",
                "unencrypted IMAP is only allowed to localhost; use tls or starttls",
            ));
        }
        if self.username.trim().is_empty() || self.username.len() > 320 || self.username.chars().any(char::is_control) {
            return Err(DomainError::invalid("imap.username", "must not be empty"));
        }
        let folder_ok =
            |f: &str| !f.trim().is_empty() && f.len() <= 200 && !f.chars().any(|c| c.is_control() || c == '"');
        if !folder_ok(&self.folder) {
            return Err(DomainError::invalid("imap.folder", "a folder name without quotes or control characters"));
        }
        if !(10..=86_400).contains(&self.poll_seconds) {
            return Err(DomainError::invalid("imap.poll_seconds", "10 to 86400"));
        }
        match (&self.after, &self.move_to) {
            (AfterProcessing::Move, Some(f)) if folder_ok(f) && f != &self.folder => Ok(()),
            (AfterProcessing::Move, _) => {
                Err(DomainError::invalid("imap.move_to", "moving needs a folder other than the one read"))
            }
            (AfterProcessing::Seen, _) => Ok(()),
        }
    }
}

/// What the poller remembers about a mailbox's IMAP folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapState {
    pub uidvalidity: Option<i64>,
    /// The highest UID already stored.
    pub last_uid: Option<i64>,
    pub last_poll_at: Option<jiff::Timestamp>,
    pub last_error: Option<String>,
}

/// Which sender domains may open tickets by mail. Deny wins; a non-empty allow list admits only
/// its domains. A domain also covers its subdomains (`example.org` covers `it.example.org`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SenderPolicy {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl SenderPolicy {
    /// Lower-cases, trims and checks the domains (at most 1,000 in each list).
    pub fn validated(self) -> Result<Self, DomainError> {
        let clean = |field: &str, list: Vec<String>| -> Result<Vec<String>, DomainError> {
            if list.len() > 1000 {
                return Err(DomainError::invalid(field, "at most 1000 domains"));
            }
            let mut out: Vec<String> = Vec::with_capacity(list.len());
            for d in list {
                let d = d.trim().trim_start_matches('@').trim_end_matches('.').to_lowercase();
                if d.is_empty() {
                    continue;
                }
                let ok = d.len() <= 253
                    && d.contains('.')
                    && d.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if !ok {
                    return Err(DomainError::invalid(field, format!("{d:?} is not a domain like example.org")));
                }
                if !out.contains(&d) {
                    out.push(d);
                }
            }
            Ok(out)
        };
        Ok(Self { allow: clean("mail_senders.allow", self.allow)?, deny: clean("mail_senders.deny", self.deny)? })
    }

    /// Whether mail from `address` may open tickets; `Err` says why not.
    pub fn admits(&self, address: &str) -> Result<(), &'static str> {
        let domain = address.rsplit('@').next().unwrap_or_default().to_lowercase();
        let covers = |d: &String| domain == *d || domain.ends_with(&format!(".{d}"));
        if self.deny.iter().any(covers) {
            return Err("the sender's domain is on the deny list");
        }
        if !self.allow.is_empty() && !self.allow.iter().any(covers) {
            return Err("the sender's domain is not on the allow list");
        }
        Ok(())
    }
}

/// Whose word about a sender the desk takes: the authserv-ids (RFC 8601) of the mail servers
/// that receive our mail and write `Authentication-Results` (DMARC, DKIM) into it. Empty (the
/// default): no header is believed, and only answers to our own mail prove a sender.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailTrust {
    #[serde(default)]
    pub authserv_ids: Vec<String>,
}

impl MailTrust {
    /// Trims and checks the ids (at most 20; each a host name or token without spaces or `;`).
    pub fn validated(self) -> Result<Self, DomainError> {
        const FIELD: &str = "mail_trust.authserv_ids";
        if self.authserv_ids.len() > 20 {
            return Err(DomainError::invalid(FIELD, "at most 20 ids"));
        }
        let mut out: Vec<String> = Vec::new();
        for id in self.authserv_ids {
            let id = id.trim().to_ascii_lowercase();
            if id.is_empty() {
                continue;
            }
            let ok = id.len() <= 253 && id.chars().all(|c| c.is_ascii_graphic() && !";()\"\\".contains(c));
            if !ok {
                return Err(DomainError::invalid(FIELD, format!("{id:?} is not an authserv-id like mx.example.org")));
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(Self { authserv_ids: out })
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn deny_wins_and_allow_covers_subdomains() {
        let p = SenderPolicy { allow: vec!["customer.example".into()], deny: vec!["bad.customer.example".into()] }
            .validated()
            .unwrap_or_default();
        assert!(p.admits("ann@customer.example").is_ok());
        assert!(p.admits("bob@it.customer.example").is_ok());
        assert!(p.admits("eve@bad.customer.example").is_err());
        assert!(p.admits("x@notcustomer.example").is_err(), "a suffix is not a subdomain");
        assert!(p.admits("x@other.example").is_err());
        assert!(SenderPolicy::default().admits("anyone@anywhere.example").is_ok());
        assert!(SenderPolicy { allow: vec!["not a domain".into()], deny: vec![] }.validated().is_err());
        assert_eq!(
            SenderPolicy { allow: vec![" @Example.ORG. ".into()], deny: vec![] }.validated().map(|p| p.allow),
            Ok(vec!["example.org".to_owned()])
        );
    }

    #[test]
    fn authserv_ids_are_tokens() {
        let ok = MailTrust { authserv_ids: vec![" MX.Example.org ".into(), "".into(), "mx.example.org".into()] };
        assert_eq!(ok.validated().map(|t| t.authserv_ids), Ok(vec!["mx.example.org".to_owned()]));
        for bad in ["mx example", "mx;dmarc=pass", "mx(x)", "mx\u{0}"] {
            assert!(MailTrust { authserv_ids: vec![bad.into()] }.validated().is_err(), "{bad}");
        }
    }
}
