//! `ferrodesk import`: tickets from another helpdesk, one JSON object per line (JSON Lines),
//! read as a stream and stored in batches. People, groups, categories and organisations are
//! matched by e-mail or name and created when missing (people as requesters). A bad line is
//! reported with its number and skipped; every good line is kept.
//!
//! A line: `{"subject", "description", "type", "status", "impact", "urgency", "priority",
//! "requester", "requester_name", "organisation", "group", "assignee", "category", "tags",
//! "channel", "created_at", "updated_at", "resolved_at", "closed_at", "resolution_note",
//! "comments": [{"author", "body", "internal", "created_at"}]}` — only `subject` and `requester`
//! are required; instants are RFC 3339.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ferrodesk_core::ids::*;
use ferrodesk_core::priority::{Impact, Priority, PriorityMatrix, Urgency};
use ferrodesk_core::ticket::*;
use ferrodesk_core::user::{EmailAddress, Role, User, validate_name};
use ferrodesk_store::{Category, Comment, Group, ImportedTicket, Organisation, Store, StoreResult};
use jiff::Timestamp;
use serde::Deserialize;

/// Longest line accepted (a ticket with its whole conversation).
const MAX_LINE: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    subject: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "type")]
    ticket_type: Option<String>,
    status: Option<String>,
    impact: Option<String>,
    urgency: Option<String>,
    priority: Option<String>,
    requester: String,
    requester_name: Option<String>,
    organisation: Option<String>,
    group: Option<String>,
    assignee: Option<String>,
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    channel: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    resolved_at: Option<String>,
    closed_at: Option<String>,
    resolution_note: Option<String>,
    #[serde(default)]
    comments: Vec<LineComment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineComment {
    author: Option<String>,
    body: String,
    #[serde(default)]
    internal: bool,
    created_at: Option<String>,
}

/// Names already resolved to ids (so a million lines make a few thousand look-ups).
struct Directory<'a> {
    store: &'a dyn Store,
    users: HashMap<String, (UserId, Role, Option<OrganisationId>)>,
    groups: HashMap<String, GroupId>,
    categories: HashMap<String, CategoryId>,
    organisations: HashMap<String, OrganisationId>,
    now: Timestamp,
}

impl<'a> Directory<'a> {
    async fn load(store: &'a dyn Store, now: Timestamp) -> Result<Self> {
        Ok(Self {
            store,
            users: HashMap::new(),
            groups: store.list_groups().await?.into_iter().map(|g| (g.name.to_lowercase(), g.id)).collect(),
            categories: store
                .list_categories()
                .await?
                .into_iter()
                .filter(|c| c.parent_id.is_none())
                .map(|c| (c.name.to_lowercase(), c.id))
                .collect(),
            organisations: store
                .list_organisations()
                .await?
                .into_iter()
                .map(|o| (o.name.to_lowercase(), o.id))
                .collect(),
            now,
        })
    }

    async fn organisation(&mut self, name: &str) -> Result<OrganisationId, String> {
        let name = validate_name("organisation", name).map_err(|e| e.to_string())?;
        if let Some(id) = self.organisations.get(&name.to_lowercase()) {
            return Ok(*id);
        }
        let org = Organisation {
            id: OrganisationId::generate(),
            name: name.clone(),
            shares_tickets: false,
            created_at: self.now,
        };
        self.store.create_organisation(&org).await.map_err(|e| e.to_string())?;
        self.organisations.insert(name.to_lowercase(), org.id);
        Ok(org.id)
    }

