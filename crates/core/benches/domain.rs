//! Micro-benchmarks of the pure functions every request runs: `cargo bench -p ferrodesk-core`.
//! Figures are in docs/PERFORMANCE.md. (Quote stripping and MIME parsing join when the e-mail
//! channel lands.)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrodesk_core::access::{Action, Actor, Resource, TicketFacts, TicketScope, decide};
use ferrodesk_core::ids::{GroupId, TicketId, UserId};
use ferrodesk_core::priority::{Impact, PriorityMatrix, Urgency};
use ferrodesk_core::search::search_terms;
use ferrodesk_core::user::Role;

fn agent() -> Actor {
    Actor {
        user_id: UserId::generate(),
        role: Role::Agent,
        group_ids: (0..3).map(|_| GroupId::generate()).collect(),
        organisation_id: None,
        organisation_shares_tickets: false,
        agents_see_all: false,
    }
}

fn ticket_in(group: Option<GroupId>) -> TicketFacts {
    TicketFacts {
        id: TicketId::generate(),
        requester_id: UserId::generate(),
        organisation_id: None,
        group_id: group,
        assignee_id: None,
        watchers: vec![UserId::generate()],
    }
}

fn permission(c: &mut Criterion) {
    let actor = agent();
    let mine = ticket_in(actor.group_ids.last().copied());
    let other = ticket_in(Some(GroupId::generate()));
    c.bench_function("access::decide, agent reads a ticket of their group", |b| {
        b.iter(|| decide(black_box(&actor), Resource::Ticket(black_box(&mine)), Action::Read))
    });
    c.bench_function("access::decide, agent denied another group's ticket", |b| {
        b.iter(|| decide(black_box(&actor), Resource::Ticket(black_box(&other)), Action::Update))
    });
    let scope = TicketScope::of(&actor);
    c.bench_function("TicketScope::contains", |b| b.iter(|| black_box(&scope).contains(black_box(&mine))));
}

fn priority(c: &mut Criterion) {
    let matrix = PriorityMatrix::default();
    c.bench_function("PriorityMatrix::derive, all nine cells", |b| {
        b.iter(|| {
            for &i in Impact::ALL {
                for &u in Urgency::ALL {
                    black_box(black_box(&matrix).derive(i, u));
                }
            }
        })
    });
}

fn search(c: &mut Criterion) {
    c.bench_function("search_terms, a typical query", |b| {
        b.iter(|| search_terms(black_box("Outlook crashes when opening shared calendar (VPN)")))
    });
}

criterion_group!(benches, permission, priority, search);
criterion_main!(benches);
