//! SQL shared by both dialects. Statements are written once with `$N` placeholders and typed
//! [`Param`]s; each driver binds them its own way (SQLite reads `$N` as `?N`). Only full-text
//! search and number allocation differ per dialect.

use ferrodesk_core::access::TicketScope;
use ferrodesk_core::ids::UserId;
use ferrodesk_core::ticket::{FieldChange, Ticket};
use jiff::Timestamp;
use uuid::Uuid;

use crate::records::*;
use crate::row::TICKET_COLUMNS;

/// Statements that take longer are logged at warn level.
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_millis(50);
use crate::{Comment, micros};

/// A bound value. SQLite stores UUIDs as text and booleans as integers; PostgreSQL natively.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Bool(bool),
    /// Shared, so a large message or file is bound without a copy of our own.
    Bytes(bytes::Bytes),
    NullText,
    NullUuid,
    NullInt,
}

impl Param {
    pub(crate) fn opt_uuid(v: Option<Uuid>) -> Param {
        v.map_or(Param::NullUuid, Param::Uuid)
    }
    pub(crate) fn opt_text(v: Option<String>) -> Param {
        v.map_or(Param::NullText, Param::Text)
    }
    pub(crate) fn opt_int(v: Option<i64>) -> Param {
        v.map_or(Param::NullInt, Param::Int)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub sql: String,
    pub params: Vec<Param>,
    /// PostgreSQL plans it for each set of parameters (see `Stmt::with_custom_plan`). SQLite
    /// always keeps one plan.
    pub custom_plan: bool,
}

impl Stmt {
    /// Logs the statement when it took long (the slow-query log): its SQL only, never its
    /// parameters, which may be personal data.
    pub(crate) fn note_duration(&self, started: std::time::Instant) {
        let took = started.elapsed();
        if took >= SLOW_STATEMENT {
            let sql: String = self.sql.chars().take(600).collect();
            tracing::warn!(ms = took.as_millis() as u64, sql, "slow statement");
        }
    }

    pub(crate) fn new(sql: impl Into<String>, params: Vec<Param>) -> Self {
        Self { sql: sql.into(), params, custom_plan: false }
    }

    /// Marks a statement whose best plan depends on how rare its values are: free filters (a
    /// tag, a search word, dates, an organisation) over tickets (`plan_depends_on_values`). PostgreSQL connections keep one
    /// generic plan per prepared statement (`plan_cache_mode = force_generic_plan`, set at
    /// connect): left to choose, PostgreSQL planned the queue page's statements afresh at every
    /// execution (2 ms of planning for the list's 0.7 ms of work), while their best plan (equalities
    /// on ids, keys and statuses, read from indexes in page order or from the counter table)
    /// never depends on the values. Marked statements are planned for their values.
    pub(crate) fn with_custom_plan(mut self) -> Self {
        self.custom_plan = true;
        self
    }

    /// This statement with `writes` run as part of it (PostgreSQL data-modifying `WITH` clauses,
    /// their placeholders renumbered after this one's): one statement, so one round trip and its
    /// own transaction. Every part sees the same snapshot and none sees another's rows, but
    /// foreign keys are checked at the end of the whole statement, so a part may refer to the row
    /// this one writes.
    pub(crate) fn with_writes(mut self, writes: Vec<Stmt>) -> Stmt {
        if writes.is_empty() {
            return self;
        }
        let mut parts = Vec::with_capacity(writes.len());
        for (i, w) in writes.into_iter().enumerate() {
            parts.push(format!("w{i} AS ({})", self.bind_expr(w)));
        }
        self.sql = format!("WITH {} {}", parts.join(", "), self.sql);
        self
    }

    /// Appends `part`'s parameters and returns its SQL with its placeholders renumbered to them.
    pub(crate) fn bind_expr(&mut self, part: Stmt) -> String {
        let sql = renumber(&part.sql, self.params.len());
        self.params.extend(part.params);
        sql
    }

