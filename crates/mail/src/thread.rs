//! Threading tokens. Our outgoing Message-IDs carry an HMAC of the ticket number, so a reply
//! naming one is matched even without a lookup, and a forged one (right shape, wrong MAC) is
//! recognised and not trusted. Subject tokens (`[#1042]`) are only a hint: the ingest trusts
//! them only when the sender takes part in that ticket.

use ferrodesk_core::ids::TicketNumber;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "fd.";
/// Mail about an internal note: an answer to it stays internal. Under the MAC like the rest,
/// so nobody can turn a note's thread public (or a public one internal) by editing the id.
const NOTE_PREFIX: &str = "fdn.";
/// 96 bits of MAC: unforgeable in practice, short enough for a header.
const MAC_BYTES: usize = 12;

/// What a Message-ID tells about us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OurId {
    /// Not in our format: someone else's message.
    Foreign,
    /// Ours, for this ticket; `internal` when it was mail about an internal note.
    Ticket { number: TicketNumber, internal: bool },
    /// In our format but not signed by us: forged, or another Ferrodesk's.
    Forged,
}

/// Makes and checks our Message-IDs. The key is per instance (stored in the database, so
/// every server process signs alike).
#[derive(Clone)]
pub struct MessageIdSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for MessageIdSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageIdSigner").finish_non_exhaustive()
    }
}

impl MessageIdSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = crate::keys::hmac(&self.key);
        mac.update(body.as_bytes());
        mac
    }

    /// A new Message-ID (without angle brackets) for mail about `ticket`, at `domain` (the
    /// sending mailbox's); `nonce` makes it unique (e.g. the job id: a retried send keeps it).
    /// `internal` marks mail about an internal note.
    pub fn message_id(&self, ticket: TicketNumber, internal: bool, nonce: &str, domain: &str) -> String {
        let prefix = if internal { NOTE_PREFIX } else { PREFIX };
        let body = format!("{prefix}{}.{nonce}", ticket.0);
        let tag = self.mac(&body).finalize().into_bytes();
        format!("{body}.{}@{domain}", hex::encode(&tag[..MAC_BYTES]))
    }

    /// Reads a Message-ID (without angle brackets). The MAC is compared in constant time.
    pub fn verify(&self, id: &str) -> OurId {
        let local = id.split('@').next().unwrap_or_default();
        let (prefix, internal) = match local {
            l if l.starts_with(PREFIX) => (PREFIX, false),
            l if l.starts_with(NOTE_PREFIX) => (NOTE_PREFIX, true),
            _ => return OurId::Foreign,
        };
        let Some((body, tag)) = local.rsplit_once('.') else { return OurId::Foreign };
        let number = body[prefix.len()..].split('.').next().and_then(|n| n.parse::<i64>().ok());
        let (Some(number), Ok(tag)) = (number, hex::decode(tag)) else { return OurId::Foreign };
        if tag.len() != MAC_BYTES {
            return OurId::Forged;
        }
        match self.mac(body).verify_truncated_left(&tag) {
            Ok(()) => OurId::Ticket { number: TicketNumber(number), internal },
            Err(_) => OurId::Forged,
        }
    }
}

impl MessageIdSigner {
    /// The mail job a Message-ID of ours names (its nonce), when the MAC verifies: each job is
    /// one mail to one person, so a reply naming it answers that person's copy.
    pub fn sent_job(&self, id: &str) -> Option<(TicketNumber, uuid::Uuid)> {
        let OurId::Ticket { number, .. } = self.verify(id) else { return None };
        let local = id.split('@').next().unwrap_or_default();
        let (body, _) = local.rsplit_once('.')?;
        let nonce = body.split('.').nth(2)?;
        Some((number, uuid::Uuid::try_parse(nonce).ok()?))
    }
}

