//! The middle step of the ingest: gathered facts → what a message does. Pure, so every rule of
//! the e-mail channel (loops, sender lists, threads, machines, who a reply speaks as, internal
//! markers, flags) is one table of cases here; the ingest gathers the facts before and applies
//! the decision after, in one transaction.

use crate::classify::Automation;
use crate::trust::{HoldReason, ReplyDecision, ReplyFacts, SenderTrust, decide_reply};

/// What the ingest read about a message and its context.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub automation: &'a Automation,
    /// The `From:` address, if a usable one.
    pub from: Option<&'a str>,
    /// The `From:` is one of our own mailboxes (a loop).
    pub from_ours: bool,
    /// Why the sender-domain lists refuse the sender, if they do.
    pub sender_refused: Option<&'static str>,
    /// The sender is an active staff member (by the address, not yet proven).
    pub sender_is_staff: bool,
    pub trust: SenderTrust,
    /// The message answers an open ticket of ours; `None` when it answers none (or a closed
    /// one, whose answers open a new ticket).
    pub thread: Option<ThreadFacts>,
    /// It looks like another service's account verification (case B20).
    pub verification: bool,
    /// A calendar invitation or answer: its invitees are not copied in.
    pub invitation: bool,
    /// The visible text of the reply (quotes and signature cut).
    pub reply_text: &'a str,
    /// What marks a staff member's mailed reply as an internal note.
    pub internal_marker: &'a str,
}

impl<'a> Facts<'a> {
    /// A message from an unknown sender who proves nothing, answering no ticket of ours (how
    /// the corpus test and the fuzz target judge every message).
    pub fn from_stranger(mail: &'a crate::parse::InboundMail, reply_text: &'a str) -> Self {
        Facts {
            automation: &mail.automation,
            from: mail.from.as_ref().map(|f| f.address.as_str()),
            from_ours: false,
            sender_refused: None,
            sender_is_staff: false,
            trust: SenderTrust::Unproven,
            thread: None,
            verification: false,
            invitation: false,
            reply_text,
            internal_marker: "#internal",
        }
    }
}

/// The facts about the ticket a message answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadFacts {
    /// It answers our mail about an internal note (case B22).
    pub answers_a_note: bool,
    /// The access rule lets the sender reply publicly / add an internal note.
    pub sender_may_reply: bool,
    pub sender_may_note: bool,
    /// The sender is the requester or a watcher.
    pub sender_takes_part: bool,
}

/// What a message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Sent from our own address: stored, an admin is alerted, nothing else.
    FromOurselves,
    /// Kept for an admin, with why.
    Quarantine(String),
    /// Machines' mail about no ticket of ours: stored, nothing else.
    Ignore(&'static str),
    /// A new ticket by the sender; copied people may become watchers only when the sender is
    /// verified. Flagged when it looks like an account verification (then no acknowledgement).
    NewTicket { copy_in: bool, flagged: bool },
    /// A comment on the thread's ticket.
    Comment(CommentDecision),
}

/// A comment on an existing ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentDecision {
    pub kind: CommentKind,
    pub internal: bool,
    /// The comment's text (the marker removed; a flag or hold notice is added by the ingest).
    pub body: String,
    pub flagged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    /// By the sender, with all a comment does; `staff` answers count as staff answers;
    /// `copy_in`: people copied on it may become watchers.
    BySender { staff: bool, copy_in: bool },
    /// A machine's note without an author.
    MachineNote,
    /// Held as an internal note for an agent to accept or discard.
    Held(HoldReason),
}