    /// The user with this address, created as a requester when unknown.
    async fn user(
        &mut self,
        email: &str,
        name: Option<&str>,
        org: Option<&str>,
    ) -> Result<(UserId, Role, Option<OrganisationId>), String> {
        let email = EmailAddress::parse(email).map_err(|e| e.to_string())?;
        if let Some(u) = self.users.get(email.as_str()) {
            return Ok(*u);
        }
        let found = self.store.user_by_email(&email).await.map_err(|e| e.to_string())?;
        let entry = match found {
            Some((u, _)) => (u.id, u.role, u.organisation_id),
            None => {
                let organisation_id = match org {
                    Some(o) => Some(self.organisation(o).await?),
                    None => None,
                };
                let display = name
                    .map(str::to_owned)
                    .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("someone").to_owned());
                let user = User {
                    id: UserId::generate(),
                    email: email.clone(),
                    name: validate_name("requester_name", &display).map_err(|e| e.to_string())?,
                    role: Role::Requester,
                    organisation_id,
                    active: true,
                    created_at: self.now,
                };
                self.store.create_user(&user, None).await.map_err(|e| e.to_string())?;
                (user.id, user.role, user.organisation_id)
            }
        };
        self.users.insert(email.as_str().to_owned(), entry);
        Ok(entry)
    }

    async fn group(&mut self, name: &str) -> Result<GroupId, String> {
        let name = validate_name("group", name).map_err(|e| e.to_string())?;
        if let Some(id) = self.groups.get(&name.to_lowercase()) {
            return Ok(*id);
        }
        let g = Group {
            id: GroupId::generate(),
            name: name.clone(),
            support_level: SupportLevel::L1,
            created_at: self.now,
        };
        self.store.create_group(&g).await.map_err(|e| e.to_string())?;
        self.groups.insert(name.to_lowercase(), g.id);
        Ok(g.id)
    }

    async fn category(&mut self, name: &str) -> Result<CategoryId, String> {
        let name = validate_name("category", name).map_err(|e| e.to_string())?;
        if let Some(id) = self.categories.get(&name.to_lowercase()) {
            return Ok(*id);
        }
        let c = Category { id: CategoryId::generate(), parent_id: None, name: name.clone(), created_at: self.now };
        self.store.create_category(&c).await.map_err(|e| e.to_string())?;
        self.categories.insert(name.to_lowercase(), c.id);
        Ok(c.id)
    }
}

fn instant(raw: &Option<String>, field: &str) -> Result<Option<Timestamp>, String> {
    raw.as_deref()
        .map(|s| {
            s.parse::<Timestamp>()
                .map(ferrodesk_core::time::to_storage_precision)
                .map_err(|_| format!("{field}: not an RFC 3339 instant"))
        })
        .transpose()
}

fn parsed<T>(
    raw: &Option<String>,
    field: &str,
    parse: fn(&str, &str) -> Result<T, ferrodesk_core::DomainError>,
) -> Result<Option<T>, String> {
    raw.as_deref().map(|s| parse(s, field).map_err(|e| e.to_string())).transpose()
}

