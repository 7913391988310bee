//! The Store conformance suite: every dialect must behave the same. The list query's SQL is
//! checked against the core's pure visibility rule on random data.

use std::collections::BTreeSet;

use ferrodesk_core::access::{TicketFacts, TicketScope};
use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, PriorityMatrix, Urgency};
use ferrodesk_core::ticket::{Channel, FieldChange, Status, TicketDraft, TicketPatch, TicketType};
use ferrodesk_core::user::{EmailAddress, Role, User};
use ferrodesk_store::{Comment, Group, Organisation, Store, StoreError, TicketChange, TicketQuery, TicketSortKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dual;
use crate::helpers::{Backend, fresh_database};

dual!(
    users_and_duplicates,
    save_is_atomic_and_guarded_by_version,
    list_sql_matches_the_visibility_rule,
    pages_cover_every_ticket_once_for_every_sort,
    search_pages_cover_every_visible_match_once,
    view_counts_follow_every_change,
    history_is_immutable_in_the_database
);

async fn store(b: Backend) -> (std::sync::Arc<dyn Store>, Option<crate::helpers::TempDir>) {
    let (url, dir) = fresh_database(b).await;
    let s = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let applied = s.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(applied, ferrodesk_store::MIGRATION_NAMES);
    assert_eq!(s.migrate().await.map(|v| v.len()).ok(), Some(0), "migrating twice is a no-op");
    (s, dir)
}

fn user(email: &str, role: Role, org: Option<OrganisationId>) -> User {
    User {
        id: UserId::generate(),
        email: EmailAddress::parse(email).unwrap_or_else(|e| panic!("{e}")),
        name: "U".into(),
        role,
        organisation_id: org,
        active: true,
        created_at: ferrodesk_core::time::to_storage_precision(jiff::Timestamp::now()),
    }
}

fn draft(requester: UserId, subject: &str) -> TicketDraft {
    TicketDraft {
        ticket_type: TicketType::Incident,
        subject: subject.into(),
        description: String::new(),
        requester_id: requester,
        organisation_id: None,
        category_id: None,
        impact: Impact::Medium,
        urgency: Urgency::Medium,
        priority_override: None,
        group_id: None,
        assignee_id: None,
        channel: Channel::Api,
        tags: vec![],
        watchers: vec![],
        custom_fields: Default::default(),
    }
}

async fn users_and_duplicates(b: Backend) {
    let (s, _dir) = store(b).await;
    let u = user("ana@example.org", Role::Agent, None);
    s.create_user(&u, Some("hash")).await.unwrap_or_else(|e| panic!("{e}"));
    let again = user("ana@example.org", Role::Requester, None);
    assert!(matches!(s.create_user(&again, None).await, Err(StoreError::Duplicate { .. })));
    let (found, hash) = s.user_by_email(&u.email).await.ok().flatten().unwrap_or_else(|| panic!("user not found"));
    assert_eq!(found, u);
    assert_eq!(hash.as_deref(), Some("hash"));
    let actor = s.actor(u.id).await.ok().flatten().unwrap_or_else(|| panic!("no actor"));
    assert_eq!(actor.role, Role::Agent);
    let mut inactive = u.clone();
    inactive.active = false;
    s.update_user(&inactive).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.actor(u.id).await.ok().flatten(), None, "inactive users are no actors");
    let g = Group {
        id: GroupId::generate(),
        name: "Desk".into(),
        support_level: ferrodesk_core::ticket::SupportLevel::L1,
        created_at: ferrodesk_core::time::to_storage_precision(jiff::Timestamp::now()),
    };
    s.create_group(&g).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        s.create_group(&Group { id: GroupId::generate(), ..g.clone() }).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(s.add_group_member(GroupId::generate(), u.id).await, Err(StoreError::MissingReference { .. })));
}

