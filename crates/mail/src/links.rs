//! Signed links in mail that act on a ticket without signing in ("confirm it is solved",
//! "reopen it"): the ticket, the action and an expiry, under an HMAC with the instance's key.
//! Opening a link shows a page; only its form's POST acts (a GET never changes anything).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrodesk_core::ids::TicketId;
use ferrodesk_store::{Store, StoreError};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

use crate::secret::SecretBox;

pub const LINK_SECRET: &str = "ticket-links";
/// How long a link in a "resolved" mail works.
pub const LINK_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(14 * 24);

/// What a link may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Confirm,
    Reopen,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Confirm => "confirm",
            LinkAction::Reopen => "reopen",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confirm" => Some(LinkAction::Confirm),
            "reopen" => Some(LinkAction::Reopen),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct TicketLinks {
    key: Vec<u8>,
}

impl TicketLinks {
    pub async fn load(store: &Arc<dyn Store>, secrets: Option<&SecretBox>) -> Result<Self, StoreError> {
        Ok(Self { key: crate::keys::instance_key(store, secrets, LINK_SECRET).await? })
    }

    fn mac(&self, ticket: TicketId, action: LinkAction, expires: i64) -> Hmac<Sha256> {
        let mut m = crate::keys::hmac(&self.key);
        m.update(format!("{}:{}:{expires}", ticket.0, action.as_str()).as_bytes());
        m
    }

    /// The query string of a link (`t`, `a`, `e`, `s`), valid until `now + LINK_LIFETIME`.
    pub fn query(&self, ticket: TicketId, action: LinkAction, now: Timestamp) -> String {
        let expires = now.checked_add(LINK_LIFETIME).unwrap_or(now).as_second();
        let sig = URL_SAFE_NO_PAD.encode(self.mac(ticket, action, expires).finalize().into_bytes());
        format!("t={}&a={}&e={expires}&s={sig}", ticket.0, action.as_str())
    }

    /// Checks a link's parts: the MAC (constant time) and the expiry.
    pub fn verify(&self, ticket: TicketId, action: LinkAction, expires: i64, sig: &str, now: Timestamp) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        now.as_second() <= expires && self.mac(ticket, action, expires).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(q: &str) -> Vec<String> {
        q.split('&').map(|p| p.split_once('=').map(|(_, v)| v.to_owned()).unwrap_or_default()).collect()
    }

    #[test]
    fn links_verify_only_unchanged_and_in_time() {
        let links = TicketLinks { key: vec![9; 32] };
        let ticket = TicketId::generate();
        let now = Timestamp::UNIX_EPOCH;
        let p = parts(&links.query(ticket, LinkAction::Confirm, now));
        let expires: i64 = p[2].parse().unwrap_or_default();
        assert!(links.verify(ticket, LinkAction::Confirm, expires, &p[3], now));
        assert!(!links.verify(ticket, LinkAction::Reopen, expires, &p[3], now), "another action");
        assert!(!links.verify(TicketId::generate(), LinkAction::Confirm, expires, &p[3], now), "another ticket");
        assert!(!links.verify(ticket, LinkAction::Confirm, expires + 1, &p[3], now), "a longer life");
        let late = now.checked_add(LINK_LIFETIME + jiff::SignedDuration::from_secs(1)).unwrap_or(now);
        assert!(!links.verify(ticket, LinkAction::Confirm, expires, &p[3], late), "expired");
        assert!(!TicketLinks { key: vec![8; 32] }.verify(ticket, LinkAction::Confirm, expires, &p[3], now));
    }
}
