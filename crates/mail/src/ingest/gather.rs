//! The first step of the ingest: the facts a message is judged on, read from the store (the
//! sender as a user, the thread, whether it answers our mail to that person, what the access
//! rule lets the sender do). Reads only; nothing here writes but the creation of a sender's or
//! copied person's account, which happens only once a decision needs it.

use ferrodesk_core::access::{Action, Resource, TicketFacts, decide};
use ferrodesk_core::ids::UserId;
use ferrodesk_core::ticket::{Status, Ticket};
use ferrodesk_core::user::{EmailAddress, Role, User};
use ferrodesk_store::{Mailbox, Settings, StoreError};
use jiff::Timestamp;

use super::{Ingest, MAX_COPIED_WATCHERS, Plan, Vouch};
use crate::classify::{Automation, looks_like_account_verification};
use crate::decide::{Facts, ThreadFacts};
use crate::outbound::MailJob;
use crate::parse::{InboundMail, MailAddress};
use crate::thread::{OurId, subject_ticket_number};
use crate::trust::{CopiedPerson, Proof, SenderTrust, reported_by_mta};

/// Our mail answered, at most, when looking for a proof of the sender (a References header
/// can name hundreds).
const MAX_ANCESTORS_CHECKED: usize = 20;

/// Everything read about one message before deciding.
pub(super) struct Gathered {
    pub settings: Settings,
    pub mailboxes: Vec<Mailbox>,
    /// The sender's account, if the address has one (not created yet).
    pub sender: Option<User>,
    pub trust: SenderTrust,
    /// The open ticket it answers.
    pub thread: Option<Ticket>,
    pub thread_facts: Option<ThreadFacts>,
    pub verification: bool,
    pub reply_text: String,
}

impl Gathered {
    /// The facts the decision reads.
    pub fn facts<'a>(&'a self, mail: &'a InboundMail, internal_marker: &'a str) -> Facts<'a> {
        let from = mail.from.as_ref().map(|f| f.address.as_str());
        Facts {
            automation: &mail.automation,
            from,
            from_ours: from.is_some_and(|f| self.is_ours(f)),
            sender_refused: from.and_then(|f| self.settings.mail_senders.admits(f).err()),
            sender_is_staff: self.sender.as_ref().is_some_and(|u| u.active && u.role.is_staff()),
            trust: self.trust,
            thread: self.thread_facts,
            verification: self.verification,
            invitation: mail.calendar_method.is_some(),
            reply_text: &self.reply_text,
            internal_marker,
        }
    }

    /// One of our mailboxes' addresses.
    pub fn is_ours(&self, address: &str) -> bool {
        self.mailboxes.iter().any(|m| m.address.as_str() == address)
    }
}

impl Ingest {
    pub(super) async fn gather(&self, mail: &InboundMail, vouch: Option<Vouch>) -> Result<Gathered, Plan> {
        let settings = self.store.settings().await?;
        let mailboxes = self.store.mailboxes().await?;
        let from = mail.from.as_ref().map(|f| f.address.as_str());
        let sender = match from {
            Some(address) => self.existing_user(address).await?,
            None => None,
        };
        let thread = match vouch {
            Some(v) => self.store.ticket(v.ticket).await?,
            None => self.find_thread(mail, sender.as_ref()).await?,
        };
        let thread = match thread {
            Some(t) => Some(self.follow_merge(t).await?),
            None => None,
        };
        // Answers to a closed ticket open a new one (closed is final).
        let thread = thread.filter(|t| t.status != Status::Closed);
        let trust = match vouch {
            Some(_) => SenderTrust::Verified(Proof::Agent),
            None => {
                let domain = from.and_then(|f| f.rsplit('@').next()).unwrap_or_default();
                let reported = reported_by_mta(&mail.auth_results, &settings.mail_trust.authserv_ids, domain);
                let answers_ours = match &sender {
                    Some(user) => self.answers_our_mail_to(mail, user.id).await?,
                    None => false,
                };
                SenderTrust::combine(reported, answers_ours)
            }
        };
        let thread_facts = match &thread {
            Some(ticket) => Some(self.thread_facts(mail, ticket, sender.as_ref(), trust).await?),
            None => None,
        };
        let machine = matches!(mail.automation, Automation::AutoReply { .. } | Automation::Bounce { .. });
        Ok(Gathered {
            settings,
            mailboxes,
            sender,
            trust,
            thread,
            thread_facts,
            verification: !machine && looks_like_account_verification(&mail.subject, &mail.text),
            reply_text: crate::reply::visible_reply(&mail.text),
        })
    }

