//! Who may do what: one pure function, [`decide`], of (actor, resource, action).
//!
//! The HTTP edge calls it for every route; list queries use [`TicketScope`], which is the same
//! visibility rule expressed as a filter the store turns into SQL. An unauthorised look at an
//! existing ticket is answered exactly like a missing one ([`Decision::NotFound`]).

use crate::ids::{GroupId, OrganisationId, TicketId, UserId};
use crate::ticket::Ticket;
use crate::user::Role;

/// The authenticated user making a request, with what their rights depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
    pub group_ids: Vec<GroupId>,
    pub organisation_id: Option<OrganisationId>,
    /// The requester's organisation lets its members see each other's tickets.
    pub organisation_shares_tickets: bool,
    /// Instance setting: agents see every ticket, not only their groups'.
    pub agents_see_all: bool,
}

/// The facts about a ticket that access depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: TicketId,
    pub requester_id: UserId,
    pub organisation_id: Option<OrganisationId>,
    pub group_id: Option<GroupId>,
    pub assignee_id: Option<UserId>,
    pub watchers: Vec<UserId>,
}

impl From<&Ticket> for TicketFacts {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id,
            requester_id: t.requester_id,
            organisation_id: t.organisation_id,
            group_id: t.group_id,
            assignee_id: t.assignee_id,
            watchers: t.watchers.clone(),
        }
    }
}

/// What is being acted on.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// An existing ticket.
    Ticket(&'a TicketFacts),
    /// Tickets in general (creating one).
    Tickets,
    /// One user's account.
    User(UserId),
    /// The user directory (listing, creating accounts of a role).
    Users { role: Role },
    /// Configuration: groups, organisations, categories, custom fields, settings.
    Config,
    /// The membership of one group.
    GroupMembers(GroupId),
    /// The API tokens and sessions of a user.
    Credentials(UserId),
    /// The e-mail channel: mailboxes, raw inbound mail and its quarantine.
    Mail,
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    /// Create a ticket on someone else's behalf, or set its requester.
    ActOnBehalf,
    /// Add a public reply.
    Reply,
    /// Add or read internal notes.
    InternalNote,
    Assign,
    Escalate,
    Resolve,
    /// Close (including a requester cancelling their own request or confirming a resolution).
    Close,
    Reopen,
    Merge,
    Link,
    LogTime,
    Attach,
    /// Change a user's role or active flag.
    Administer,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::Read,
        Action::Create,
        Action::Update,
        Action::ActOnBehalf,
        Action::Reply,
        Action::InternalNote,
        Action::Assign,
        Action::Escalate,
        Action::Resolve,
        Action::Close,
        Action::Reopen,
        Action::Merge,
        Action::Link,
        Action::LogTime,
        Action::Attach,
        Action::Administer,
    ];
}

/// The answer. `NotFound` hides existence; `Forbidden` is for things the actor may know exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Forbidden,
    NotFound,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

fn allow_if(cond: bool) -> Decision {
    if cond { Decision::Allow } else { Decision::Forbidden }
}

/// Which tickets an actor may see, as a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketScope {
    /// Every ticket.
    All,
    /// Staff limited to their groups: tickets of those groups, tickets with no group yet
    /// (the triage pool), tickets assigned to them or that they watch or requested.
    Groups { user_id: UserId, group_ids: Vec<GroupId> },
    /// Requesters: tickets they requested or watch, and their organisation's when it shares.
    Requester { user_id: UserId, organisation_id: Option<OrganisationId> },
}

impl TicketScope {
    pub fn of(actor: &Actor) -> TicketScope {
        match actor.role {
            Role::Admin => TicketScope::All,
            Role::Supervisor | Role::Agent if actor.agents_see_all => TicketScope::All,
            Role::Supervisor | Role::Agent => {
                TicketScope::Groups { user_id: actor.user_id, group_ids: actor.group_ids.clone() }
            }
            Role::Requester => TicketScope::Requester {
                user_id: actor.user_id,
                organisation_id: actor.organisation_id.filter(|_| actor.organisation_shares_tickets),
            },
        }
    }

    /// The scope left to apply to tickets already limited to those assigned to `assignee`: a
    /// group-limited staff member sees every ticket assigned to them, so asking for their own
    /// needs no visibility filter (and a database then reads them from the assignee index
    /// alone). Any other assignee, or another kind of scope, keeps the scope as it is.
    pub fn for_assignee(&self, assignee: UserId) -> &TicketScope {
        match self {
            TicketScope::Groups { user_id, .. } if *user_id == assignee => &TicketScope::All,
            other => other,
        }
    }

