//! How much a message proves about its sender, and what that lets it do. Pure: the ingest
//! gathers the facts (the trusted `Authentication-Results`, whether a Message-ID it answers
//! was our mail to that very person, the access rule's answer) and these functions decide.
//!
//! The `From:` header alone proves nothing: anyone can write any address there. A message
//! proves its sender when
//! - it answers mail we sent to that person (our signed Message-ID names the mail job, whose
//!   recipient is known): only someone who received our mail can reply to it; or
//! - the receiving MTA, under an authserv-id the admin trusts, says DMARC passed for the
//!   `From:` domain, or a DKIM signature of exactly that domain verified.
//!
//! A DMARC failure outweighs everything else. Mail that proves nothing may still open a new
//! ticket (as anyone may), but never speaks as someone on an existing ticket: it is held.

use ferrodesk_core::ids::{OrganisationId, UserId};

/// How a sender was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The message answers our mail to that person.
    Recipient,
    /// The receiving MTA reported `dmarc=pass` for the `From:` domain.
    Dmarc,
    /// The receiving MTA reported a verified DKIM signature of the `From:` domain itself.
    Dkim,
    /// An agent looked at the held message and accepted it as the person's.
    Agent,
}

/// What a message proves about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderTrust {
    Verified(Proof),
    /// Nothing either way.
    Unproven,
    /// The receiving MTA reported that DMARC failed: the `From:` is very likely forged.
    FailsDmarc,
}

impl SenderTrust {
    pub fn is_verified(self) -> bool {
        matches!(self, SenderTrust::Verified(_))
    }

    /// Combines what the headers say with whether the message answers our mail to the sender:
    /// a DMARC failure wins, then any proof.
    pub fn combine(reported: Option<SenderTrust>, answers_our_mail_to_sender: bool) -> SenderTrust {
        match (reported, answers_our_mail_to_sender) {
            (Some(SenderTrust::FailsDmarc), _) => SenderTrust::FailsDmarc,
            (_, true) => SenderTrust::Verified(Proof::Recipient),
            (Some(t), false) => t,
            (None, false) => SenderTrust::Unproven,
        }
    }
}

/// What the receiving MTA reported, read from the topmost `Authentication-Results` header
/// whose authserv-id is one the admin trusts (headers with other ids can be written by anyone;
/// the MTA is expected to remove forged ones bearing its own id, RFC 8601 §5). `None` when no
/// trusted header says anything about the `From:` domain.
pub fn reported_by_mta(headers: &[String], trusted_ids: &[String], from_domain: &str) -> Option<SenderTrust> {
    let from_domain = from_domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let header = headers.iter().map(|h| without_comments(h)).find(|h| {
        let id = h.split(';').next().unwrap_or_default().split_whitespace().next().unwrap_or_default();
        !id.is_empty() && trusted_ids.iter().any(|t| t.eq_ignore_ascii_case(id))
    })?;
    let mut dkim_aligned = false;
    for result in header.split(';').skip(1) {
        let mut words = result.split_whitespace();
        let Some((method, outcome)) = words.next().and_then(|w| w.split_once('=')) else { continue };
        let property = |name: &str| {
            result.split_whitespace().find_map(|w| {
                let (k, v) = w.split_once('=')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim_matches('"').trim_end_matches('.').to_ascii_lowercase())
            })
        };
        let method = method.to_ascii_lowercase();
        let outcome = outcome.to_ascii_lowercase();
        if method == "dmarc" {
            // A result about another domain than the From: we read says nothing about it.
            if property("header.from").is_some_and(|d| d != from_domain) {
                continue;
            }
            match outcome.as_str() {
                "pass" => return Some(SenderTrust::Verified(Proof::Dmarc)),
                "fail" => return Some(SenderTrust::FailsDmarc),
                _ => {}
            }
        } else if method == "dkim" && outcome == "pass" {
            let signer = property("header.d")
                .or_else(|| property("header.i").map(|i| i.rsplit('@').next().unwrap_or_default().to_owned()));
            dkim_aligned |= signer.is_some_and(|d| d == from_domain);
        }
    }
    dkim_aligned.then_some(SenderTrust::Verified(Proof::Dkim))
}

/// A header value unfolded, with RFC 5322 comments (nested parentheses, quoted pairs) removed.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if depth > 0 => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            '\r' | '\n' | '\t' if depth == 0 => out.push(' '),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The facts a reply to an existing ticket is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFacts {
    pub trust: SenderTrust,
    /// The access rule lets the sender add this kind of comment (a reply, or a note for staff
    /// marking it internal) to the ticket.
    pub may_comment: bool,
    /// An auto-reply or bounce: kept as a note without an author, whoever it claims to be.
    pub machine: bool,
}