async fn save_is_atomic_and_guarded_by_version(b: Backend) {
    let (s, _dir) = store(b).await;
    let u = user("req@example.org", Role::Requester, None);
    s.create_user(&u, None).await.unwrap_or_else(|e| panic!("{e}"));
    let now = jiff::Timestamp::now();
    let m = PriorityMatrix::default();
    let t = s
        .create_ticket(draft(u.id, "Screen flickers"), &m, Some(u.id), now, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.ticket(t.id).await.ok().flatten(), Some(t.clone()), "stored exactly as returned");

    let mut first = t.clone();
    let changes =
        first.apply(TicketPatch { impact: Some(Impact::High), ..Default::default() }, &m, now).unwrap_or_default();
    let comment = Comment {
        id: CommentId::generate(),
        ticket_id: t.id,
        author_id: Some(u.id),
        body: "also the mouse".into(),
        internal: false,
        created_at: now,
    };
    let saved = s
        .save_ticket(TicketChange {
            ticket: first,
            expected_version: 1,
            actor: Some(u.id),
            changes,
            comment: Some(comment),
            at: now,
            idempotency: None,
            jobs: vec![],
        })
        .await;
    assert_eq!(saved.map(|t| t.version).ok(), Some(2));

    // A writer that read version 1 loses: conflict, and none of its history or comment lands.
    let mut stale = t.clone();
    let changes = stale
        .apply(TicketPatch { subject: Some("Overwrite".into()), ..Default::default() }, &m, now)
        .unwrap_or_default();
    let lost = Comment {
        id: CommentId::generate(),
        ticket_id: t.id,
        author_id: None,
        body: "lost".into(),
        internal: false,
        created_at: now,
    };
    let r = s
        .save_ticket(TicketChange {
            ticket: stale,
            expected_version: 1,
            actor: None,
            changes,
            comment: Some(lost),
            at: now,
            idempotency: None,
            jobs: vec![],
        })
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { current: 2 })), "{r:?}");
    let comments = s.comments(t.id, true).await.unwrap_or_default();
    assert_eq!(comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), vec!["also the mouse"]);
    let history = s.history(t.id).await.unwrap_or_default();
    assert!(history.iter().all(|h| h.field != "subject"), "no history from the refused write");
    assert_eq!(s.ticket(t.id).await.ok().flatten().map(|t| t.subject), Some("Screen flickers".into()));

    let mut ghost = t.clone();
    ghost.id = TicketId::generate();
    let r = s
        .save_ticket(TicketChange {
            ticket: ghost,
            expected_version: 1,
            actor: None,
            changes: vec![FieldChange { field: "x".into(), old: None, new: None }],
            comment: None,
            at: now,
            idempotency: None,
            jobs: vec![],
        })
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