    pub fn contains(&self, t: &TicketFacts) -> bool {
        let involves = |u: &UserId| t.requester_id == *u || t.watchers.contains(u);
        match self {
            TicketScope::All => true,
            TicketScope::Groups { user_id, group_ids } => {
                t.group_id.is_none_or(|g| group_ids.contains(&g))
                    || t.assignee_id == Some(*user_id)
                    || involves(user_id)
            }
            TicketScope::Requester { user_id, organisation_id } => {
                involves(user_id) || (organisation_id.is_some() && t.organisation_id == *organisation_id)
            }
        }
    }
}

/// Decides whether `actor` may do `action` on `resource`.
pub fn decide(actor: &Actor, resource: Resource<'_>, action: Action) -> Decision {
    use Action::*;
    let admin = actor.role == Role::Admin;
    let staff = actor.role.is_staff();
    match resource {
        Resource::Ticket(t) => {
            if !TicketScope::of(actor).contains(t) {
                return Decision::NotFound;
            }
            if staff {
                return allow_if(!matches!(action, Administer | Create));
            }
            // Requesters: organisation colleagues may read; only participants act.
            let participant = t.requester_id == actor.user_id || t.watchers.contains(&actor.user_id);
            match action {
                Read => Decision::Allow,
                Reply | Attach | Reopen => allow_if(participant),
                Close => allow_if(t.requester_id == actor.user_id),
                _ => Decision::Forbidden,
            }
        }
        Resource::Tickets => match action {
            Create | Read => Decision::Allow,
            ActOnBehalf => allow_if(staff),
            _ => Decision::Forbidden,
        },
        Resource::User(id) => {
            let own = id == actor.user_id;
            if !staff && !own {
                return Decision::NotFound;
            }
            match action {
                Read => Decision::Allow,
                Update => allow_if(own || admin),
                _ => allow_if(admin),
            }
        }
        Resource::Users { role } => match action {
            Read => allow_if(staff),
            // Staff may register requesters (a caller on the phone); only admins make staff.
            Create => allow_if(admin || (staff && role == Role::Requester)),
            _ => allow_if(admin),
        },
        Resource::Config => match action {
            Read => Decision::Allow,
            _ => allow_if(admin),
        },
        Resource::GroupMembers(g) => match action {
            Read => allow_if(staff),
            _ => allow_if(admin || (actor.role == Role::Supervisor && actor.group_ids.contains(&g))),
        },
        Resource::Credentials(owner) => allow_if(owner == actor.user_id || admin),
        // Raw mail is personal data and mailboxes hold credentials: admins only.
        Resource::Mail => allow_if(admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn own_assigned_tickets_need_no_visibility_filter_for_group_limited_staff_only() {
        let agent = actor(Role::Agent, vec![GroupId::generate()]);
        let scope = TicketScope::of(&agent);
        assert_eq!(scope.for_assignee(agent.user_id), &TicketScope::All);
        // Someone else's tickets stay filtered by the agent's groups.
        assert_eq!(scope.for_assignee(UserId::generate()), &scope);
        // A requester's scope is never widened.
        let requester = actor(Role::Requester, vec![]);
        let theirs = TicketScope::of(&requester);
        assert_eq!(theirs.for_assignee(requester.user_id), &theirs);
        // And what it widens to is what `contains` already says: their own ticket in another
        // group is visible.
        let mut t = facts(UserId::generate(), Some(GroupId::generate()));
        t.assignee_id = Some(agent.user_id);
        assert!(scope.contains(&t));
    }

    fn actor(role: Role, groups: Vec<GroupId>) -> Actor {
        Actor {
            user_id: UserId::generate(),
            role,
            group_ids: groups,
            organisation_id: None,
            organisation_shares_tickets: false,
            agents_see_all: false,
        }
    }

    fn facts(requester: UserId, group: Option<GroupId>) -> TicketFacts {
        TicketFacts {
            id: TicketId::generate(),
            requester_id: requester,
            organisation_id: None,
            group_id: group,
            assignee_id: None,
            watchers: vec![],
        }
    }

    #[test]
    fn ticket_rules_by_role() {
        let g1 = GroupId::generate();
        let g2 = GroupId::generate();
        let admin = actor(Role::Admin, vec![]);
        let agent = actor(Role::Agent, vec![g1]);
        let supervisor = actor(Role::Supervisor, vec![g1]);
        let requester = actor(Role::Requester, vec![]);
        let stranger = actor(Role::Requester, vec![]);
        let own = facts(requester.user_id, Some(g1));
        let other_group = facts(requester.user_id, Some(g2));
        use Action::*;
        use Decision::*;
        // (actor, ticket, action, expected)
        let cases: Vec<(&Actor, &TicketFacts, Action, Decision)> = vec![
            (&admin, &other_group, Merge, Allow),
            (&agent, &own, Read, Allow),
            (&agent, &own, InternalNote, Allow),
            (&agent, &own, Merge, Allow),
            (&agent, &other_group, Read, NotFound),
            (&agent, &other_group, Update, NotFound),
            (&supervisor, &other_group, Read, NotFound),
            (&supervisor, &own, Escalate, Allow),
            (&requester, &own, Read, Allow),
            (&requester, &own, Reply, Allow),
            (&requester, &own, Close, Allow),
            (&requester, &own, Reopen, Allow),
            (&requester, &own, InternalNote, Forbidden),
            (&requester, &own, Assign, Forbidden),
            (&requester, &own, Update, Forbidden),
            (&requester, &own, Merge, Forbidden),
            (&requester, &own, LogTime, Forbidden),
            (&stranger, &own, Read, NotFound),
            (&stranger, &own, Reply, NotFound),
        ];
        for (a, t, action, expected) in cases {
            assert_eq!(decide(a, Resource::Ticket(t), action), expected, "{:?} {action:?}", a.role);
        }
    }

    #[test]
    fn organisation_sharing_lets_colleagues_read_but_not_act() {
        let org = OrganisationId::generate();
        let mut colleague = actor(Role::Requester, vec![]);
        colleague.organisation_id = Some(org);
        let mut t = facts(UserId::generate(), None);
        t.organisation_id = Some(org);
        assert_eq!(decide(&colleague, Resource::Ticket(&t), Action::Read), Decision::NotFound);
        colleague.organisation_shares_tickets = true;
        assert_eq!(decide(&colleague, Resource::Ticket(&t), Action::Read), Decision::Allow);
        assert_eq!(decide(&colleague, Resource::Ticket(&t), Action::Reply), Decision::Forbidden);
    }

    #[test]
    fn user_and_config_rules() {
        let admin = actor(Role::Admin, vec![]);
        let agent = actor(Role::Agent, vec![]);
        let requester = actor(Role::Requester, vec![]);
        let someone = UserId::generate();
        assert_eq!(decide(&requester, Resource::User(someone), Action::Read), Decision::NotFound);
        assert_eq!(decide(&requester, Resource::User(requester.user_id), Action::Read), Decision::Allow);
        assert_eq!(decide(&requester, Resource::User(requester.user_id), Action::Administer), Decision::Forbidden);
        assert_eq!(decide(&agent, Resource::User(agent.user_id), Action::Administer), Decision::Forbidden);
        assert_eq!(decide(&admin, Resource::User(someone), Action::Administer), Decision::Allow);
        assert_eq!(decide(&agent, Resource::Users { role: Role::Requester }, Action::Create), Decision::Allow);
        assert_eq!(decide(&agent, Resource::Users { role: Role::Admin }, Action::Create), Decision::Forbidden);
        assert_eq!(decide(&requester, Resource::Users { role: Role::Requester }, Action::Create), Decision::Forbidden);
        assert_eq!(decide(&requester, Resource::Config, Action::Read), Decision::Allow);
        assert_eq!(decide(&agent, Resource::Config, Action::Update), Decision::Forbidden);
        assert_eq!(decide(&requester, Resource::Credentials(someone), Action::Read), Decision::Forbidden);
    }

    fn arb_facts(users: Vec<UserId>, groups: Vec<GroupId>) -> impl Strategy<Value = TicketFacts> {
        let (u, g) = (users.clone(), groups.clone());
        (
            0..users.len(),
            proptest::option::of(0..groups.len()),
            proptest::option::of(0..users.len()),
            proptest::bool::ANY,
        )
            .prop_map(move |(r, grp, asg, watch)| TicketFacts {
                id: TicketId::generate(),
                requester_id: u[r],
                organisation_id: None,
                group_id: grp.map(|i| g[i]),
                assignee_id: asg.map(|i| u[i]),
                watchers: if watch { vec![u[(r + 1) % u.len()]] } else { vec![] },
            })
    }

    proptest! {
        /// Reading is exactly the scope; no role acts on a ticket it cannot read; requesters
        /// never touch internal notes.
        #[test]
        fn actions_never_exceed_visibility(role in 0usize..4, t in arb_facts(
            (0..3).map(|_| UserId::generate()).collect(), (0..2).map(|_| GroupId::generate()).collect())) {
            let mut a = actor(Role::ALL[role], vec![]);
            a.user_id = t.requester_id;
            let visible = TicketScope::of(&a).contains(&t);
            prop_assert_eq!(decide(&a, Resource::Ticket(&t), Action::Read).is_allowed(), visible);
            for action in Action::ALL {
                let d = decide(&a, Resource::Ticket(&t), *action);
                if !visible { prop_assert_eq!(d, Decision::NotFound); }
                if a.role == Role::Requester && *action == Action::InternalNote { prop_assert!(!d.is_allowed()); }
            }
        }
    }
}