/// Why a reply is held for an agent instead of added as its sender's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    Unproven,
    FailsDmarc,
    /// The verified sender may not comment on this ticket.
    NoAccess,
}

impl HoldReason {
    /// Plain words for the note agents read.
    pub fn explained(self) -> &'static str {
        match self {
            HoldReason::Unproven => {
                "nothing in it proves who sent it (it answers none of our mail to that address, \
                 and the receiving mail server vouched for nothing)"
            }
            HoldReason::FailsDmarc => {
                "the receiving mail server reports that it failed DMARC: the sender address is \
                 very likely forged"
            }
            HoldReason::NoAccess => "the sender may not take part in this ticket",
        }
    }
}

/// What a reply to an existing ticket becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyDecision {
    /// A note without an author (machines' mail); changes nothing else.
    MachineNote,
    /// A comment by the sender, with everything such a comment does (mail to the others,
    /// status, copied people as watchers).
    AsSender,
    /// An internal note "unverified message claiming to be …" for an agent to accept or
    /// discard; it mails nobody, changes no status, adds no watcher.
    Hold(HoldReason),
}

/// The rule for a reply to an existing ticket.
pub fn decide_reply(f: ReplyFacts) -> ReplyDecision {
    match f {
        ReplyFacts { machine: true, .. } => ReplyDecision::MachineNote,
        ReplyFacts { trust: SenderTrust::Verified(Proof::Agent), .. } => ReplyDecision::AsSender,
        ReplyFacts { trust: SenderTrust::FailsDmarc, .. } => ReplyDecision::Hold(HoldReason::FailsDmarc),
        ReplyFacts { trust: SenderTrust::Unproven, .. } => ReplyDecision::Hold(HoldReason::Unproven),
        ReplyFacts { trust: SenderTrust::Verified(_), may_comment: false, .. } => {
            ReplyDecision::Hold(HoldReason::NoAccess)
        }
        ReplyFacts { trust: SenderTrust::Verified(_), may_comment: true, .. } => ReplyDecision::AsSender,
    }
}

/// A person copied on a message: a user already known, or only an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedPerson {
    pub user: Option<UserId>,
    pub email: String,
    pub name: Option<String>,
    pub organisation_id: Option<OrganisationId>,
}