    /// Appends a parameter and returns its placeholder.
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

/// A ticket column written with an SQL expression over its own bound values (`$1`…) instead of
/// one value: PostgreSQL's search vector, so that the row is written once with it.
pub(crate) struct Computed {
    pub column: &'static str,
    pub expr: Stmt,
}

/// The columns a ticket row is written with, in order, and their values.
fn ticket_values(t: &Ticket) -> Vec<(&'static str, Param)> {
    let ts = |v: Option<jiff::Timestamp>| Param::opt_int(v.map(micros));
    vec![
        ("number", Param::Int(t.number.0)),
        ("id", Param::Uuid(t.id.0)),
        ("ticket_type", Param::Text(t.ticket_type.as_str().into())),
        ("subject", Param::Text(t.subject.clone())),
        ("description", Param::Text(t.description.clone())),
        ("requester_id", Param::Uuid(t.requester_id.0)),
        ("organisation_id", Param::opt_uuid(t.organisation_id.map(|v| v.0))),
        ("category_id", Param::opt_uuid(t.category_id.map(|v| v.0))),
        ("impact", Param::Text(t.impact.as_str().into())),
        ("urgency", Param::Text(t.urgency.as_str().into())),
        ("priority", Param::Int(i64::from(t.priority.rank()))),
        ("priority_overridden", Param::Bool(t.priority_overridden)),
        ("status", Param::Text(t.status.as_str().into())),
        ("pending_reason", Param::opt_text(t.pending_reason.map(|v| v.as_str().into()))),
        ("group_id", Param::opt_uuid(t.group_id.map(|v| v.0))),
        ("assignee_id", Param::opt_uuid(t.assignee_id.map(|v| v.0))),
        ("support_level", Param::Text(t.support_level.as_str().into())),
        ("channel", Param::Text(t.channel.as_str().into())),
        ("tags", Param::Text(json_text(&t.tags))),
        ("watchers", Param::Text(json_text(&t.watchers))),
        ("custom_fields", Param::Text(json_text(&t.custom_fields))),
        ("resolution_note", Param::opt_text(t.resolution_note.clone())),
        ("resolution_code", Param::opt_text(t.resolution_code.clone())),
        ("merged_into", Param::opt_uuid(t.merged_into.map(|v| v.0))),
        ("version", Param::Int(t.version)),
        ("created_at", Param::Int(micros(t.created_at))),
        ("updated_at", Param::Int(micros(t.updated_at))),
        ("first_response_at", ts(t.first_response_at)),
        ("resolved_at", ts(t.resolved_at)),
        ("closed_at", ts(t.closed_at)),
        ("last_requester_activity_at", ts(t.last_requester_activity_at)),
        ("last_agent_activity_at", ts(t.last_agent_activity_at)),
    ]
}

pub(crate) fn insert_ticket(t: &Ticket, computed: Option<Computed>) -> Stmt {
    insert_ticket_values(ticket_values(t), computed)
}

/// `insert_ticket` without the number: the database gives the next (PostgreSQL: the column's
/// default, from `ticket_number_seq`). The caller adds `RETURNING number` to learn it.
pub(crate) fn insert_ticket_unnumbered(t: &Ticket, computed: Option<Computed>) -> Stmt {
    insert_ticket_values(ticket_values(t).into_iter().filter(|(col, _)| *col != "number").collect(), computed)
}

fn insert_ticket_values(values: Vec<(&'static str, Param)>, computed: Option<Computed>) -> Stmt {
    let mut s = Stmt::new("", vec![]);
    let mut cols: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
    let mut marks: Vec<String> = values.into_iter().map(|(_, p)| s.bind(p)).collect();
    if let Some(c) = computed {
        cols.push(c.column);
        marks.push(s.bind_expr(c.expr));
    }
    s.sql = format!("INSERT INTO tickets ({}) VALUES ({})", cols.join(", "), marks.join(", "));
    s
}

/// Writes every column except number, id and created_at, bumping the version, only if the
/// stored version is `expected`. Exactly one affected row means success.
pub(crate) fn update_ticket(t: &Ticket, expected: i64, computed: Option<Computed>) -> Stmt {
    let mut s = Stmt::new("", vec![]);
    let mut sets = Vec::new();
    for (col, p) in ticket_values(t) {
        if matches!(col, "number" | "id" | "created_at" | "version") {
            continue;
        }
        sets.push(format!("{col} = {}", s.bind(p)));
    }
    if let Some(c) = computed {
        let expr = s.bind_expr(c.expr);
        sets.push(format!("{} = {expr}", c.column));
    }
    let id = s.bind(Param::Uuid(t.id.0));
    let version = s.bind(Param::Int(expected));
    s.sql = format!(
        "UPDATE tickets SET {}, version = version + 1 WHERE id = {id} AND version = {version}",
        sets.join(", ")
    );
    s
}

/// Replaces the tag and watcher index rows of a ticket.
pub(crate) fn replace_ticket_sets(t: &Ticket) -> Vec<Stmt> {
    let id = Param::Uuid(t.id.0);
    let mut out = vec![
        Stmt::new("DELETE FROM ticket_tags WHERE ticket_id = $1", vec![id.clone()]),
        Stmt::new("DELETE FROM ticket_watchers WHERE ticket_id = $1", vec![id]),
    ];
    out.extend(insert_ticket_sets(t));
    out
}

/// The tag and watcher index rows of a ticket that has none stored yet.
pub(crate) fn insert_ticket_sets(t: &Ticket) -> Vec<Stmt> {
    let id = Param::Uuid(t.id.0);
    let mut out = Vec::new();
    for tag in &t.tags {
        out.push(Stmt::new(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2)",
            vec![id.clone(), Param::Text(tag.clone())],
        ));
    }
    for w in &t.watchers {
        out.push(Stmt::new(
            "INSERT INTO ticket_watchers (ticket_id, user_id) VALUES ($1, $2)",
            vec![id.clone(), Param::Uuid(w.0)],
        ));
    }
    out
}

/// The history of a ticket's creation: one "created" line.
pub(crate) fn created_change(ticket: &Ticket, actor: Option<UserId>, now: Timestamp) -> TicketChange {
    TicketChange {
        ticket: ticket.clone(),
        expected_version: 0,
        actor,
        changes: vec![FieldChange { field: "created".into(), old: None, new: Some(ticket.status.to_string()) }],
        comment: None,
        at: now,
        idempotency: None,
        jobs: vec![],
    }
}

pub(crate) fn insert_history(change: &TicketChange) -> Vec<Stmt> {
    change
        .changes
        .iter()
        .map(|c| {
            Stmt::new(
                "INSERT INTO ticket_history (ticket_id, actor_id, at, field, old_value, new_value) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    Param::Uuid(change.ticket.id.0),
                    Param::opt_uuid(change.actor.map(|a| a.0)),
                    Param::Int(micros(change.at)),
                    Param::Text(c.field.clone()),
                    Param::opt_text(c.old.clone()),
                    Param::opt_text(c.new.clone()),
                ],
            )
        })
        .collect()
}

pub(crate) fn insert_comment(c: &Comment) -> Stmt {
    Stmt::new(
        "INSERT INTO comments (id, ticket_id, author_id, body, internal, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Param::Uuid(c.id.0),
            Param::Uuid(c.ticket_id.0),
            Param::opt_uuid(c.author_id.map(|a| a.0)),
            Param::Text(c.body.clone()),
            Param::Bool(c.internal),
            Param::Int(micros(c.created_at)),
        ],
    )
}

/// The WHERE conditions of a ticket query (scope, filters, full text), binding into `s`.
/// How a list with search words finds its tickets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Words {
    /// `t.number IN (matches)`: for counts and for orders the search index does not have.
    Filter,
    /// The caller drives the query from the SQLite search index (`s`), newest first; the
    /// words are its `MATCH`, not a condition on `t`.
    Driving,
}

fn ticket_conditions(dialect: Dialect, q: &TicketQuery, scope: &TicketScope, s: &mut Stmt) -> Vec<String> {
    conditions(dialect, q, scope, s, Words::Filter)
}

fn conditions(dialect: Dialect, q: &TicketQuery, scope: &TicketScope, s: &mut Stmt, words_as: Words) -> Vec<String> {
    let mut wh: Vec<String> = Vec::new();
    let watches = |s: &mut Stmt, user: Uuid| {
        format!(
            "EXISTS (SELECT 1 FROM ticket_watchers w WHERE w.ticket_id = t.id AND w.user_id = {})",
            s.bind(Param::Uuid(user))
        )
    };
    let public_only = matches!(scope, TicketScope::Requester { .. });
    match scope {
        TicketScope::All => {}
        TicketScope::Groups { user_id, group_ids } => {
            let mut any = vec!["t.group_id IS NULL".to_string()];
            if !group_ids.is_empty() {
                let marks: Vec<String> = group_ids.iter().map(|g| s.bind(Param::Uuid(g.0))).collect();
                any.push(format!("t.group_id IN ({})", marks.join(", ")));
            }
            any.push(format!("t.assignee_id = {}", s.bind(Param::Uuid(user_id.0))));
            any.push(format!("t.requester_id = {}", s.bind(Param::Uuid(user_id.0))));
            any.push(watches(s, user_id.0));
            wh.push(format!("({})", any.join(" OR ")));
        }
        TicketScope::Requester { user_id, organisation_id } => {
            // A union of indexed look-ups: an OR with EXISTS would make both databases scan
            // every ticket to find the few of one person.
            let me = s.bind(Param::Uuid(user_id.0));
            let mut sets = vec![
                format!("SELECT id FROM tickets WHERE requester_id = {me}"),
                format!("SELECT ticket_id FROM ticket_watchers WHERE user_id = {me}"),
            ];
            if let Some(org) = organisation_id {
                sets.push(format!("SELECT id FROM tickets WHERE organisation_id = {}", s.bind(Param::Uuid(org.0))));
            }
            wh.push(format!("t.id IN ({})", sets.join(" UNION ")));
        }
    }
    let mut any_of = |s: &mut Stmt, col: &str, values: Vec<Param>| {
        if !values.is_empty() {
            let marks: Vec<String> = values.into_iter().map(|v| s.bind(v)).collect();
            wh.push(format!("t.{col} IN ({})", marks.join(", ")));
        }
    };
    any_of(s, "status", q.statuses.iter().map(|v| Param::Text(v.as_str().into())).collect());
    any_of(s, "priority", q.priorities.iter().map(|v| Param::Int(i64::from(v.rank()))).collect());
    any_of(s, "ticket_type", q.types.iter().map(|v| Param::Text(v.as_str().into())).collect());
    let mut opt_eq = |s: &mut Stmt, col: &str, v: Option<Option<Uuid>>| match v {
        None => {}
        Some(None) => wh.push(format!("t.{col} IS NULL")),
        Some(Some(id)) => wh.push(format!("t.{col} = {}", s.bind(Param::Uuid(id)))),
    };
    opt_eq(s, "group_id", q.group_id.map(|g| g.map(|g| g.0)));
    opt_eq(s, "assignee_id", q.assignee_id.map(|g| g.map(|g| g.0)));
    opt_eq(s, "requester_id", q.requester_id.map(|g| Some(g.0)));
    opt_eq(s, "organisation_id", q.organisation_id.map(|g| Some(g.0)));
    opt_eq(s, "category_id", q.category_id.map(|g| Some(g.0)));
    if let Some(tag) = &q.tag {
        let m = s.bind(Param::Text(tag.clone()));
        wh.push(format!("EXISTS (SELECT 1 FROM ticket_tags g WHERE g.ticket_id = t.id AND g.tag = {m})"));
    }
    for (col, op, v) in [
        ("created_at", ">=", q.created_after),
        ("created_at", "<", q.created_before),
        ("updated_at", ">=", q.updated_after),
        ("updated_at", "<", q.updated_before),
    ] {
        if let Some(v) = v {
            let m = s.bind(Param::Int(micros(v)));
            wh.push(format!("t.{col} {op} {m}"));
        }
    }
    if !q.terms.is_empty() {
        // Terms are letters and digits only (core::search), so quoting them is safe.
        match dialect {
            Dialect::Sqlite => {
                let words: Vec<String> = q.terms.iter().map(|w| format!("\"{w}\"")).collect();
                let expr = if public_only {
                    format!("{{subject description public_text}} : ({})", words.join(" AND "))
                } else {
                    words.join(" AND ")
                };
                let m = s.bind(Param::Text(expr));
                wh.push(match words_as {
                    Words::Filter => {
                        format!("t.number IN (SELECT rowid FROM ticket_search WHERE ticket_search MATCH {m})")
                    }
                    Words::Driving => format!("ticket_search MATCH {m}"),
                });
            }
            Dialect::Postgres => {
                // Requesters match public text only: weight A (migration 0015).
                let weight = if public_only { ":A" } else { "" };
                let words: Vec<String> = q.terms.iter().map(|w| format!("'{w}'{weight}")).collect();
                let m = s.bind(Param::Text(words.join(" & ")));
                wh.push(format!("t.search @@ to_tsquery('simple', {m})"));
            }
        }
    }
    wh
}