async fn list_sql_matches_the_visibility_rule(b: Backend) {
    let (s, _dir) = store(b).await;
    let mut rng = StdRng::seed_from_u64(match b {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    });
    let org = Organisation {
        id: OrganisationId::generate(),
        name: "Finance".into(),
        shares_tickets: true,
        created_at: ferrodesk_core::time::to_storage_precision(jiff::Timestamp::now()),
    };
    s.create_organisation(&org).await.unwrap_or_else(|e| panic!("{e}"));
    let mut groups = Vec::new();
    for i in 0..3 {
        let g = Group {
            id: GroupId::generate(),
            name: format!("G{i}"),
            support_level: ferrodesk_core::ticket::SupportLevel::L1,
            created_at: ferrodesk_core::time::to_storage_precision(jiff::Timestamp::now()),
        };
        s.create_group(&g).await.unwrap_or_else(|e| panic!("{e}"));
        groups.push(g.id);
    }
    let mut people = Vec::new();
    for i in 0..6 {
        let u = user(
            &format!("p{i}@example.org"),
            if i < 3 { Role::Requester } else { Role::Agent },
            if i % 2 == 0 { Some(org.id) } else { None },
        );
        s.create_user(&u, None).await.unwrap_or_else(|e| panic!("{e}"));
        people.push(u);
    }
    let m = PriorityMatrix::default();
    let mut all = Vec::new();
    for i in 0..40 {
        let requester = &people[rng.random_range(0..3)];
        let mut d = draft(requester.id, &format!("Ticket {i}"));
        d.organisation_id = requester.organisation_id;
        d.impact = Impact::ALL[rng.random_range(0..3)];
        d.group_id = if rng.random_bool(0.75) { Some(groups[rng.random_range(0..3)]) } else { None };
        d.assignee_id = if rng.random_bool(0.3) { Some(people[rng.random_range(3..6)].id) } else { None };
        if rng.random_bool(0.2) {
            d.watchers = vec![people[rng.random_range(0..6)].id];
        }
        all.push(s.create_ticket(d, &m, None, jiff::Timestamp::now(), None).await.unwrap_or_else(|e| panic!("{e}")));
    }
    // Half of them move on (status, assignee or group), so counts kept on write see changes too.
    for t in all.iter_mut() {
        if rng.random_bool(0.5) {
            continue;
        }
        let mut moved = t.clone();
        match rng.random_range(0..3) {
            0 => moved.status = [Status::Pending, Status::Resolved, Status::Open][rng.random_range(0..3)],
            1 => moved.assignee_id = rng.random_bool(0.7).then(|| people[rng.random_range(3..6)].id),
            _ => moved.group_id = rng.random_bool(0.75).then(|| groups[rng.random_range(0..3)]),
        }
        let change = TicketChange {
            expected_version: moved.version,
            ticket: moved,
            actor: None,
            changes: vec![FieldChange { field: "moved".into(), old: None, new: None }],
            comment: None,
            at: jiff::Timestamp::now(),
            idempotency: None,
            jobs: vec![],
        };
        *t = s.save_ticket(change).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let active = [Status::New, Status::Open, Status::Pending];
    let mut scopes = vec![TicketScope::All];
    for p in &people {
        scopes.push(TicketScope::Requester { user_id: p.id, organisation_id: None });
        scopes.push(TicketScope::Requester { user_id: p.id, organisation_id: p.organisation_id });
        scopes.push(TicketScope::Groups { user_id: p.id, group_ids: vec![] });
        scopes.push(TicketScope::Groups { user_id: p.id, group_ids: vec![groups[0], groups[2]] });
    }
    for scope in scopes {
        let listed: BTreeSet<TicketId> = s
            .list_tickets(&TicketQuery { limit: 1000, ..Default::default() }, &scope)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.id)
            .collect();
        let expected: BTreeSet<TicketId> =
            all.iter().filter(|t| scope.contains(&TicketFacts::from(*t))).map(|t| t.id).collect();
        assert_eq!(listed, expected, "{scope:?}");
        let counted = s.count_tickets(&TicketQuery::default(), &scope).await.unwrap_or(-1);
        assert_eq!(counted, expected.len() as i64, "count agrees with the list: {scope:?}");
        // A queue: several statuses by priority, in pages (staff read it per source of
        // visibility, query::queue_by_source), also "unassigned" and the reverse order.
        for (unassigned, descending) in [(false, false), (true, false), (false, true)] {
            let mut want: Vec<(i64, i64)> = all
                .iter()
                .filter(|t| {
                    scope.contains(&TicketFacts::from(*t))
                        && active.contains(&t.status)
                        && (!unassigned || t.assignee_id.is_none())
                })
                .map(|t| (TicketSortKey::Priority.value_of(t), t.number.0))
                .collect();
            want.sort_unstable();
            if descending {
                want.reverse();
            }
            let mut q = TicketQuery {
                statuses: vec![Status::New, Status::Open, Status::Pending],
                assignee_id: if unassigned { Some(None) } else { None },
                sort: TicketSortKey::Priority,
                descending,
                limit: 4,
                ..Default::default()
            };
            let mut got = Vec::new();
            loop {
                let page = s.list_tickets(&q, &scope).await.unwrap_or_else(|e| panic!("{e}"));
                let Some(last) = page.last() else { break };
                // Only the last page is short (a ticket from two sources takes one row).
                assert!(page.len() == q.limit as usize || got.len() + page.len() == want.len(), "{scope:?}");
                got.extend(page.iter().map(|t| (TicketSortKey::Priority.value_of(t), t.number.0)));
                q.after = Some(ferrodesk_store::TicketCursor {
                    value: TicketSortKey::Priority.value_of(last),
                    number: last.number.0,
                });
            }
            assert_eq!(got, want, "queue pages, unassigned {unassigned}, descending {descending}: {scope:?}");
        }
        // Filters are applied inside every part of the count (each branch of the person's own,
        // and the counters SQLite keeps per group, status and assignee): the desk's views, and
        // every agent's open tickets.
        let mut views: Vec<(Vec<Status>, Option<Option<UserId>>)> = vec![
            (active.to_vec(), None),
            (vec![Status::New, Status::Open], Some(None)),
            (vec![Status::Pending], None),
            (vec![Status::Resolved], None),
        ];
        views.extend(people[3..].iter().map(|agent| (vec![Status::New, Status::Open], Some(Some(agent.id)))));
        for (statuses, assignee_id) in views {
            let want = all
                .iter()
                .filter(|t| {
                    statuses.contains(&t.status)
                        && assignee_id.is_none_or(|a| t.assignee_id == a)
                        && scope.contains(&TicketFacts::from(*t))
                })
                .count();
            let q = TicketQuery { statuses, assignee_id, ..Default::default() };
            let counted = s.count_tickets(&q, &scope).await.unwrap_or(-1);
            assert_eq!(counted, want as i64, "filtered count {:?} {:?}: {scope:?}", q.statuses, q.assignee_id);
            // The same tickets listed (an agent's own need no visibility filter; others' do).
            let listed = s.list_tickets(&TicketQuery { limit: 1000, ..q }, &scope).await.unwrap_or_default().len();
            assert_eq!(listed, want, "filtered list: {scope:?}");
        }
    }
}