/// Which copied people become watchers at once, and which wait for an agent: only a verified
/// sender taking part in the ticket copies anyone in, and never across the ticket's
/// organisation (a person of another organisation, or of none when the ticket has one).
pub fn copied_watchers(
    sender_verified_participant: bool,
    ticket_organisation: Option<OrganisationId>,
    people: Vec<CopiedPerson>,
) -> (Vec<CopiedPerson>, Vec<CopiedPerson>) {
    if !sender_verified_participant {
        return (vec![], people);
    }
    people.into_iter().partition(|p| p.organisation_id == ticket_organisation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUSTED: &str = "mx.desk.example";

    fn reported(header: &str, from_domain: &str) -> Option<SenderTrust> {
        reported_by_mta(&[header.to_owned()], &[TRUSTED.to_owned()], from_domain)
    }

    #[test]
    fn authentication_results_are_read_only_from_a_trusted_id() {
        let cases: &[(&str, &str, Option<SenderTrust>)] = &[
            (
                "mx.desk.example; dmarc=pass header.from=customer.example",
                "customer.example",
                Some(SenderTrust::Verified(Proof::Dmarc)),
            ),
            // Folded, with comments and a version, upper case.
            (
                "MX.desk.example 1;\r\n\tspf=pass smtp.mailfrom=customer.example;\r\n\tDMARC=PASS (p=reject dis=none) header.from=Customer.Example",
                "customer.example",
                Some(SenderTrust::Verified(Proof::Dmarc)),
            ),
            (
                "mx.desk.example; dmarc=fail (p=reject) header.from=customer.example",
                "customer.example",
                Some(SenderTrust::FailsDmarc),
            ),
            // Anyone can write a header with another id.
            ("evil.example; dmarc=pass header.from=customer.example", "customer.example", None),
            // A pass for another domain says nothing about this From.
            ("mx.desk.example; dmarc=pass header.from=evil.example", "customer.example", None),
            // DKIM of exactly the From domain; a signature of another domain is not alignment.
            (
                "mx.desk.example; dkim=pass header.d=customer.example header.s=k1; dmarc=none",
                "customer.example",
                Some(SenderTrust::Verified(Proof::Dkim)),
            ),
            ("mx.desk.example; dkim=pass header.d=bulkmailer.example", "customer.example", None),
            (
                "mx.desk.example; dkim=pass header.i=@customer.example",
                "customer.example",
                Some(SenderTrust::Verified(Proof::Dkim)),
            ),
            ("mx.desk.example; dkim=fail header.d=customer.example", "customer.example", None),
            // The comment is not the result.
            (
                "mx.desk.example; dmarc=none (would be dmarc=pass) header.from=customer.example",
                "customer.example",
                None,
            ),
            ("mx.desk.example; none", "customer.example", None),
            ("", "customer.example", None),
            (";;;=;", "customer.example", None),
        ];
        for (header, domain, expected) in cases {
            assert_eq!(reported(header, domain), *expected, "{header}");
        }
    }

    #[test]
    fn the_topmost_trusted_header_counts() {
        // The MTA's own result is on top; a forged one with the same id below it is not read.
        let headers = vec![
            "other.example; dmarc=pass header.from=customer.example".to_owned(),
            "mx.desk.example; dmarc=fail header.from=customer.example".to_owned(),
            "mx.desk.example; dmarc=pass header.from=customer.example".to_owned(),
        ];
        assert_eq!(reported_by_mta(&headers, &[TRUSTED.to_owned()], "customer.example"), Some(SenderTrust::FailsDmarc));
        assert_eq!(reported_by_mta(&headers, &[], "customer.example"), None, "nothing is trusted by default");
    }

    #[test]
    fn comments_nest_and_quote() {
        assert_eq!(without_comments("a (b (c) \\) d) e"), "a  e");
        assert_eq!(without_comments("x\r\n\ty"), "x   y");
        let deep = format!("{}dmarc=pass{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(without_comments(&deep), "");
    }

    #[test]
    fn a_dmarc_failure_outweighs_answering_our_mail() {
        use SenderTrust::*;
        assert_eq!(SenderTrust::combine(Some(FailsDmarc), true), FailsDmarc);
        assert_eq!(SenderTrust::combine(None, true), Verified(Proof::Recipient));
        assert_eq!(SenderTrust::combine(Some(Verified(Proof::Dmarc)), false), Verified(Proof::Dmarc));
        assert_eq!(SenderTrust::combine(None, false), Unproven);
    }

    #[test]
    fn replies_speak_as_their_sender_only_when_verified_and_allowed() {
        use ReplyDecision::*;
        use SenderTrust::*;
        let table = [
            // trust, may comment, machine → decision
            (Verified(Proof::Recipient), true, false, AsSender),
            (Verified(Proof::Dmarc), true, false, AsSender),
            (Verified(Proof::Dkim), true, false, AsSender),
            (Verified(Proof::Recipient), false, false, Hold(HoldReason::NoAccess)),
            (Unproven, true, false, Hold(HoldReason::Unproven)),
            (Unproven, false, false, Hold(HoldReason::Unproven)),
            (FailsDmarc, true, false, Hold(HoldReason::FailsDmarc)),
            // An agent's acceptance stands for the proof, whatever the access rule says.
            (Verified(Proof::Agent), false, false, AsSender),
            // Machines' mail is a note whatever it claims.
            (Unproven, false, true, MachineNote),
            (Verified(Proof::Dmarc), true, true, MachineNote),
        ];
        for (trust, may_comment, machine, expected) in table {
            assert_eq!(decide_reply(ReplyFacts { trust, may_comment, machine }), expected, "{trust:?} {may_comment}");
        }
    }

    #[test]
    fn copied_people_cross_no_organisation_and_need_a_verified_participant() {
        let org = Some(OrganisationId::generate());
        let person = |organisation_id| CopiedPerson {
            user: Some(UserId::generate()),
            email: "x@y.example".into(),
            name: None,
            organisation_id,
        };
        let (same, other, none) = (person(org), person(Some(OrganisationId::generate())), person(None));
        let people = vec![same.clone(), other.clone(), none.clone()];
        assert_eq!(copied_watchers(true, org, people.clone()), (vec![same.clone()], vec![other.clone(), none.clone()]));
        assert_eq!(copied_watchers(false, org, people.clone()), (vec![], people.clone()));
        // A ticket of no organisation takes people of none.
        assert_eq!(copied_watchers(true, None, people), (vec![none], vec![same, other]));
    }
}