/// The scope still to apply to `q` (an agent's "mine": no visibility filter, see
/// `TicketScope::for_assignee`; it walked the agent's assigned tickets three times to count them).
fn narrowed<'a>(q: &TicketQuery, scope: &'a TicketScope) -> &'a TicketScope {
    match q.assignee_id {
        Some(Some(assignee)) => scope.for_assignee(assignee),
        _ => scope,
    }
}

/// Builds the ticket list query for a dialect: scope, filters, full text, keyset page.
pub(crate) fn list_tickets(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Stmt {
    planned_for(q, list_tickets_sql(dialect, q, scope))
}

fn list_tickets_sql(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Stmt {
    let scope = narrowed(q, scope);
    if let Some(s) = queue_by_source(dialect, q, scope) {
        return s;
    }
    let mut s = Stmt::new("", vec![]);
    // Several statuses ("new, open or pending" — every queue): one page per status, each read
    // in index order (status, sort column, number), merged. As one `status IN (…)` neither
    // database can read an index in the page's order, so both sorted every active ticket
    // (50k at 1M tickets) to return 50. Full-text queries stay whole: they start from the
    // search index, and splitting them would search once per status.
    if q.statuses.len() > 1 && q.terms.is_empty() {
        let branches: Vec<String> = q
            .statuses
            .iter()
            .map(|status| {
                let one = TicketQuery { statuses: vec![*status], ..q.clone() };
                page_select(dialect, &one, scope, &mut s)
            })
            .collect();
        s.sql = merged_page(q, "*", &branches, "UNION ALL");
        return s;
    }
    s.sql = page_select(dialect, q, scope, &mut s);
    s
}

/// A staff member's queue in priority order ("open in my groups"): one ordered read per status
/// and source of visibility — each of their groups, no group yet, assigned to them — plus the
/// few they requested or watch, merged, and then the page's rows. Each read walks an index
/// (`tickets_group_queue` on SQLite, `tickets_group_priority` on PostgreSQL, and
/// `tickets_assignee_queue`) in the page's order, takes sort keys only and stops after a page,
/// so it meets only visible tickets. One read of all tickets of a status, checking each, met
/// four invisible tickets per visible one when their groups hold a fifth of the desk, and
/// fetched each from the table (1.2 ms → 0.15 ms per page at 1M tickets). `None` for other
/// scopes, orders and searches.
fn queue_by_source(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Option<Stmt> {
    let TicketScope::Groups { user_id, group_ids } = scope else {
        return None;
    };
    if q.sort != TicketSortKey::Priority || q.statuses.is_empty() || !q.terms.is_empty() {
        return None;
    }
    let mut s = Stmt::new("", vec![]);
    let tickets = "tickets t";
    let mut branches = Vec::new();
    for status in &q.statuses {
        let one = TicketQuery { statuses: vec![*status], ..q.clone() };
        for group in group_ids {
            let source = format!("t.group_id = {}", s.bind(Param::Uuid(group.0)));
            branches.push(sort_keys_page(dialect, &one, tickets, source, &mut s));
        }
        branches.push(sort_keys_page(dialect, &one, tickets, "t.group_id IS NULL".to_owned(), &mut s));
        let source = format!("t.assignee_id = {}", s.bind(Param::Uuid(user_id.0)));
        branches.push(sort_keys_page(dialect, &one, tickets, source, &mut s));
    }
    let source = format!("t.requester_id = {}", s.bind(Param::Uuid(user_id.0)));
    branches.push(sort_keys_page(dialect, q, tickets, source, &mut s));
    let source = format!("w.user_id = {}", s.bind(Param::Uuid(user_id.0)));
    branches.push(sort_keys_page(dialect, q, watched_tickets(dialect), source, &mut s));
    // UNION, not UNION ALL: a ticket of their group assigned to them comes from two sources.
    let numbers = merged_page(q, "number", &branches, "UNION");
    let (col, dir) = (q.sort.column(), direction(q));
    s.sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number IN ({numbers}) ORDER BY t.{col} {dir}, t.number {dir}"
    );
    Some(s)
}

/// The first page, in the query's order, of the rows of `pages` (each a page in that order)
/// joined by `set_op`; `columns` of it.
fn merged_page(q: &TicketQuery, columns: &str, pages: &[String], set_op: &str) -> String {
    let parts: Vec<String> = pages.iter().enumerate().map(|(i, p)| format!("SELECT * FROM ({p}) AS p{i}")).collect();
    let (col, dir, limit) = (q.sort.column(), direction(q), q.limit);
    format!(
        "SELECT {columns} FROM ({}) AS merged ORDER BY {col} {dir}, number {dir} LIMIT {limit}",
        parts.join(&format!(" {set_op} "))
    )
}

fn direction(q: &TicketQuery) -> &'static str {
    if q.descending { "DESC" } else { "ASC" }
}

/// The sort key and number of a page of the tickets of `from` (`t`) that match `q` and `source`,
/// in the query's order.
fn sort_keys_page(dialect: Dialect, q: &TicketQuery, from: &str, source: String, s: &mut Stmt) -> String {
    let mut wh = ticket_conditions(dialect, q, &TicketScope::All, s);
    wh.push(source);
    wh.extend(after_cursor(q, s));
    let col = q.sort.column();
    format!("SELECT t.{col}, t.number FROM {from} WHERE {} {}", wh.join(" AND "), order_and_limit(q))
}

/// Tickets (`t`) joined to their watchers (`w`), the watcher's index read first. SQLite keeps
/// the left side of a CROSS JOIN outermost; PostgreSQL spells it JOIN.
fn watched_tickets(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "ticket_watchers w CROSS JOIN tickets t ON t.id = w.ticket_id",
        Dialect::Postgres => "ticket_watchers w JOIN tickets t ON t.id = w.ticket_id",
    }
}