/// Turns one line into a ticket with its conversation.
async fn ticket_of(line: Line, dir: &mut Directory<'_>, matrix: &PriorityMatrix) -> Result<ImportedTicket, String> {
    let (requester_id, _, organisation_id) =
        dir.user(&line.requester, line.requester_name.as_deref(), line.organisation.as_deref()).await?;
    let assignee_id = match &line.assignee {
        Some(a) => {
            let (id, role, _) = dir.user(a, None, None).await?;
            if !role.is_staff() {
                return Err(format!("assignee {a} is not an agent"));
            }
            Some(id)
        }
        None => None,
    };
    let group_id = match &line.group {
        Some(g) => Some(dir.group(g).await?),
        None => None,
    };
    let category_id = match &line.category {
        Some(c) => Some(dir.category(c).await?),
        None => None,
    };
    let created = instant(&line.created_at, "created_at")?.unwrap_or(dir.now);
    let draft = TicketDraft {
        ticket_type: parsed(&line.ticket_type, "type", TicketType::parse)?.unwrap_or(TicketType::Incident),
        subject: validate_subject(&line.subject).map_err(|e| e.to_string())?,
        description: validate_description(&line.description).map_err(|e| e.to_string())?,
        requester_id,
        organisation_id,
        category_id,
        impact: parsed(&line.impact, "impact", Impact::parse)?.unwrap_or(Impact::Medium),
        urgency: parsed(&line.urgency, "urgency", Urgency::parse)?.unwrap_or(Urgency::Medium),
        priority_override: parsed(&line.priority, "priority", Priority::parse)?,
        group_id,
        assignee_id,
        channel: parsed(&line.channel, "channel", Channel::parse)?.unwrap_or(Channel::Email),
        tags: normalise_tags(&line.tags).map_err(|e| e.to_string())?,
        watchers: vec![],
        custom_fields: Default::default(),
    };
    let mut t = Ticket::open(draft, TicketId::generate(), TicketNumber(0), matrix, created);
    if let Some(s) = parsed(&line.status, "status", Status::parse)? {
        t.status = s;
    }
    let mut comments = Vec::with_capacity(line.comments.len());
    let mut last = created;
    for c in line.comments {
        let author = match &c.author {
            Some(a) => Some(dir.user(a, None, None).await?),
            None => None,
        };
        let at = instant(&c.created_at, "comments.created_at")?.unwrap_or(created).max(created);
        let body = validate_description(c.body.trim()).map_err(|e| e.to_string())?;
        if body.is_empty() {
            continue;
        }
        let by_staff = author.is_some_and(|(_, role, _)| role.is_staff());
        if !c.internal && by_staff {
            t.first_response_at.get_or_insert(at);
            t.last_agent_activity_at = Some(at);
        } else if !by_staff {
            t.last_requester_activity_at = Some(at);
        }
        last = last.max(at);
        comments.push(Comment {
            id: CommentId::generate(),
            ticket_id: t.id,
            author_id: author.map(|(id, _, _)| id),
            body,
            internal: c.internal,
            created_at: at,
        });
    }
    t.updated_at = instant(&line.updated_at, "updated_at")?.unwrap_or(last).max(created);
    t.resolved_at = instant(&line.resolved_at, "resolved_at")?;
    t.closed_at = instant(&line.closed_at, "closed_at")?;
    // Keep the lifecycle's timestamps consistent with the status.
    if matches!(t.status, Status::Resolved | Status::Closed) && t.resolved_at.is_none() {
        t.resolved_at = Some(t.updated_at);
    }
    if t.status == Status::Closed && t.closed_at.is_none() {
        t.closed_at = Some(t.updated_at);
    }
    if t.status == Status::Pending {
        t.pending_reason = Some(PendingReason::Requester);
    }
    t.resolution_note = line.resolution_note.filter(|n| !n.trim().is_empty());
    Ok(ImportedTicket { ticket: t, comments })
}

/// Imports JSON Lines from `input`; returns (tickets imported, lines skipped).
pub async fn run(store: Arc<dyn Store>, input: impl BufRead, batch_size: usize) -> Result<(usize, usize)> {
    let started = Instant::now();
    // Into an empty PostgreSQL database the rows go in first and the indexes are built once.
    let set_aside = store.set_aside_ticket_indexes().await?;
    store.bulk_writes(true).await?;
    let outcome = import_lines(&store, input, batch_size).await;
    if set_aside > 0 {
        eprintln!("building {set_aside} indexes");
    }
    // Also after a failed import: the tickets imported so far are kept and must be found.
    store.rebuild_set_aside_indexes().await?;
    store.bulk_writes(false).await?;
    let (imported, comments, skipped) = outcome?;
    // An import leaves the SQLite search index in a dozen large segments (at 1M); serving then
    // merged new tickets into them, which held create at 16 clients to ~4,600/s with a p99 of
    // 25 ms. Merged into one (6.5 s at 1M): 5,500-6,300/s, p99 6-7 ms. The tickets are stored
    // and searchable either way, so a failure here is reported, not the import's.
    if let Err(e) = compact_search(store.as_ref()).await {
        eprintln!("the search index was not merged ({e:#}); run `ferrodesk compact-search` later");
    }
    // PostgreSQL's view counters gained a delta per key and batch; a server would fold them
    // within a second of starting, this spares its first counts the sum.
    if let Err(e) = store.compact_view_counters().await {
        eprintln!("the view counters were not folded ({e}); a running server does it");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {imported} tickets with {comments} comments in {secs:.1} s ({:.0} tickets/s); skipped {skipped} lines",
        imported as f64 / secs.max(0.001)
    );
    Ok((imported, skipped))
}

