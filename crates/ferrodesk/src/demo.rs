//! `ferrodesk demo`: a believable organisation — departments, support groups L1–L3, agents,
//! requesters, a category tree — and a few hundred tickets in every state, written from real
//! (CC0) IT ticket texts carried in the binary.

use anyhow::{Result, bail};
use ferrodesk_core::access::TicketScope;
use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, Urgency};
use ferrodesk_core::ticket::{Channel, PendingReason, Status, SupportLevel, TicketDraft, TicketPatch, TicketType};
use ferrodesk_core::user::{EmailAddress, Role, User};
use ferrodesk_store::{Category, Comment, Group, Organisation, Store, TicketChange, TicketQuery};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const TEXTS: &str = include_str!("../demo/tickets.tsv");
const TICKETS: usize = 300;

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Lars", "Maya", "Nikos",
    "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara",
];
const LAST: &[&str] = &["Lima", "Okafor", "Müller", "Sato", "Novak", "Haddad", "Berg", "Costa", "Walsh", "Ivanova"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn subject_of(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    let s = words.join(" ");
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => "Request".into(),
    }
}

/// Whether the database has no tickets yet.
pub async fn is_empty(store: &dyn Store) -> Result<bool> {
    Ok(store.list_tickets(&TicketQuery { limit: 1, ..TicketQuery::default() }, &TicketScope::All).await?.is_empty())
}