/// The keyset condition of a later page: after the cursor in the query's order.
fn after_cursor(q: &TicketQuery, s: &mut Stmt) -> Option<String> {
    let c = q.after?;
    let cmp = if q.descending { "<" } else { ">" };
    let v = s.bind(Param::Int(c.value));
    let n = s.bind(Param::Int(c.number));
    Some(format!("(t.{}, t.number) {cmp} ({v}, {n})", q.sort.column()))
}

/// `ORDER BY` the query's sort key then number, and its page size.
fn order_and_limit(q: &TicketQuery) -> String {
    let dir = direction(q);
    // A number in the text, not a parameter: SQLite's planner reads a bound LIMIT's value, so
    // each new binding made it prepare the statement again (a fifth of the queue page's list
    // query). Pages come in a few sizes: a few cached statements.
    format!("ORDER BY t.{} {dir}, t.number {dir} LIMIT {}", q.sort.column(), q.limit)
}

/// One page of tickets matching `q`, in the query's order.
fn page_select(dialect: Dialect, q: &TicketQuery, scope: &TicketScope, s: &mut Stmt) -> String {
    // Search words in number order (the search default): SQLite reads matches from the search
    // index newest first and stops at a page of visible ones, instead of looking at every
    // matching ticket (10,000 for a word in 1% of a million) to sort them.
    let driving = dialect == Dialect::Sqlite && !q.terms.is_empty() && q.sort == TicketSortKey::Number;
    let mut wh = conditions(dialect, q, scope, s, if driving { Words::Driving } else { Words::Filter });
    let (dir, cmp) = if q.descending { ("DESC", "<") } else { ("ASC", ">") };
    wh.extend(after_cursor(q, s));
    if let (true, Some(c)) = (driving, q.after) {
        // Also as a rowid bound the search index applies itself, so later pages start there.
        let n = s.bind(Param::Int(c.number));
        wh.push(format!("ticket_search.rowid {cmp} {n}"));
    }
    let where_sql = if wh.is_empty() { String::new() } else { format!("WHERE {}", wh.join(" AND ")) };
    if driving {
        let limit = q.limit;
        return format!(
            "SELECT {TICKET_COLUMNS} FROM ticket_search CROSS JOIN tickets t ON t.number = ticket_search.rowid \
             {where_sql} ORDER BY ticket_search.rowid {dir} LIMIT {limit}"
        );
    }
    format!("SELECT {TICKET_COLUMNS} FROM tickets t {where_sql} {}", order_and_limit(q))
}

/// Text a ticket's search entry is made of: (subject, description, public replies, internal notes).
pub(crate) fn search_document(t: &Ticket, comments: &[(String, bool)]) -> (String, String, String, String) {
    let mut public = String::new();
    let mut internal = String::new();
    for (body, is_internal) in comments {
        let target = if *is_internal { &mut internal } else { &mut public };
        target.push_str(body);
        target.push('\n');
    }
    (t.subject.clone(), t.description.clone(), public, internal)
}

/// The writes that go with a guarded ticket update (see `plan_save`).
pub(crate) struct SaveWrites {
    /// Replace the tag and watcher index rows: deletes, then inserts of rows that may be the
    /// same, so they run one after the other.
    pub sets: Vec<Stmt>,
    /// Only add rows (history lines, the comment, queued jobs): none depends on another.
    pub added: Vec<Stmt>,
}

/// The writes after the guarded ticket update: tag/watcher index, history, comment, jobs.
pub(crate) fn plan_save(change: &TicketChange) -> SaveWrites {
    let sets = if change.changes.iter().any(|c| c.field == "tags" || c.field == "watchers") {
        replace_ticket_sets(&change.ticket)
    } else {
        Vec::new()
    };
    let mut added = insert_history(change);
    added.extend(change.comment.as_ref().map(insert_comment));
    added.extend(change.jobs.iter().map(|j| crate::mail::insert_job(j, change.at)));
    SaveWrites { sets, added }
}

/// A ticket's comment texts in order, for its search entry.
pub(crate) fn comment_texts(ticket: ferrodesk_core::ids::TicketId) -> Stmt {
    Stmt::new(
        "SELECT body, internal FROM comments WHERE ticket_id = $1 ORDER BY created_at",
        vec![Param::Uuid(ticket.0)],
    )
}

/// Whether the change alters searchable text.
pub(crate) fn needs_reindex(change: &TicketChange) -> bool {
    change.comment.is_some() || change.changes.iter().any(|c| c.field == "subject" || c.field == "description")
}

/// What `row::comment` decodes.
const COMMENT_COLUMNS: &str = "id, ticket_id, author_id, body, internal, created_at";

/// A ticket by id or number, and all its comments (internal notes too), as two statements that
/// need nothing from each other: the comments find their ticket themselves, so both can be
/// sent at once (`Store::ticket_with_comments`).
pub(crate) fn ticket_with_comments(ticket: ferrodesk_core::ids::TicketRef) -> (Stmt, Stmt) {
    let (condition, key) = ticket_condition(ticket);
    let comments = Stmt::new(
        format!(
            "SELECT {COMMENT_COLUMNS} FROM comments \
             WHERE ticket_id = (SELECT t.id FROM tickets t WHERE {condition}) ORDER BY created_at, id"
        ),
        vec![key],
    );
    (find_ticket(ticket), comments)
}

/// One ticket by id or number.
pub(crate) fn find_ticket(ticket: ferrodesk_core::ids::TicketRef) -> Stmt {
    let (condition, key) = ticket_condition(ticket);
    Stmt::new(format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE {condition}"), vec![key])
}

fn ticket_condition(ticket: ferrodesk_core::ids::TicketRef) -> (&'static str, Param) {
    use ferrodesk_core::ids::TicketRef;
    match ticket {
        TicketRef::Id(id) => ("t.id = $1", Param::Uuid(id.0)),
        TicketRef::Number(n) => ("t.number = $1", Param::Int(n.0)),
    }
}

pub(crate) fn list_comments(ticket: ferrodesk_core::ids::TicketId, include_internal: bool) -> Stmt {
    let filter = if include_internal { "" } else { " AND internal = $2" };
    let mut params = vec![Param::Uuid(ticket.0)];
    if !include_internal {
        params.push(Param::Bool(false));
    }
    Stmt::new(
        format!("SELECT {COMMENT_COLUMNS} FROM comments WHERE ticket_id = $1{filter} ORDER BY created_at, id"),
        params,
    )
}

pub(crate) const UPSERT_SETTING: &str =
    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

pub(crate) fn settings_to_pairs(s: &Settings) -> Vec<(&'static str, String)> {
    vec![
        ("priority_matrix", json_text(&s.priority_matrix)),
        ("agents_see_all", s.agents_see_all.to_string()),
        ("mail_senders", json_text(&s.mail_senders)),
        ("mail_trust", json_text(&s.mail_trust)),
        ("disabled_notifications", json_text(&s.disabled_notifications)),
    ]
}

pub(crate) fn settings_from_pairs(pairs: &[(String, String)]) -> Settings {
    let mut s = Settings::default();
    for (k, v) in pairs {
        match k.as_str() {
            "priority_matrix" => {
                if let Ok(m) = serde_json::from_str(v) {
                    s.priority_matrix = m;
                }
            }
            "agents_see_all" => s.agents_see_all = v == "true",
            "mail_senders" => {
                if let Ok(p) = serde_json::from_str(v) {
                    s.mail_senders = p;
                }
            }
            "mail_trust" => {
                if let Ok(t) = serde_json::from_str(v) {
                    s.mail_trust = t;
                }
            }
            "disabled_notifications" => {
                if let Ok(d) = serde_json::from_str(v) {
                    s.disabled_notifications = d;
                }
            }
            _ => {}
        }
    }
    s
}

pub(crate) fn insert_user(u: &ferrodesk_core::user::User, password_hash: Option<&str>) -> Stmt {
    let now = micros(u.created_at);
    Stmt::new(
        "INSERT INTO users (id, email, name, role, organisation_id, password_hash, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Param::Uuid(u.id.0),
            Param::Text(u.email.as_str().into()),
            Param::Text(u.name.clone()),
            Param::Text(u.role.as_str().into()),
            Param::opt_uuid(u.organisation_id.map(|o| o.0)),
            Param::opt_text(password_hash.map(str::to_owned)),
            Param::Bool(u.active),
            Param::Int(now),
            Param::Int(now),
        ],
    )
}