/// Merges the search index into one segment, step by step (see `Store::compact_search_index`);
/// returns how many steps did work.
pub async fn compact_search(store: &dyn Store) -> Result<u64> {
    let started = Instant::now();
    let mut steps = 0u64;
    // Steps of a few thousand pages (a fraction of a second each): a running server's writes
    // wait at most that long.
    while store.compact_search_index(4000).await.context("cannot merge the search index")? {
        steps += 1;
        if steps.is_multiple_of(20) {
            eprintln!("merging the search index ({} s)", started.elapsed().as_secs());
        }
    }
    Ok(steps)
}

/// Lines that could not be imported: counted, and the first 50 reported with their number.
#[derive(Default)]
struct Skipped(usize);

impl Skipped {
    fn report(&mut self, line: usize, why: &str) {
        self.0 += 1;
        if self.0 <= 50 {
            eprintln!("line {line}: {why}");
        } else if self.0 == 51 {
            eprintln!("(further skipped lines are counted, not listed)");
        }
    }
}

/// Reads and stores the lines; returns (tickets, comments, skipped lines). While one batch is
/// being stored the next is read and parsed on the other core (reading is about 5% of a 1M
/// import, time the store would otherwise wait).
async fn import_lines(store: &Arc<dyn Store>, input: impl BufRead, batch_size: usize) -> Result<(usize, usize, usize)> {
    let now = Timestamp::now();
    let matrix = store.settings().await?.priority_matrix;
    let mut dir = Directory::load(store.as_ref(), now).await?;
    let mut lines = input.split(b'\n').enumerate();
    let (mut imported, mut comments, mut skipped) = (0usize, 0usize, Skipped::default());
    let mut storing: Option<tokio::task::JoinHandle<StoreResult<Vec<TicketNumber>>>> = None;
    loop {
        let batch = next_batch(&mut lines, &mut dir, &matrix, batch_size, &mut skipped).await;
        // One batch at a time in the store, so tickets are numbered in the order of the file.
        if let Some(previous) = storing.take() {
            imported += previous.await??.len();
        }
        let batch = batch?;
        if batch.is_empty() {
            break;
        }
        comments += batch.iter().map(|t| t.comments.len()).sum::<usize>();
        let store = store.clone();
        storing = Some(tokio::spawn(async move { store.import_tickets(batch).await }));
    }
    Ok((imported, comments, skipped.0))
}

/// The next `size` good tickets of the input (fewer at its end); bad lines are reported and
/// skipped. Fails only when the input cannot be read or a person cannot be stored.
async fn next_batch(
    lines: &mut impl Iterator<Item = (usize, std::io::Result<Vec<u8>>)>,
    dir: &mut Directory<'_>,
    matrix: &PriorityMatrix,
    size: usize,
    skipped: &mut Skipped,
) -> Result<Vec<ImportedTicket>> {
    let mut batch = Vec::with_capacity(size);
    while batch.len() < size {
        let Some((i, line)) = lines.next() else { break };
        let number = i + 1;
        let raw = match line {
            Ok(raw) => raw,
            Err(e) => bail!("cannot read line {number}: {e}"),
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if raw.len() > MAX_LINE {
            skipped.report(number, "longer than 4 MiB");
            continue;
        }
        let parsed: Line = match serde_json::from_slice(&raw) {
            Ok(l) => l,
            Err(e) => {
                skipped.report(number, &format!("not a ticket object: {e}"));
                continue;
            }
        };
        match ticket_of(parsed, dir, matrix).await {
            Ok(t) => batch.push(t),
            Err(e) => skipped.report(number, &e),
        }
    }
    Ok(batch)
}