    async fn thread_facts(
        &self,
        mail: &InboundMail,
        ticket: &Ticket,
        sender: Option<&User>,
        trust: SenderTrust,
    ) -> Result<ThreadFacts, Plan> {
        let signer = self.signer().await?;
        let answers_a_note =
            mail.ancestors().into_iter().any(|id| matches!(signer.verify(id), OurId::Ticket { internal: true, .. }));
        // What the access rule allows matters only for a sender the message proves (an agent's
        // acceptance stands for access too): unproven mail is held whatever it would allow.
        let asks_access = matches!(trust, SenderTrust::Verified(p) if p != Proof::Agent);
        let actor = match sender.filter(|u| u.active && asks_access) {
            Some(user) => self.store.actor(user.id).await?,
            None => None,
        };
        let facts = TicketFacts::from(ticket);
        let may = |action| actor.as_ref().is_some_and(|a| decide(a, Resource::Ticket(&facts), action).is_allowed());
        Ok(ThreadFacts {
            answers_a_note,
            sender_may_reply: may(Action::Reply),
            sender_may_note: may(Action::InternalNote),
            sender_takes_part: sender.is_some_and(|u| ticket.involves(u.id)),
        })
    }

    /// Whether the message answers mail we sent to this user: one of the Message-IDs it names
    /// is ours (MAC verified) and names a mail job whose recipient is the user.
    async fn answers_our_mail_to(&self, mail: &InboundMail, user: UserId) -> Result<bool, Plan> {
        let signer = self.signer().await?;
        for id in mail.ancestors().into_iter().take(MAX_ANCESTORS_CHECKED) {
            let Some((_, job)) = signer.sent_job(id) else { continue };
            let Some(job) = self.store.job(job).await? else { continue };
            if serde_json::from_value::<MailJob>(job.payload).is_ok_and(|m| m.to == user) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The ticket this message answers, in the order the issue sets: a Message-ID we know
    /// (ours verified by MAC, or any message already on a ticket), else the subject token
    /// when the sender takes part in that ticket.
    async fn find_thread(&self, mail: &InboundMail, sender: Option<&User>) -> Result<Option<Ticket>, Plan> {
        let mut foreign = Vec::new();
        let signer = self.signer().await?;
        for id in mail.ancestors() {
            match signer.verify(id) {
                OurId::Ticket { number, .. } => {
                    if let Some(t) = self.store.ticket_by_number(number).await? {
                        return Ok(Some(t));
                    }
                }
                OurId::Forged => {
                    tracing::warn!(reference = id, "a reference in our Message-ID format with a bad MAC: ignored")
                }
                OurId::Foreign => foreign.push(id.to_owned()),
            }
        }
        if let Some(id) = self.store.thread_ticket(&foreign).await?
            && let Some(t) = self.store.ticket(id).await?
        {
            return Ok(Some(t));
        }
        let Some(number) = subject_ticket_number(&mail.subject) else { return Ok(None) };
        let Some(ticket) = self.store.ticket_by_number(number).await? else { return Ok(None) };
        let ticket = self.follow_merge(ticket).await?;
        let participant = sender.is_some_and(|u| u.active && (ticket.involves(u.id) || u.role.is_staff()));
        if !participant {
            tracing::info!(ticket = number.0, "subject names a ticket the sender does not take part in: a new ticket");
        }
        Ok(participant.then_some(ticket))
    }

    async fn follow_merge(&self, ticket: Ticket) -> Result<Ticket, Plan> {
        match ticket.merged_into {
            Some(target) => Ok(self.store.ticket(target).await?.unwrap_or(ticket)),
            None => Ok(ticket),
        }
    }

    async fn existing_user(&self, address: &str) -> Result<Option<User>, Plan> {
        let Ok(address) = EmailAddress::parse(address) else { return Ok(None) };
        Ok(self.store.user_by_email(&address).await?.map(|(u, _)| u))
    }

    /// People copied on a person's mail (To and Cc, not us, not the sender, admitted by the
    /// sender lists, at most [`MAX_COPIED_WATCHERS`]), with their accounts where they have one.
    pub(super) async fn copied_people(&self, mail: &InboundMail, g: &Gathered) -> Result<Vec<CopiedPerson>, Plan> {
        let from = mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or_default();
        let mut out: Vec<CopiedPerson> = Vec::new();
        let candidates = mail.to.iter().chain(&mail.cc).filter(|a| {
            a.address != from && !g.is_ours(&a.address) && g.settings.mail_senders.admits(&a.address).is_ok()
        });
        for person in candidates {
            if out.len() >= MAX_COPIED_WATCHERS {
                break;
            }
            // Named twice (To and Cc): once.
            if out.iter().any(|p| p.email == person.address) {
                continue;
            }
            let user = self.existing_user(&person.address).await?;
            // A deactivated account is simply not copied in.
            if user.as_ref().is_some_and(|u| !u.active) {
                continue;
            }
            out.push(CopiedPerson {
                user: user.as_ref().map(|u| u.id),
                email: person.address.clone(),
                name: person.name.clone(),
                organisation_id: user.and_then(|u| u.organisation_id),
            });
        }
        Ok(out)
    }

    /// The accounts of copied people who become watchers (created, without a password, for
    /// those who have none).
    pub(super) async fn watcher_accounts(&self, people: &[CopiedPerson], now: Timestamp) -> Result<Vec<UserId>, Plan> {
        let mut out = Vec::with_capacity(people.len());
        for person in people {
            let id = match person.user {
                Some(id) => id,
                None => {
                    let address = MailAddress { address: person.email.clone(), name: person.name.clone() };
                    match self.sender(&address, now).await {
                        Ok(user) => user.id,
                        Err(Plan::Quarantine(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The sender's account: the one gathered, or [`Self::sender`]'s.
    pub(super) async fn account(&self, from: &MailAddress, g: &Gathered, now: Timestamp) -> Result<User, Plan> {
        match &g.sender {
            Some(user) if user.active => Ok(user.clone()),
            _ => self.sender(from, now).await,
        }
    }

    /// The sender as a user: found by address, or created as a requester (without a password,
    /// so the address alone never grants a sign-in).
    pub(super) async fn sender(&self, from: &MailAddress, now: Timestamp) -> Result<User, Plan> {
        let address =
            EmailAddress::parse(&from.address).map_err(|e| Plan::Quarantine(format!("sender address: {e}")))?;
        if let Some((user, _)) = self.store.user_by_email(&address).await? {
            if !user.active {
                return Err(Plan::Quarantine(format!("the sender {} is deactivated", user.email)));
            }
            return Ok(user);
        }
        let name = from
            .name
            .as_deref()
            .and_then(|n| ferrodesk_core::user::validate_name("name", n).ok())
            .unwrap_or_else(|| address.as_str().split('@').next().unwrap_or("requester").to_owned());
        let user = User {
            id: UserId::generate(),
            email: address.clone(),
            name,
            role: Role::Requester,
            organisation_id: None,
            active: true,
            created_at: ferrodesk_core::time::to_storage_precision(now),
        };
        match self.store.create_account(&user, None).await {
            Ok(()) => Ok(user),
            // Created meanwhile by another message from the same sender.
            Err(StoreError::Duplicate { .. }) => match self.store.user_by_email(&address).await? {
                Some((user, _)) => Ok(user),
                None => Err(Plan::Store(StoreError::Database("the sender vanished".into()))),
            },
            // An address that could pass for another's gets no account (issue 19).
            Err(StoreError::Invalid(e)) => Err(Plan::Quarantine(format!("sender address {address}: {e}"))),
            Err(e) => Err(Plan::Store(e)),
        }
    }
}