pub(crate) fn update_user(u: &ferrodesk_core::user::User) -> Stmt {
    Stmt::new(
        "UPDATE users SET email = $1, name = $2, role = $3, organisation_id = $4, active = $5, updated_at = $6 WHERE id = $7",
        vec![
            Param::Text(u.email.as_str().into()),
            Param::Text(u.name.clone()),
            Param::Text(u.role.as_str().into()),
            Param::opt_uuid(u.organisation_id.map(|o| o.0)),
            Param::Bool(u.active),
            Param::Int(micros(jiff::Timestamp::now())),
            Param::Uuid(u.id.0),
        ],
    )
}

pub(crate) fn list_users(q: &UserQuery) -> Stmt {
    let mut s = Stmt::new("", vec![]);
    let mut wh = Vec::new();
    if let Some(r) = q.role {
        wh.push(format!("role = {}", s.bind(Param::Text(r.as_str().into()))));
    }
    if q.staff_only {
        // Written as the partial index users_staff (migration 0008) is, so both databases use it.
        wh.push("role <> 'requester'".to_owned());
    }
    if let Some(o) = q.organisation_id {
        wh.push(format!("organisation_id = {}", s.bind(Param::Uuid(o.0))));
    }
    if let Some(t) = &q.text {
        // Escape LIKE wildcards so the text is matched literally.
        let pattern = format!("%{}%", t.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let m = s.bind(Param::Text(pattern));
        wh.push(format!("(lower(name) LIKE {m} ESCAPE '\\' OR email LIKE {m} ESCAPE '\\')"));
    }
    if let Some(after) = &q.after_email {
        wh.push(format!("email > {}", s.bind(Param::Text(after.clone()))));
    }
    // A number in the text, as for tickets (see `page_select`).
    let limit = q.limit;
    let where_sql = if wh.is_empty() { String::new() } else { format!("WHERE {}", wh.join(" AND ")) };
    s.sql = format!("SELECT {} FROM users {where_sql} ORDER BY email LIMIT {limit}", crate::row::USER_COLUMNS);
    s
}

/// (the user with organisation sharing, their groups, the agents-see-all setting).
pub(crate) fn actor_statements(id: ferrodesk_core::ids::UserId) -> (Stmt, Stmt, Stmt) {
    (
        Stmt::new(
            "SELECT u.role, u.organisation_id, coalesce(o.shares_tickets, $2) AS shares_tickets \
             FROM users u LEFT JOIN organisations o ON o.id = u.organisation_id WHERE u.id = $1 AND u.active = $3",
            vec![Param::Uuid(id.0), Param::Bool(false), Param::Bool(true)],
        ),
        Stmt::new("SELECT group_id FROM group_members WHERE user_id = $1", vec![Param::Uuid(id.0)]),
        Stmt::new("SELECT value FROM settings WHERE key = 'agents_see_all'", vec![]),
    )
}

/// The actor from the answers to `actor_statements` (`None`: no such active user).
pub(crate) fn actor_from(
    id: ferrodesk_core::ids::UserId,
    who: Option<(ferrodesk_core::user::Role, Option<ferrodesk_core::ids::OrganisationId>, bool)>,
    group_ids: Vec<ferrodesk_core::ids::GroupId>,
    agents_see_all: Option<String>,
) -> Option<ferrodesk_core::access::Actor> {
    let (role, organisation_id, organisation_shares_tickets) = who?;
    Some(ferrodesk_core::access::Actor {
        user_id: id,
        role,
        group_ids,
        organisation_id,
        organisation_shares_tickets,
        agents_see_all: agents_see_all.is_some_and(|v| v == "true"),
    })
}

pub(crate) fn insert_token(t: &ApiToken, hash: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        vec![
            Param::Uuid(t.id.0),
            Param::Uuid(t.user_id.0),
            Param::Text(t.name.clone()),
            Param::Text(hash.into()),
            Param::Int(micros(t.created_at)),
        ],
    )
}

/// One user by id.
pub(crate) fn user_by_id(id: UserId) -> Stmt {
    Stmt::new(format!("SELECT {} FROM users WHERE id = $1", crate::row::USER_COLUMNS), vec![Param::Uuid(id.0)])
}

/// Finds a live token of an active user by hash: its id, owner and last use.
pub(crate) fn find_token(hash: &str) -> Stmt {
    Stmt::new(
        "SELECT k.id, k.user_id, k.last_used_at FROM api_tokens k JOIN users u ON u.id = k.user_id \
         WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.active = $2",
        vec![Param::Text(hash.into()), Param::Bool(true)],
    )
}

/// How often a token's or a session's use is recorded: a read should not queue a write every time.
const USE_RECORDED_EVERY_MICROS: i64 = 60_000_000;

/// Whether a use at `now` is recorded, the last recorded at `last` (microseconds).
fn use_record_due(last: Option<i64>, now: jiff::Timestamp) -> bool {
    last.is_none_or(|t| micros(now) - t > USE_RECORDED_EVERY_MICROS)
}

/// Records a token's use, at most once a minute (`None` when it was used within the last one).
pub(crate) fn touch_token(
    id: ferrodesk_core::ids::TokenId,
    last_used: Option<i64>,
    now: jiff::Timestamp,
) -> Option<Stmt> {
    use_record_due(last_used, now).then(|| {
        Stmt::new(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
            vec![Param::Int(micros(now)), Param::Uuid(id.0)],
        )
    })
}

pub(crate) fn revoke_token(
    user: ferrodesk_core::ids::UserId,
    id: ferrodesk_core::ids::TokenId,
    now: jiff::Timestamp,
) -> Stmt {
    Stmt::new(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        vec![Param::Int(micros(now)), Param::Uuid(id.0), Param::Uuid(user.0)],
    )
}

pub(crate) fn insert_organisation(o: &Organisation) -> Stmt {
    Stmt::new(
        "INSERT INTO organisations (id, name, shares_tickets, created_at) VALUES ($1, $2, $3, $4)",
        vec![
            Param::Uuid(o.id.0),
            Param::Text(o.name.clone()),
            Param::Bool(o.shares_tickets),
            Param::Int(micros(o.created_at)),
        ],
    )
}