/// The ticket number in a subject token like `[#1042]`, if any.
pub fn subject_ticket_number(subject: &str) -> Option<TicketNumber> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(']') && digits.len() <= 15 {
            return digits.parse().ok().map(TicketNumber);
        }
        rest = after;
    }
    None
}

/// The subject of our mail about a ticket: the token first, so that clients that truncate
/// still keep it, and any existing token or reply prefixes removed.
pub fn subject_with_token(number: TicketNumber, subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_lowercase();
        if let Some(p) = ["re:", "aw:", "fw:", "fwd:", "wg:", "sv:", "tr:"].iter().find(|p| lower.starts_with(**p)) {
            s = s[p.len()..].trim_start();
        } else if lower.starts_with("[#") {
            match s.find(']') {
                Some(end) => s = s[end + 1..].trim_start(),
                None => break,
            }
        } else {
            break;
        }
    }
    format!("[#{}] {s}", number.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_ids_verify_and_forgeries_do_not() {
        let signer = MessageIdSigner::new(b"instance key");
        let id = signer.message_id(TicketNumber(1042), false, "r4nd0m", "desk.example");
        assert!(id.ends_with("@desk.example"));
        assert_eq!(signer.verify(&id), OurId::Ticket { number: TicketNumber(1042), internal: false });
        // A note's mail is marked, and the mark cannot be removed (or added) without the key.
        let note = signer.message_id(TicketNumber(1042), true, "r4nd0m", "desk.example");
        assert_eq!(signer.verify(&note), OurId::Ticket { number: TicketNumber(1042), internal: true });
        assert_eq!(signer.verify(&note.replacen("fdn.", "fd.", 1)), OurId::Forged);
        assert_eq!(signer.verify(&id.replacen("fd.", "fdn.", 1)), OurId::Forged);
        // Another ticket number with the same MAC, another instance's key, a broken MAC.
        assert_eq!(signer.verify(&id.replace("fd.1042.", "fd.1043.")), OurId::Forged);
        assert_eq!(MessageIdSigner::new(b"other key").verify(&id), OurId::Forged);
        let (local, domain) = id.split_once('@').unwrap_or_default();
        let flipped = format!("{}0@{domain}", &local[..local.len() - 1]);
        assert_ne!(signer.verify(&flipped), OurId::Ticket { number: TicketNumber(1042), internal: false });
        assert_eq!(signer.verify("CAKsfaBW4hj0Gek6@mail.gmail.com"), OurId::Foreign);
        assert_eq!(signer.verify("fd.x.y@z"), OurId::Foreign);
    }

    #[test]
    fn our_ids_name_the_mail_job_they_were_sent_by() {
        let signer = MessageIdSigner::new(b"instance key");
        let job = uuid::Uuid::now_v7();
        let id = signer.message_id(TicketNumber(7), false, &job.simple().to_string(), "desk.example");
        assert_eq!(signer.sent_job(&id), Some((TicketNumber(7), job)));
        let note = signer.message_id(TicketNumber(7), true, &job.simple().to_string(), "desk.example");
        assert_eq!(signer.sent_job(&note), Some((TicketNumber(7), job)));
        // Another job's id under the old MAC is a forgery; a nonce that is no job names none.
        let other = uuid::Uuid::now_v7().simple().to_string();
        assert_eq!(signer.sent_job(&id.replace(&job.simple().to_string(), &other)), None);
        assert_eq!(signer.sent_job(&signer.message_id(TicketNumber(7), false, "r4nd0m", "d.example")), None);
    }

    #[test]
    fn subject_tokens() {
        assert_eq!(subject_ticket_number("Re: [#1042] Printer"), Some(TicketNumber(1042)));
        assert_eq!(subject_ticket_number("[# 1042] [#abc] no"), None);
        assert_eq!(subject_ticket_number("x [#7]"), Some(TicketNumber(7)));
        assert_eq!(subject_with_token(TicketNumber(9), "RE: AW: [#9] Printer"), "[#9] Printer");
    }
}