async fn pages_cover_every_ticket_once_for_every_sort(b: Backend) {
    let (s, _dir) = store(b).await;
    let u = user("req@example.org", Role::Requester, None);
    s.create_user(&u, None).await.unwrap_or_else(|e| panic!("{e}"));
    let m = PriorityMatrix::default();
    let base = jiff::Timestamp::now();
    for i in 0..23i64 {
        let mut d = draft(u.id, &format!("T{i}"));
        d.impact = Impact::ALL[(i % 3) as usize];
        // Several tickets share a creation instant: the number breaks ties.
        let t = s
            .create_ticket(d, &m, None, base + jiff::SignedDuration::from_secs(i / 4), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // A mix of statuses, so lists of several statuses (merged per status) are exercised.
        let status = [Status::New, Status::Open, Status::Pending][(i % 3) as usize];
        if status != Status::New {
            let mut changed = t.clone();
            let patch = TicketPatch { status: Some(status), pending_reason: None, ..Default::default() };
            let changes = changed.apply(patch, &m, base).unwrap_or_else(|e| panic!("{e}"));
            let change = TicketChange {
                ticket: changed,
                expected_version: t.version,
                actor: None,
                changes,
                comment: None,
                at: base + jiff::SignedDuration::from_secs(40 - i),
                idempotency: None,
                jobs: vec![],
            };
            s.save_ticket(change).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let every_status = vec![Status::New, Status::Open, Status::Pending];
    for statuses in [vec![], vec![Status::Open], vec![Status::New, Status::Pending], every_status.clone()] {
        let expected =
            if statuses.is_empty() { 23 } else { (0..23).filter(|i| statuses.contains(&every_status[i % 3])).count() };
        for sort in [TicketSortKey::Number, TicketSortKey::CreatedAt, TicketSortKey::UpdatedAt, TicketSortKey::Priority]
        {
            for descending in [false, true] {
                let mut seen = Vec::new();
                let mut q =
                    TicketQuery { sort, descending, limit: 5, statuses: statuses.clone(), ..Default::default() };
                loop {
                    let page = s.list_tickets(&q, &TicketScope::All).await.unwrap_or_default();
                    let Some(last) = page.last() else { break };
                    for pair in page.windows(2) {
                        let (a, b) =
                            ((sort.value_of(&pair[0]), pair[0].number.0), (sort.value_of(&pair[1]), pair[1].number.0));
                        assert!(
                            if descending { a > b } else { a < b },
                            "{sort:?} desc={descending} {statuses:?}: in order"
                        );
                    }
                    assert!(page.iter().all(|t| statuses.is_empty() || statuses.contains(&t.status)));
                    q.after = Some(ferrodesk_store::TicketCursor { value: sort.value_of(last), number: last.number.0 });
                    seen.extend(page.iter().map(|t| t.number.0));
                }
                let unique: BTreeSet<i64> = seen.iter().copied().collect();
                assert_eq!((seen.len(), unique.len()), (expected, expected), "{sort:?} desc={descending} {statuses:?}");
            }
        }
    }
}

/// Search words with every sort (the number order is read from the search index itself):
/// each visible match once, in order, and nothing the scope hides.
async fn search_pages_cover_every_visible_match_once(b: Backend) {
    let (s, _dir) = store(b).await;
    let m = PriorityMatrix::default();
    let (alice, bob) =
        (user("alice@example.org", Role::Requester, None), user("bob@example.org", Role::Requester, None));
    for u in [&alice, &bob] {
        s.create_user(u, None).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut alices_printers = BTreeSet::new();
    for i in 0..30i64 {
        let who = if i % 3 == 0 { &bob } else { &alice };
        let subject = if i % 4 == 0 { format!("Laptop {i}") } else { format!("Printer jam {i}") };
        let t = s
            .create_ticket(draft(who.id, &subject), &m, None, jiff::Timestamp::now(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if who.id == alice.id && i % 4 != 0 {
            alices_printers.insert(t.number.0);
        }
    }
    let scope = TicketScope::Requester { user_id: alice.id, organisation_id: None };
    // The same answers while new entries wait in PostgreSQL's pending list and once merged.
    for merged in [false, true] {
        if merged {
            // As two servers do, at once.
            let (a, b2) = tokio::join!(s.merge_pending_search_entries(), s.merge_pending_search_entries());
            let pages = a.unwrap_or_else(|e| panic!("{e}")) + b2.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pages > 0, b == Backend::Postgres, "pending pages merged: {pages}");
            assert_eq!(s.merge_pending_search_entries().await.ok(), Some(0), "nothing left to merge");
        }
        search_every_sort(&*s, &scope, &alices_printers, merged).await;
    }
}

async fn search_every_sort(s: &dyn Store, scope: &TicketScope, expected: &BTreeSet<i64>, merged: bool) {
    for sort in [TicketSortKey::Number, TicketSortKey::CreatedAt, TicketSortKey::Priority] {
        for descending in [true, false] {
            let mut q = TicketQuery { sort, descending, limit: 4, terms: vec!["printer".into()], ..Default::default() };
            let mut seen = Vec::new();
            loop {
                let page = s.list_tickets(&q, scope).await.unwrap_or_else(|e| panic!("{e}"));
                let Some(last) = page.last() else { break };
                q.after = Some(ferrodesk_store::TicketCursor { value: sort.value_of(last), number: last.number.0 });
                seen.extend(page.iter().map(|t| t.number.0));
            }
            let keys: Vec<i64> = seen.clone();
            let unique: BTreeSet<i64> = seen.into_iter().collect();
            assert_eq!(&unique, expected, "{sort:?} desc={descending} merged={merged}");
            assert_eq!(keys.len(), unique.len(), "no ticket twice: {sort:?} desc={descending}");
            if sort == TicketSortKey::Number {
                let mut ordered = keys.clone();
                ordered.sort_unstable();
                if descending {
                    ordered.reverse();
                }
                assert_eq!(keys, ordered, "newest first");
            }
        }
    }
}

/// The queue views' counts (kept by triggers on SQLite) agree with the tickets they count after
/// inserts, status changes, group moves and (un)assignments, for every scope.
async fn view_counts_follow_every_change(b: Backend) {
    let (s, _dir) = store(b).await;
    let m = PriorityMatrix::default();
    let now = jiff::Timestamp::now();
    let requester = user("req@example.org", Role::Requester, None);
    let agent = user("agent@example.org", Role::Agent, None);
    let other_agent = user("agent2@example.org", Role::Agent, None);
    for u in [&requester, &agent, &other_agent] {
        s.create_user(u, None).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut groups = Vec::new();
    for name in ["Network", "Desktop"] {
        let g = Group {
            id: GroupId::generate(),
            name: name.into(),
            support_level: ferrodesk_core::ticket::SupportLevel::L1,
            created_at: ferrodesk_core::time::to_storage_precision(now),
        };
        s.create_group(&g).await.unwrap_or_else(|e| panic!("{e}"));
        groups.push(g.id);
    }
    let mut tickets = Vec::new();
    for i in 0..12usize {
        let mut d = draft(requester.id, &format!("T{i}"));
        d.group_id = [Some(groups[0]), Some(groups[1]), None][i % 3];
        d.assignee_id = (i % 4 == 0).then_some(agent.id);
        tickets.push(s.create_ticket(d, &m, None, now, None).await.unwrap_or_else(|e| panic!("{e}")));
    }
    let scopes = [
        TicketScope::All,
        TicketScope::Groups { user_id: agent.id, group_ids: vec![groups[0]] },
        TicketScope::Groups { user_id: agent.id, group_ids: vec![] },
    ];
    let views = [
        TicketQuery { statuses: vec![Status::New, Status::Open, Status::Pending], ..Default::default() },
        TicketQuery { statuses: vec![Status::New, Status::Open], assignee_id: Some(None), ..Default::default() },
        TicketQuery { statuses: vec![Status::Pending], ..Default::default() },
        TicketQuery { statuses: vec![Status::Resolved], ..Default::default() },
        TicketQuery::default(),
        // "Mine", and another agent's (the counters hold the assignee too).
        TicketQuery {
            statuses: vec![Status::New, Status::Open, Status::Pending],
            assignee_id: Some(Some(agent.id)),
            ..Default::default()
        },
        TicketQuery { assignee_id: Some(Some(other_agent.id)), ..Default::default() },
    ];
    let check = |stage: &'static str| {
        let s = s.clone();
        let (scopes, views) = (scopes.clone(), views.clone());
        async move {
            for scope in &scopes {
                for view in &views {
                    let listed = s
                        .list_tickets(&TicketQuery { limit: 1000, ..view.clone() }, scope)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"))
                        .len() as i64;
                    let counted = s.count_tickets(view, scope).await.unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(counted, listed, "{stage}: {scope:?} {view:?}");
                }
            }
        }
    };
    check("created").await;
    // Each change moves a ticket between counters: status, group (to none and back), assignee.
    let steps: Vec<(usize, TicketPatch)> = vec![
        (0, TicketPatch { status: Some(Status::Pending), ..Default::default() }),
        (1, TicketPatch { status: Some(Status::Resolved), ..Default::default() }),
        (2, TicketPatch { group_id: Some(Some(groups[0])), ..Default::default() }),
        (3, TicketPatch { group_id: Some(None), ..Default::default() }),
        (4, TicketPatch { assignee_id: Some(None), ..Default::default() }),
        (5, TicketPatch { assignee_id: Some(Some(agent.id)), ..Default::default() }),
        (6, TicketPatch { status: Some(Status::Open), group_id: Some(Some(groups[1])), ..Default::default() }),
        // From one agent to another, in a group the agent is not in and in none.
        (8, TicketPatch { assignee_id: Some(Some(other_agent.id)), ..Default::default() }),
        (7, TicketPatch { assignee_id: Some(Some(agent.id)), ..Default::default() }),
        (7, TicketPatch { assignee_id: Some(Some(other_agent.id)), ..Default::default() }),
    ];
    for (step, (i, patch)) in steps.into_iter().enumerate() {
        // PostgreSQL's counters are appended deltas until folded: counts must hold either way.
        if step % 3 == 2 {
            s.compact_view_counters().await.unwrap_or_else(|e| panic!("{e}"));
            check("after folding the counters").await;
        }
        let current = s.ticket(tickets[i].id).await.ok().flatten().unwrap_or_else(|| panic!("ticket {i}"));
        let mut next = current.clone();
        let changes = next.apply(patch, &m, now).unwrap_or_else(|e| panic!("step {i}: {e}"));
        let change = TicketChange {
            ticket: next,
            expected_version: current.version,
            actor: None,
            changes,
            comment: None,
            at: now,
            idempotency: None,
            jobs: vec![],
        };
        s.save_ticket(change).await.unwrap_or_else(|e| panic!("{e}"));
        check("after a change").await;
    }
    // Servers fold at the same time as each other and as writers: nothing counted twice or lost.
    let more = draft(requester.id, "during the folding");
    let (a, b, created) =
        tokio::join!(s.compact_view_counters(), s.compact_view_counters(), s.create_ticket(more, &m, None, now, None));
    for r in [a, b] {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    created.unwrap_or_else(|e| panic!("{e}"));
    check("after folding at once").await;
    let metrics: i64 = s.ticket_counts().await.unwrap_or_else(|e| panic!("{e}")).iter().map(|(_, n)| n).sum();
    assert_eq!(metrics, 13, "tickets per status add up to every ticket");
}

/// History rows cannot be changed or deleted, even by SQL that bypasses the store.
async fn history_is_immutable_in_the_database(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    let s = ferrodesk_store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    s.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let u = user("req@example.org", Role::Requester, None);
    s.create_user(&u, None).await.unwrap_or_else(|e| panic!("{e}"));
    let t = s
        .create_ticket(draft(u.id, "Audit me"), &PriorityMatrix::default(), Some(u.id), jiff::Timestamp::now(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for sql in ["UPDATE ticket_history SET new_value = 'forged'", "DELETE FROM ticket_history"] {
        let refused = match b {
            Backend::Sqlite => rusqlite::Connection::open(url.trim_start_matches("sqlite://"))
                .and_then(|c| c.execute_batch(sql))
                .is_err(),
            Backend::Postgres => {
                let (client, conn) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("{e}"));
                tokio::spawn(conn);
                client.batch_execute(sql).await.is_err()
            }
        };
        assert!(refused, "{sql} must be refused");
    }
    let h = s.history(t.id).await.unwrap_or_default();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].new_value.as_deref(), Some("new"));
}