pub(crate) fn insert_group(g: &Group) -> Stmt {
    Stmt::new(
        "INSERT INTO support_groups (id, name, support_level, created_at) VALUES ($1, $2, $3, $4)",
        vec![
            Param::Uuid(g.id.0),
            Param::Text(g.name.clone()),
            Param::Text(g.support_level.as_str().into()),
            Param::Int(micros(g.created_at)),
        ],
    )
}

pub(crate) fn add_member(group: ferrodesk_core::ids::GroupId, user: ferrodesk_core::ids::UserId) -> Stmt {
    Stmt::new(
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        vec![Param::Uuid(group.0), Param::Uuid(user.0)],
    )
}

pub(crate) fn insert_category(c: &Category) -> Stmt {
    Stmt::new(
        "INSERT INTO categories (id, parent_id, name, created_at) VALUES ($1, $2, $3, $4)",
        vec![
            Param::Uuid(c.id.0),
            Param::opt_uuid(c.parent_id.map(|p| p.0)),
            Param::Text(c.name.clone()),
            Param::Int(micros(c.created_at)),
        ],
    )
}

pub(crate) const SESSION_COLUMNS: &str = "id, user_id, csrf_token, created_at, last_seen_at, expires_at";

pub(crate) fn insert_session(s: &Session, secret_hash: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            Param::Uuid(s.id.0),
            Param::Text(secret_hash.into()),
            Param::Uuid(s.user_id.0),
            Param::Text(s.csrf_token.clone()),
            Param::Int(micros(s.created_at)),
            Param::Int(micros(s.last_seen_at)),
            Param::Int(micros(s.expires_at)),
        ],
    )
}

/// A live session by its secret's hash: not expired, and seen within `idle`.
pub(crate) fn find_session(secret_hash: &str, now: jiff::Timestamp, idle: jiff::SignedDuration) -> Stmt {
    let idle_since = micros(now) - idle.as_micros() as i64;
    Stmt::new(
        format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE secret_hash = $1 AND expires_at > $2 AND last_seen_at > $3"
        ),
        vec![Param::Text(secret_hash.into()), Param::Int(micros(now)), Param::Int(idle_since)],
    )
}

/// Records a session's activity, at most once a minute like a token's (`None` when not due).
pub(crate) fn touch_session(s: &Session, now: jiff::Timestamp) -> Option<Stmt> {
    use_record_due(Some(micros(s.last_seen_at)), now).then(|| {
        Stmt::new(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2",
            vec![Param::Int(micros(now)), Param::Uuid(s.id.0)],
        )
    })
}

pub(crate) fn delete_sessions(user: ferrodesk_core::ids::UserId, keep: Option<ferrodesk_core::ids::SessionId>) -> Stmt {
    match keep {
        Some(k) => Stmt::new(
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2",
            vec![Param::Uuid(user.0), Param::Uuid(k.0)],
        ),
        None => Stmt::new("DELETE FROM sessions WHERE user_id = $1", vec![Param::Uuid(user.0)]),
    }
}

/// Counts one attempt for a key unless it is at its limit in the current window. The upsert is
/// atomic in both dialects: concurrent attempts cannot slip past the limit. No row back: refused.
pub(crate) fn count_login_attempt(rule: &ThrottleRule, now: jiff::Timestamp, window: jiff::SignedDuration) -> Stmt {
    let expired_before = micros(now) - window.as_micros() as i64;
    Stmt::new(
        "INSERT INTO login_throttle (key, attempts, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.attempts + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
         WHERE login_throttle.window_start <= $3 OR login_throttle.attempts < $4 \
         RETURNING attempts",
        vec![
            Param::Text(rule.key.clone()),
            Param::Int(micros(now)),
            Param::Int(expired_before),
            Param::Int(rule.limit),
        ],
    )
}

/// When the window of a blocked key ends.
pub(crate) fn throttle_window_start(key: &str) -> Stmt {
    Stmt::new("SELECT window_start FROM login_throttle WHERE key = $1", vec![Param::Text(key.into())])
}

/// Replaces the rows of every counter key that has more than one with their sum (none when it is
/// 0), in one statement. Safe beside writers and other compactions: rows appended meanwhile are
/// not in its snapshot and stay; a row another compaction deleted first is skipped, not summed
/// twice. Keys with a single row are left alone, so a quiet table is only read.
pub(crate) const COMPACT_VIEW_COUNTERS: &str = "WITH busy AS ( \
         SELECT group_key, status, assignee_key FROM ticket_counts GROUP BY 1, 2, 3 HAVING count(*) > 1), \
     gone AS ( \
         DELETE FROM ticket_counts c USING busy b \
         WHERE c.group_key = b.group_key AND c.status = b.status AND c.assignee_key = b.assignee_key \
         RETURNING c.group_key, c.status, c.assignee_key, c.n) \
     INSERT INTO ticket_counts (group_key, status, assignee_key, n) \
     SELECT group_key, status, assignee_key, sum(n) FROM gone GROUP BY 1, 2, 3 HAVING sum(n) <> 0";

/// Tickets per status from the view counters (SQLite 0019, PostgreSQL 0021): a few hundred rows
/// instead of every ticket (/metrics is scraped every few seconds). A status with none left is
/// not listed. (PostgreSQL's sum of BIGINT is NUMERIC, hence the cast.)
pub(crate) const TICKET_COUNTS_FROM_COUNTERS: &str =
    "SELECT status, CAST(sum(n) AS BIGINT) AS n FROM ticket_counts GROUP BY status HAVING sum(n) > 0 ORDER BY status";

pub(crate) fn update_organisation(o: &Organisation) -> Stmt {
    Stmt::new(
        "UPDATE organisations SET name = $1, shares_tickets = $2 WHERE id = $3",
        vec![Param::Text(o.name.clone()), Param::Bool(o.shares_tickets), Param::Uuid(o.id.0)],
    )
}

pub(crate) fn update_group(g: &Group) -> Stmt {
    Stmt::new(
        "UPDATE support_groups SET name = $1, support_level = $2 WHERE id = $3",
        vec![Param::Text(g.name.clone()), Param::Text(g.support_level.as_str().into()), Param::Uuid(g.id.0)],
    )
}

pub(crate) fn update_category(c: &Category) -> Stmt {
    Stmt::new(
        "UPDATE categories SET name = $1, parent_id = $2 WHERE id = $3",
        vec![Param::Text(c.name.clone()), Param::opt_uuid(c.parent_id.map(|p| p.0)), Param::Uuid(c.id.0)],
    )
}