/// The rules, in order.
pub fn decide(f: &Facts<'_>) -> Decision {
    let machine = matches!(f.automation, Automation::AutoReply { .. } | Automation::Bounce { .. });
    if f.from_ours {
        return Decision::FromOurselves;
    }
    // Staff pass the customers' sender lists, but only when proven to be staff.
    if let Some(why) = f.sender_refused
        && !(f.sender_is_staff && f.trust.is_verified())
    {
        return Decision::Quarantine(why.into());
    }
    // Machines' mail is useful without a sender (a bounce from a bare MAILER-DAEMON); people's
    // mail needs one.
    if f.from.is_none() && !machine {
        return Decision::Quarantine("the message has no usable sender address (From)".into());
    }
    let flagged = f.verification && !machine;
    let Some(thread) = f.thread else {
        return match f.automation {
            Automation::Bounce { .. } => Decision::Ignore("a delivery failure about no ticket of ours"),
            Automation::AutoReply { .. } => Decision::Ignore("an automatic reply about no ticket of ours"),
            _ => Decision::NewTicket { copy_in: f.trust.is_verified() && !flagged && !f.invitation, flagged },
        };
    };
    let marked = f.sender_is_staff && f.reply_text.trim_start().starts_with(f.internal_marker);
    let body = if marked {
        f.reply_text.trim_start()[f.internal_marker.len()..].trim_start().to_owned()
    } else {
        f.reply_text.to_owned()
    };
    // An answer to mail about a note is a note too, whoever sends it (case B22).
    let internal = marked || thread.answers_a_note || flagged;
    // Staff writing a note need the right to note; anyone else needs the right to reply (their
    // comment may still be made internal by the rules above).
    let may_comment = if internal && f.sender_is_staff { thread.sender_may_note } else { thread.sender_may_reply };
    let kind = match decide_reply(ReplyFacts { trust: f.trust, may_comment, machine }) {
        ReplyDecision::MachineNote => CommentKind::MachineNote,
        ReplyDecision::Hold(reason) => CommentKind::Held(reason),
        ReplyDecision::AsSender => CommentKind::BySender {
            staff: f.sender_is_staff,
            // Only those taking part copy others in (a stranger who learnt a Message-ID
            // cannot hand the ticket to more strangers), never with a flagged message.
            copy_in: (f.sender_is_staff || thread.sender_takes_part) && !flagged && !f.invitation,
        },
    };
    let internal = internal || !matches!(kind, CommentKind::BySender { .. });
    Decision::Comment(CommentDecision { kind, internal, body, flagged })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Proof;

    const VERIFIED: SenderTrust = SenderTrust::Verified(Proof::Recipient);

    fn facts<'a>(automation: &'a Automation, thread: Option<ThreadFacts>, text: &'a str) -> Facts<'a> {
        Facts {
            automation,
            from: Some("ann@customer.example"),
            from_ours: false,
            sender_refused: None,
            sender_is_staff: false,
            trust: SenderTrust::Unproven,
            thread,
            verification: false,
            invitation: false,
            reply_text: text,
            internal_marker: "#internal",
        }
    }

    const REQUESTER: ThreadFacts =
        ThreadFacts { answers_a_note: false, sender_may_reply: true, sender_may_note: false, sender_takes_part: true };
    const AGENT: ThreadFacts =
        ThreadFacts { answers_a_note: false, sender_may_reply: true, sender_may_note: true, sender_takes_part: false };
    const STRANGER: ThreadFacts = ThreadFacts {
        answers_a_note: false,
        sender_may_reply: false,
        sender_may_note: false,
        sender_takes_part: false,
    };

    fn comment(kind: CommentKind, internal: bool, body: &str) -> Decision {
        Decision::Comment(CommentDecision { kind, internal, body: body.into(), flagged: false })
    }

    #[test]
    fn who_a_reply_speaks_as() {
        let human = Automation::Human;
        let bounce = Automation::Bounce { recipients: vec![] };
        let by = |staff, copy_in| CommentKind::BySender { staff, copy_in };
        let held = CommentKind::Held;
        // (name, facts, expected)
        let cases: Vec<(&str, Facts<'_>, Decision)> = vec![
            (
                "verified requester",
                Facts { trust: VERIFIED, ..facts(&human, Some(REQUESTER), "Thanks") },
                comment(by(false, true), false, "Thanks"),
            ),
            (
                "unverified requester is held",
                facts(&human, Some(REQUESTER), "Thanks"),
                comment(held(HoldReason::Unproven), true, "Thanks"),
            ),
            (
                "DMARC failure is held",
                Facts { trust: SenderTrust::FailsDmarc, ..facts(&human, Some(REQUESTER), "x") },
                comment(held(HoldReason::FailsDmarc), true, "x"),
            ),
            (
                "verified stranger is held",
                Facts { trust: VERIFIED, ..facts(&human, Some(STRANGER), "x") },
                comment(held(HoldReason::NoAccess), true, "x"),
            ),
            (
                "verified agent answers as staff",
                Facts { trust: VERIFIED, sender_is_staff: true, ..facts(&human, Some(AGENT), "Fixed") },
                comment(by(true, true), false, "Fixed"),
            ),
            (
                "verified agent's marker makes a note",
                Facts {
                    trust: VERIFIED,
                    sender_is_staff: true,
                    ..facts(&human, Some(AGENT), " #internal  looks like DNS")
                },
                comment(by(true, true), true, "looks like DNS"),
            ),
            (
                "unverified agent is held, marker or not, and never staff",
                Facts { sender_is_staff: true, ..facts(&human, Some(AGENT), "#internal secret") },
                comment(held(HoldReason::Unproven), true, "secret"),
            ),
            (
                "a requester's '#internal' is their text",
                Facts { trust: VERIFIED, ..facts(&human, Some(REQUESTER), "#internal hi") },
                comment(by(false, true), false, "#internal hi"),
            ),
            (
                "an answer to a note mail stays internal",
                Facts {
                    trust: VERIFIED,
                    sender_is_staff: true,
                    ..facts(&human, Some(ThreadFacts { answers_a_note: true, ..AGENT }), "ok")
                },
                comment(by(true, true), true, "ok"),
            ),
            (
                "an agent who may not note is held for a note",
                Facts {
                    trust: VERIFIED,
                    sender_is_staff: true,
                    ..facts(&human, Some(ThreadFacts { sender_may_note: false, ..AGENT }), "#internal x")
                },
                comment(held(HoldReason::NoAccess), true, "x"),
            ),
            (
                "machines' mail is an authorless note whatever it claims",
                facts(&bounce, Some(REQUESTER), "failed"),
                comment(CommentKind::MachineNote, true, "failed"),
            ),
            (
                "a verified watcher who is not staff copies people in",
                Facts {
                    trust: VERIFIED,
                    ..facts(&human, Some(ThreadFacts { sender_takes_part: true, ..REQUESTER }), "x")
                },
                comment(by(false, true), false, "x"),
            ),
            (
                "an agent's acceptance stands for proof and access",
                Facts { trust: SenderTrust::Verified(Proof::Agent), ..facts(&human, Some(STRANGER), "x") },
                comment(by(false, false), false, "x"),
            ),
        ];
        for (name, f, expected) in cases {
            assert_eq!(decide(&f), expected, "{name}");
        }
    }

    #[test]
    fn flagged_verification_mail_is_internal_and_copies_nobody() {
        let human = Automation::Human;
        let f = Facts { trust: VERIFIED, verification: true, ..facts(&human, Some(REQUESTER), "Your code") };
        assert_eq!(
            decide(&f),
            Decision::Comment(CommentDecision {
                kind: CommentKind::BySender { staff: false, copy_in: false },
                internal: true,
                body: "Your code".into(),
                flagged: true
            })
        );
        let new = Facts { trust: VERIFIED, verification: true, ..facts(&human, None, "") };
        assert_eq!(decide(&new), Decision::NewTicket { copy_in: false, flagged: true });
    }

    #[test]
    fn invitations_copy_nobody_in() {
        let human = Automation::Human;
        let invite = Facts { trust: VERIFIED, invitation: true, ..facts(&human, None, "") };
        assert_eq!(decide(&invite), Decision::NewTicket { copy_in: false, flagged: false });
        let on_thread = Facts { trust: VERIFIED, invitation: true, ..facts(&human, Some(REQUESTER), "ok") };
        assert_eq!(decide(&on_thread), comment(CommentKind::BySender { staff: false, copy_in: false }, false, "ok"));
    }

    #[test]
    fn mail_about_no_ticket() {
        let human = Automation::Human;
        let auto = Automation::AutoReply { why: "x".into() };
        let bounce = Automation::Bounce { recipients: vec![] };
        let cases: Vec<(&str, Facts<'_>, Decision)> = vec![
            (
                "anyone may open a ticket, copying nobody unproven",
                facts(&human, None, ""),
                Decision::NewTicket { copy_in: false, flagged: false },
            ),
            (
                "a verified sender copies people in",
                Facts { trust: VERIFIED, ..facts(&human, None, "") },
                Decision::NewTicket { copy_in: true, flagged: false },
            ),
            (
                "an auto-reply about nothing",
                facts(&auto, None, ""),
                Decision::Ignore("an automatic reply about no ticket of ours"),
            ),
            (
                "a bounce without a sender",
                Facts { from: None, ..facts(&bounce, None, "") },
                Decision::Ignore("a delivery failure about no ticket of ours"),
            ),
            (
                "a person without a sender",
                Facts { from: None, ..facts(&human, None, "") },
                Decision::Quarantine("the message has no usable sender address (From)".into()),
            ),
            ("our own address", Facts { from_ours: true, ..facts(&human, None, "") }, Decision::FromOurselves),
            (
                "a refused domain",
                Facts { sender_refused: Some("denied"), ..facts(&human, None, "") },
                Decision::Quarantine("denied".into()),
            ),
            (
                "claiming to be staff does not pass the lists",
                Facts { sender_refused: Some("denied"), sender_is_staff: true, ..facts(&human, None, "") },
                Decision::Quarantine("denied".into()),
            ),
            (
                "proven staff pass the lists",
                Facts {
                    sender_refused: Some("denied"),
                    sender_is_staff: true,
                    trust: VERIFIED,
                    ..facts(&human, None, "")
                },
                Decision::NewTicket { copy_in: true, flagged: false },
            ),
        ];
        for (name, f, expected) in cases {
            assert_eq!(decide(&f), expected, "{name}");
        }
    }
}