pub async fn fill(store: &dyn Store) -> Result<()> {
    if !is_empty(store).await? {
        bail!("the database already has tickets; demo data only goes into an empty database");
    }
    let mut rng = StdRng::seed_from_u64(1042);
    let now = Timestamp::now();
    // A fresh random password per install: demo accounts never share a known default (case 47).
    let mut secret = [0u8; 9];
    rand::rng().fill_bytes(&mut secret);
    let password = format!("demo-{}", secret.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let hash = ferrodesk_web::auth::hash_password(password.clone()).await.map_err(|e| anyhow::anyhow!(e.detail))?;

    let mut orgs = Vec::new();
    for (name, shares) in
        [("Finance", false), ("Human Resources", false), ("Engineering", true), ("Sales", false), ("Operations", false)]
    {
        let org =
            Organisation { id: OrganisationId::generate(), name: name.into(), shares_tickets: shares, created_at: now };
        store.create_organisation(&org).await?;
        orgs.push(org);
    }
    let mut groups = Vec::new();
    for (name, level) in [
        ("Service Desk L1", SupportLevel::L1),
        ("Desktop Support L2", SupportLevel::L2),
        ("Network & Infrastructure L3", SupportLevel::L3),
        ("Access & Identity", SupportLevel::L2),
    ] {
        let g = Group { id: GroupId::generate(), name: name.into(), support_level: level, created_at: now };
        store.create_group(&g).await?;
        groups.push(g);
    }

    let make_user = |name: String, role: Role, org: Option<OrganisationId>, n: usize| -> Result<User> {
        let local = name.to_lowercase().replace(' ', ".").replace('é', "e").replace('ü', "u");
        let email = EmailAddress::parse(&format!(
            "{local}{}@demo.ferrodesk.test",
            if n > 0 { n.to_string() } else { String::new() }
        ))?;
        Ok(User { id: UserId::generate(), email, name, role, organisation_id: org, active: true, created_at: now })
    };
    let admin = make_user("Desk Admin".into(), Role::Admin, None, 0)?;
    store.create_user(&admin, Some(&hash)).await?;
    let supervisor = make_user("Sam Supervisor".into(), Role::Supervisor, None, 0)?;
    store.create_user(&supervisor, Some(&hash)).await?;
    for g in &groups {
        store.add_group_member(g.id, supervisor.id).await?;
    }
    let mut agents_by_group: Vec<Vec<UserId>> = vec![Vec::new(); groups.len()];
    for i in 0..10 {
        let agent = make_user(format!("{} {}", FIRST[i], LAST[i % LAST.len()]), Role::Agent, None, 0)?;
        store.create_user(&agent, Some(&hash)).await?;
        let g = i % groups.len();
        store.add_group_member(groups[g].id, agent.id).await?;
        agents_by_group[g].push(agent.id);
    }
    let mut requesters = Vec::new();
    for i in 0..40 {
        let name = format!("{} {}", FIRST[(i + 7) % FIRST.len()], LAST[(i * 3 + 1) % LAST.len()]);
        let org = &orgs[i % orgs.len()];
        let user = make_user(name, Role::Requester, Some(org.id), i + 1)?;
        store.create_user(&user, Some(&hash)).await?;
        requesters.push(user);
    }

    let mut categories: Vec<(String, CategoryId)> = Vec::new();
    for (parent, children) in [
        ("Hardware", &["Laptop", "Printer", "Peripherals"][..]),
        ("Access", &["Accounts", "Permissions"][..]),
        ("Storage", &[][..]),
        ("Purchase", &[][..]),
        ("HR Support", &[][..]),
        ("Internal Project", &[][..]),
        ("Administrative rights", &[][..]),
        ("Miscellaneous", &[][..]),
    ] {
        let p = Category { id: CategoryId::generate(), parent_id: None, name: parent.into(), created_at: now };
        store.create_category(&p).await?;
        categories.push((parent.into(), p.id));
        for child in children {
            let c =
                Category { id: CategoryId::generate(), parent_id: Some(p.id), name: (*child).into(), created_at: now };
            store.create_category(&c).await?;
        }
    }

    let settings = store.settings().await?;
    let texts: Vec<(&str, &str)> =
        TEXTS.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('\t')).collect();
    let statuses =
        [Status::New, Status::Open, Status::Open, Status::Pending, Status::Resolved, Status::Resolved, Status::Closed];
    for i in 0..TICKETS {
        let (topic, text) = texts[i % texts.len()];
        let category = categories.iter().find(|(n, _)| n == topic).map(|(_, id)| *id);
        let group_index = match topic {
            "Access" | "Administrative rights" => 3,
            "Hardware" if i % 2 == 0 => 1,
            "Storage" => 2,
            _ => 0,
        };
        let requester = pick(&mut rng, &requesters).clone();
        let created = now - SignedDuration::from_mins(rng.random_range(10..60 * 24 * 90));
        let draft = TicketDraft {
            ticket_type: if topic == "Purchase" || topic == "Access" {
                TicketType::ServiceRequest
            } else {
                TicketType::Incident
            },
            subject: subject_of(text),
            description: text.to_owned(),
            requester_id: requester.id,
            organisation_id: requester.organisation_id,
            category_id: category,
            impact: *pick(&mut rng, Impact::ALL),
            urgency: *pick(&mut rng, Urgency::ALL),
            priority_override: None,
            group_id: Some(groups[group_index].id),
            assignee_id: None,
            channel: *pick(&mut rng, &[Channel::Web, Channel::Email, Channel::Email, Channel::Phone, Channel::Api]),
            tags: if i % 5 == 0 { vec![topic.to_lowercase().replace(' ', "-")] } else { vec![] },
            watchers: vec![],
            custom_fields: Default::default(),
        };
        let mut ticket =
            store.create_ticket(draft, &settings.priority_matrix, Some(requester.id), created, None).await?;
        let target = statuses[i % statuses.len()];
        if target == Status::New {
            continue;
        }
        let agent = agents_by_group[group_index].first().copied().unwrap_or(supervisor.id);
        let mut at = created + SignedDuration::from_mins(rng.random_range(5..240));
        let mut steps: Vec<(TicketPatch, Option<(String, bool)>)> = vec![(
            TicketPatch { assignee_id: Some(Some(agent)), ..TicketPatch::default() },
            Some(("Thanks for reporting this — I'm looking into it now.".into(), false)),
        )];
        if i % 3 == 0 {
            steps.push((
                TicketPatch::default(),
                Some(("Checked the logs; the device shows the same fault as last month.".into(), true)),
            ));
        }
        match target {
            Status::Pending => steps.push((
                TicketPatch {
                    status: Some(Status::Pending),
                    pending_reason: Some(Some(PendingReason::Requester)),
                    ..TicketPatch::default()
                },
                Some(("Could you tell me when this started and send a screenshot?".into(), false)),
            )),
            Status::Resolved | Status::Closed => {
                steps.push((
                    TicketPatch {
                        status: Some(Status::Resolved),
                        resolution_note: Some("Fixed and confirmed working.".into()),
                        resolution_code: Some("solved".into()),
                        ..TicketPatch::default()
                    },
                    Some(("This should be working again now — please let us know if not.".into(), false)),
                ));
                if target == Status::Closed {
                    steps.push((TicketPatch { status: Some(Status::Closed), ..TicketPatch::default() }, None));
                }
            }
            _ => {}
        }
        for (patch, comment) in steps {
            at = (at + SignedDuration::from_mins(rng.random_range(5..600))).min(now);
            let version = ticket.version;
            let mut changes = ticket.apply(patch, &settings.priority_matrix, at)?;
            let comment = match comment {
                Some((body, internal)) => {
                    changes.extend(ticket.note_comment(true, internal, at)?);
                    Some(Comment {
                        id: CommentId::generate(),
                        ticket_id: ticket.id,
                        author_id: Some(agent),
                        body,
                        internal,
                        created_at: at,
                    })
                }
                None => None,
            };
            ticket = store
                .save_ticket(TicketChange {
                    ticket,
                    expected_version: version,
                    actor: Some(agent),
                    changes,
                    comment,
                    at,
                    idempotency: None,
                    jobs: vec![],
                })
                .await?;
        }
    }

    println!(
        "Demo data created: {} organisations, {} groups, 12 staff, {} requesters, {TICKETS} tickets.",
        orgs.len(),
        groups.len(),
        requesters.len()
    );
    println!("Sign in as {} (admin), {} (supervisor), or any demo user.", admin.email, supervisor.email);
    println!("Password of every demo account: {password}");
    println!("For the API: ferrodesk token create --user {}", admin.email);
    Ok(())
}