/// Counts the tickets a query matches (ignoring its page and sort).
pub(crate) fn count_tickets(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Stmt {
    planned_for(q, count_tickets_sql(dialect, q, scope))
}

fn count_tickets_sql(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Stmt {
    let scope = narrowed(q, scope);
    if let Some(s) = count_from_counters(dialect, q, scope) {
        return s;
    }
    if let TicketScope::Groups { user_id, group_ids } = scope {
        return count_in_groups(dialect, q, *user_id, group_ids);
    }
    let mut s = Stmt::new("", vec![]);
    let wh = ticket_conditions(dialect, q, scope, &mut s);
    let where_sql = if wh.is_empty() { String::new() } else { format!("WHERE {}", wh.join(" AND ")) };
    s.sql = format!("SELECT count(*) AS n FROM tickets t {where_sql}");
    s
}

pub(crate) fn users_by_ids(ids: &[ferrodesk_core::ids::UserId]) -> Stmt {
    let mut s = Stmt::new("", vec![]);
    let marks: Vec<String> = ids.iter().map(|u| s.bind(Param::Uuid(u.0))).collect();
    let list = if marks.is_empty() { "NULL".to_owned() } else { marks.join(", ") };
    s.sql = format!("SELECT {} FROM users WHERE id IN ({list})", crate::row::USER_COLUMNS);
    s
}

pub(crate) fn list_all_tokens(limit: u32) -> Stmt {
    Stmt::new(
        "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at DESC LIMIT $1",
        vec![Param::Int(i64::from(limit))],
    )
}

/// The statements that store one imported ticket (its number already set): row (with
/// `computed`, see `Computed`), tag and watcher index, comments and an "imported" history line.
pub(crate) fn import_statements(item: &ImportedTicket, computed: Option<Computed>) -> Vec<Stmt> {
    let t = &item.ticket;
    let mut out = vec![insert_ticket(t, computed)];
    out.extend(insert_ticket_sets(t));
    for c in &item.comments {
        out.push(insert_comment(c));
    }
    let created = TicketChange {
        ticket: t.clone(),
        expected_version: 0,
        actor: None,
        changes: vec![ferrodesk_core::ticket::FieldChange {
            field: "imported".into(),
            old: None,
            new: Some(t.status.to_string()),
        }],
        comment: None,
        at: t.created_at,
        idempotency: None,
        jobs: vec![],
    };
    out.extend(insert_history(&created));
    out
}

/// The search document of an imported ticket, from its comments in memory.
pub(crate) fn import_document(item: &ImportedTicket) -> (String, String, String, String) {
    let comments: Vec<(String, bool)> = item.comments.iter().map(|c| (c.body.clone(), c.internal)).collect();
    search_document(&item.ticket, &comments)
}

/// Whether a query's best plan depends on how rare its values are (see `Stmt::with_custom_plan`):
/// filters other than statuses, assignee, group and requester, each an equality that an index
/// answers in page order (a requester's tickets: `tickets_requester_recent`, migration 0022).
fn plan_depends_on_values(q: &TicketQuery) -> bool {
    !q.priorities.is_empty()
        || !q.types.is_empty()
        || q.organisation_id.is_some()
        || q.category_id.is_some()
        || q.tag.is_some()
        || q.created_after.is_some()
        || q.created_before.is_some()
        || q.updated_after.is_some()
        || q.updated_before.is_some()
        || !q.terms.is_empty()
}

/// `s`, a list or count of `q`, marked for a custom plan when its best plan depends on `q`'s values.
fn planned_for(q: &TicketQuery, s: Stmt) -> Stmt {
    if plan_depends_on_values(q) { s.with_custom_plan() } else { s }
}

/// Whether a query filters by statuses and assignee only, as the desk's views do.
fn only_view_filters(q: &TicketQuery) -> bool {
    !plan_depends_on_values(q) && q.group_id.is_none() && q.requester_id.is_none()
}

/// A view count (statuses and assignee, nothing else) from the counters that triggers keep per
/// group, status and assignee (SQLite 0009/0019, PostgreSQL 0021, where a key has several rows
/// until they are folded together): a sum over a few rows instead of an index scan. `None` when
/// the query or scope needs the tickets themselves. Keys are ids as text, bound as text.
fn count_from_counters(dialect: Dialect, q: &TicketQuery, scope: &TicketScope) -> Option<Stmt> {
    if !only_view_filters(q) {
        return None;
    }
    let mut s = Stmt::new("", vec![]);
    let mut conditions = Vec::new();
    if !q.statuses.is_empty() {
        let marks: Vec<String> = q.statuses.iter().map(|v| s.bind(Param::Text(v.as_str().into()))).collect();
        conditions.push(format!("status IN ({})", marks.join(", ")));
    }
    match q.assignee_id {
        None => {}
        Some(None) => conditions.push("assignee_key = ''".to_owned()),
        Some(Some(a)) => conditions.push(format!("assignee_key = {}", s.bind(key(a.0)))),
    }
    let counted = |group_condition: String| {
        let mut all = conditions.clone();
        all.push(group_condition);
        format!("(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM ticket_counts WHERE {})", all.join(" AND "))
    };
    match scope {
        TicketScope::All => {
            let everything = counted("1 = 1".to_owned());
            s.sql = format!("SELECT {everything} AS n");
        }
        TicketScope::Groups { user_id, group_ids } => {
            // Three disjoint parts: their groups and the ungrouped, then other groups' tickets
            // assigned to them (both from the counters), then other groups' tickets that are
            // theirs only by request or watch (few, from the tickets).
            let mut keys: Vec<String> = group_ids.iter().map(|g| s.bind(key(g.0))).collect();
            keys.push("''".to_owned());
            let keys = keys.join(", ");
            let in_groups = counted(format!("group_key IN ({keys})"));
            let me = s.bind(key(user_id.0));
            let assigned = counted(format!("assignee_key = {me} AND group_key NOT IN ({keys})"));
            let involved = own_in_other_groups(dialect, q, *user_id, group_ids, false, &mut s);
            s.sql = format!("SELECT {in_groups} + {assigned} + {involved} AS n");
        }
        TicketScope::Requester { .. } => return None,
    }
    Some(s)
}

/// An id as the counters hold it.
fn key(id: Uuid) -> Param {
    Param::Text(id.to_string())
}

/// An agent's count as the sum of three disjoint parts, each served by an index: tickets of
/// their groups, tickets with no group yet, and tickets of other groups that are theirs by
/// assignment, request or watch. (The scope's `OR … EXISTS` form made every count scan.)
fn count_in_groups(
    dialect: Dialect,
    q: &TicketQuery,
    user: ferrodesk_core::ids::UserId,
    groups: &[ferrodesk_core::ids::GroupId],
) -> Stmt {
    let mut s = Stmt::new("", vec![]);
    let mut parts = Vec::new();
    let mut part = |s: &mut Stmt, extra: &dyn Fn(&mut Stmt) -> String| {
        let mut wh = ticket_conditions(dialect, q, &TicketScope::All, s);
        wh.push(extra(s));
        parts.push(format!("(SELECT count(*) FROM tickets t WHERE {})", wh.join(" AND ")));
    };
    let group_list = |s: &mut Stmt| groups.iter().map(|g| s.bind(Param::Uuid(g.0))).collect::<Vec<_>>().join(", ");
    if !groups.is_empty() {
        part(&mut s, &|s: &mut Stmt| format!("t.group_id IN ({})", group_list(s)));
    }
    part(&mut s, &|_: &mut Stmt| "t.group_id IS NULL".to_owned());
    parts.push(own_in_other_groups(dialect, q, user, groups, true, &mut s));
    s.sql = format!("SELECT {} AS n", parts.join(" + "));
    s
}

/// The count of tickets of other groups that are the person's by assignment, request or watch
/// (without `assigned`: by request or watch and not assigned to them, the rest of a count whose
/// assigned part comes from the counters). Each branch starts from the person (an index on assignee/requester/watcher) with every
/// filter applied inside it, so it reads the person's matching tickets, not all they ever had
/// (an agent is assignee of tens of thousands over the years). SQLite keeps the left side of a
/// CROSS JOIN as the outer loop.
fn own_in_other_groups(
    dialect: Dialect,
    q: &TicketQuery,
    user: ferrodesk_core::ids::UserId,
    groups: &[ferrodesk_core::ids::GroupId],
    assigned: bool,
    s: &mut Stmt,
) -> String {
    let group_list = |s: &mut Stmt| groups.iter().map(|g| s.bind(Param::Uuid(g.0))).collect::<Vec<_>>().join(", ");
    let branch = |s: &mut Stmt, from: &str, who: &str| {
        let me = s.bind(Param::Uuid(user.0));
        let mut wh = ticket_conditions(dialect, q, &TicketScope::All, s);
        wh.push(if groups.is_empty() {
            "t.group_id IS NOT NULL".to_owned()
        } else {
            format!("t.group_id IS NOT NULL AND t.group_id NOT IN ({})", group_list(s))
        });
        if !assigned {
            wh.push(format!("(t.assignee_id IS NULL OR t.assignee_id <> {me})"));
        }
        // The number, not the id: tickets_assignee_queue then answers the branch on its own.
        format!("SELECT t.number FROM {from} WHERE {who} = {me} AND {}", wh.join(" AND "))
    };
    let mut branches = Vec::new();
    if assigned {
        branches.push(branch(s, "tickets t", "t.assignee_id"));
    }
    branches.push(branch(s, "tickets t", "t.requester_id"));
    branches.push(branch(s, watched_tickets(dialect), "w.user_id"));
    format!("(SELECT count(*) FROM ({}) mine)", branches.join(" UNION "))
}

/// Single-row `INSERT … VALUES (…)` statements of the same text merged into multi-row inserts
/// (one statement, one plan, one index pass per chunk instead of per row), each within
/// `max_params` parameters. Groups run in the order their texts first appear, so rows that
/// others refer to (a ticket before its comments) are written first; any other statement is
/// kept as it is, in its group's place.
pub(crate) fn multi_row_inserts(statements: Vec<Stmt>, max_params: usize) -> Vec<Stmt> {
    let mut groups: Vec<(String, Vec<Stmt>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for s in statements {
        match index.get(&s.sql) {
            Some(&i) => groups[i].1.push(s),
            None => {
                index.insert(s.sql.clone(), groups.len());
                groups.push((s.sql.clone(), vec![s]));
            }
        }
    }
    let mut out = Vec::new();
    for (sql, members) in groups {
        let split = sql
            .strip_prefix("INSERT INTO ")
            .and_then(|_| sql.rfind(" VALUES ("))
            .filter(|_| sql.ends_with(')'))
            .map(|at| (&sql[..at], &sql[at + " VALUES ".len()..]));
        let per_row = members.first().map_or(0, |m| m.params.len());
        match split {
            Some((head, tuple)) if per_row > 0 && members.len() > 1 => {
                let rows_per_statement = (max_params / per_row).max(1);
                let mut members = members.into_iter().peekable();
                while members.peek().is_some() {
                    let chunk: Vec<Stmt> = members.by_ref().take(rows_per_statement).collect();
                    let tuples: Vec<String> = (0..chunk.len()).map(|row| renumber(tuple, row * per_row)).collect();
                    out.push(Stmt::new(
                        format!("{head} VALUES {}", tuples.join(", ")),
                        chunk.into_iter().flat_map(|s| s.params).collect(),
                    ));
                }
            }
            _ => out.extend(members),
        }
    }
    out
}

/// `($1, $2::jsonb)` with every `$N` raised by `offset`.
fn renumber(template: &str, offset: usize) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut end = i + 1;
        while let Some((j, d)) = chars.peek().copied() {
            if !d.is_ascii_digit() {
                break;
            }
            end = j + 1;
            chars.next();
        }
        match template[i + 1..end].parse::<usize>() {
            Ok(n) => out.push_str(&format!("${}", n + offset)),
            Err(_) => out.push('$'),
        }
    }
    out
}

#[cfg(test)]
mod multi_row_tests {
    use super::*;

    #[test]
    fn single_row_inserts_merge_in_order_and_others_stay() {
        let ins = |t: &str, a: i64| {
            Stmt::new(
                format!("INSERT INTO {t} (a, b) VALUES ($1, $2::bigint)"),
                vec![Param::Int(a), Param::Int(a * 10)],
            )
        };
        let upd = Stmt::new("UPDATE x SET a = $1", vec![Param::Int(0)]);
        let merged = multi_row_inserts(vec![ins("t", 1), ins("c", 2), ins("t", 3), upd, ins("t", 4), ins("c", 5)], 4);
        let sql: Vec<&str> = merged.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "INSERT INTO t (a, b) VALUES ($1, $2::bigint), ($3, $4::bigint)",
                "INSERT INTO t (a, b) VALUES ($1, $2::bigint)",
                "INSERT INTO c (a, b) VALUES ($1, $2::bigint), ($3, $4::bigint)",
                "UPDATE x SET a = $1",
            ]
        );
        assert_eq!(merged[0].params, [Param::Int(1), Param::Int(10), Param::Int(3), Param::Int(30)]);
        assert_eq!(merged[1].params, [Param::Int(4), Param::Int(40)]);
        assert_eq!(renumber("($9, $10, '$')", 10), "($19, $20, '$')");
    }

    #[test]
    fn writes_join_a_statement_as_with_clauses_numbered_after_its_own() {
        let main = Stmt::new("INSERT INTO t (a, b) VALUES ($1, $2) RETURNING n", vec![Param::Int(1), Param::Int(2)]);
        let tag = |v: &str| {
            Stmt::new("INSERT INTO tags (t, tag) VALUES ($1, $2)", vec![Param::Int(1), Param::Text(v.into())])
        };
        let joined = main.clone().with_writes(vec![tag("x"), tag("y")]);
        assert_eq!(
            joined.sql,
            "WITH w0 AS (INSERT INTO tags (t, tag) VALUES ($3, $4)), w1 AS (INSERT INTO tags (t, tag) VALUES ($5, $6)) \
             INSERT INTO t (a, b) VALUES ($1, $2) RETURNING n"
        );
        assert_eq!(
            joined.params,
            [
                Param::Int(1),
                Param::Int(2),
                Param::Int(1),
                Param::Text("x".into()),
                Param::Int(1),
                Param::Text("y".into())
            ]
        );
        assert_eq!(main.clone().with_writes(vec![]).sql, main.sql);
    }
}

#[cfg(test)]
mod use_record_tests {
    use super::*;
    use ferrodesk_core::ids::{SessionId, TokenId};

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute() {
        let seen = jiff::Timestamp::from_second(1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        let later = |s: i64| seen + jiff::SignedDuration::from_secs(s);
        let token = TokenId::generate();
        assert!(touch_token(token, None, seen).is_some(), "a token never used");
        assert!(touch_token(token, Some(micros(seen)), later(60)).is_none());
        let touch = touch_token(token, Some(micros(seen)), later(61)).unwrap_or_else(|| panic!("due after a minute"));
        assert_eq!(touch.params, [Param::Int(micros(later(61))), Param::Uuid(token.0)]);
        let session = Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            csrf_token: String::new(),
            created_at: seen,
            last_seen_at: seen,
            expires_at: later(3600),
        };
        assert!(touch_session(&session, later(30)).is_none());
        let touch = touch_session(&session, later(90)).unwrap_or_else(|| panic!("due after a minute"));
        assert_eq!(touch.params, [Param::Int(micros(later(90))), Param::Uuid(session.id.0)]);
    }
}
