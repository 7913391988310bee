//! The PostgreSQL store: a deadpool connection pool, one transaction per use case. Migrations
//! run under an advisory lock so that several nodes starting together apply them once.

use async_trait::async_trait;
use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use ferrodesk_core::access::{Actor, TicketScope};
use ferrodesk_core::ids::*;
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_core::priority::PriorityMatrix;
use ferrodesk_core::ticket::{Ticket, TicketDraft};
use ferrodesk_core::user::{EmailAddress, User};
use jiff::Timestamp;
use tokio_postgres::NoTls;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use crate::migrate::{self, Applied};
use crate::query::{self, Dialect, Param, Stmt};
use crate::records::*;
use crate::row::{self, RowAccess};
use crate::ticket_work;
use crate::{Store, StoreError, StoreResult, micros};
use ferrodesk_core::custom_field::CustomFieldDef;

/// Arbitrary constant naming our migration advisory lock.
const MIGRATION_LOCK: i64 = 0x0fe7_7d35;

pub struct PgStore {
    pool: Pool,
    /// For the one connection that listens for other processes' announcements.
    config: tokio_postgres::Config,
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Uuid(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.as_ref().to_sql(ty, out),
            Param::NullText | Param::NullUuid | Param::NullInt => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl RowAccess for tokio_postgres::Row {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.try_get(col).map_err(db)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.try_get(col).map_err(db)
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.try_get(col).map_err(db)
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.try_get(col).map_err(db)
    }
    fn boolean(&self, col: &str) -> StoreResult<bool> {
        self.try_get(col).map_err(db)
    }
    fn uuid(&self, col: &str) -> StoreResult<Uuid> {
        self.try_get(col).map_err(db)
    }
    fn opt_uuid(&self, col: &str) -> StoreResult<Option<Uuid>> {
        self.try_get(col).map_err(db)
    }
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
        self.try_get(col).map_err(db)
    }
}

/// Maps driver errors: unique and foreign-key violations become their own cases.
fn db(e: tokio_postgres::Error) -> StoreError {
    if let Some(d) = e.as_db_error() {
        let code = d.code().code();
        if code == "23505" {
            let what = d
                .constraint()
                .map(|c| c.trim_end_matches("_key").split('_').skip(1).collect::<Vec<_>>().join("_"))
                .unwrap_or_else(|| "value".into());
            return StoreError::Duplicate { what };
        }
        if code == "23503" {
            return StoreError::MissingReference { what: "a referenced record".into() };
        }
        if code == "40P01" || code == "40001" {
            return StoreError::Busy;
        }
        if code == "53100" {
            return StoreError::Full;
        }
        return StoreError::Database(format!("{}: {}", code, d.message()));
    }
    StoreError::Database(e.to_string())
}

fn pool_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("database unavailable: {e}"))
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

async fn exec(c: &impl GenericClient, s: &Stmt) -> StoreResult<u64> {
    let started = std::time::Instant::now();
    let statement = c.prepare_cached(&s.sql).await.map_err(db)?;
    let params = refs(&s.params);
    let done = planned(c, s, c.execute(&statement, &params)).await;
    s.note_duration(started);
    done
}

/// Awaits `run`, the statement `s` sent on `c`, planned as `s` asks (see `Stmt::with_custom_plan`).
/// A custom plan is a setting on, the statement, the setting back to the connection's, pipelined
/// in one round trip: the last is sent whatever happens to the statement, and in a transaction
/// that fails its rollback undoes the setting too.
async fn planned<T>(
    c: &impl GenericClient,
    s: &Stmt,
    run: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> StoreResult<T> {
    if !s.custom_plan {
        return run.await.map_err(db);
    }
    let on = c.prepare_cached(CUSTOM_PLAN_ON).await.map_err(db)?;
    let off = c.prepare_cached(CUSTOM_PLAN_OFF).await.map_err(db)?;
    let (_, done, _) = tokio::join!(c.execute(&on, &[]), run, c.execute(&off, &[]));
    done.map_err(db)
}

/// Runs `statements` in order, pipelined: they go out without waiting for each answer, so many
/// statements cost a few round trips instead of one each. They are prepared first (a handful of
/// distinct texts): a prepared statement is sent the moment it is polled, which keeps the order
/// (an unprepared one waits for its own Parse first, and a comment could overtake its ticket).
/// The first error fails the transaction.
async fn exec_pipelined(tx: &deadpool_postgres::Transaction<'_>, statements: &[Stmt]) -> StoreResult<()> {
    let mut prepared: std::collections::HashMap<&str, tokio_postgres::Statement> = std::collections::HashMap::new();
    for s in statements {
        if !prepared.contains_key(s.sql.as_str()) {
            prepared.insert(s.sql.as_str(), tx.prepare_cached(&s.sql).await.map_err(db)?);
        }
    }
    for chunk in statements.chunks(256) {
        futures_util::future::try_join_all(chunk.iter().map(|s| {
            let statement = &prepared[s.sql.as_str()];
            async move { tx.execute(statement, &refs(&s.params)).await.map_err(db) }
        }))
        .await?;
    }
    Ok(())
}

/// See `Stmt::with_custom_plan`: connections keep generic plans, these statements are planned
/// for their values.
const GENERIC_PLANS: &str = "-c plan_cache_mode=force_generic_plan";
const CUSTOM_PLAN_ON: &str = "SET plan_cache_mode = force_custom_plan";
const CUSTOM_PLAN_OFF: &str = "RESET plan_cache_mode";

async fn rows<T>(
    c: &impl GenericClient,
    s: &Stmt,
    decode: impl Fn(&tokio_postgres::Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let started = std::time::Instant::now();
    let statement = c.prepare_cached(&s.sql).await.map_err(db)?;
    let params = refs(&s.params);
    let found = planned(c, s, c.query(&statement, &params)).await;
    s.note_duration(started);
    found?.iter().map(decode).collect()
}

async fn one<T>(
    c: &impl GenericClient,
    s: &Stmt,
    decode: impl Fn(&tokio_postgres::Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    Ok(rows(c, s, decode).await?.into_iter().next())
}

/// The search column of `t` with its stored comments and `new` (one not stored yet) in it.
async fn search_with_comments(
    c: &impl GenericClient,
    t: &Ticket,
    new: Option<&crate::Comment>,
) -> StoreResult<query::Computed> {
    let mut comments = rows(c, &query::comment_texts(t.id), row::comment_text).await?;
    comments.extend(new.map(|n| (n.body.clone(), n.internal)));
    Ok(search_column(query::search_document(t, &comments)))
}

/// Rewrites a ticket's search vector from its stored text and comments (after a merge moved
/// comments between tickets).
async fn reindex(c: &impl GenericClient, t: &Ticket) -> StoreResult<()> {
    let search = search_with_comments(c, t, None).await?;
    let mut s = Stmt::new("", vec![Param::Uuid(t.id.0)]);
    let vector = s.bind_expr(search.expr);
    s.sql = format!("UPDATE tickets SET {} = {vector} WHERE id = $1", search.column);
    exec(c, &s).await?;
    Ok(())
}

/// A ticket's search vector as the row's computed `search` column: written with the row, never
/// by a second `UPDATE` (which would write another version of the row and index it again).
fn search_column(doc: (String, String, String, String)) -> query::Computed {
    query::Computed { column: "search", expr: search_vector(doc) }
}

/// A ticket's search vector as an SQL expression over `doc`: what a requester may find
/// (subject, description, public answers) with weight A, internal notes with weight B
/// (migration 0015; a requester's query asks for `:A`).
fn search_vector(doc: (String, String, String, String)) -> Stmt {
    let (subject, description, public, internal) = doc;
    Stmt::new(
        "setweight(to_tsvector('simple', $1 || ' ' || $2 || ' ' || $3), 'A') || setweight(to_tsvector('simple', $4), 'B')",
        [subject, description, public, internal].map(Param::Text).into(),
    )
}

/// Opens a ticket: the row with its search entry, numbered by the insert, its sets, a "created"
/// history line, and the idempotency key. Without a key it is one statement, its own
/// transaction when `c` is a plain connection; a key needs `c` to be a transaction (a live key
/// refuses the whole ticket).
async fn create_in(
    c: &impl GenericClient,
    draft: TicketDraft,
    id: TicketId,
    matrix: &PriorityMatrix,
    actor: Option<UserId>,
    now: Timestamp,
    idempotency: Option<Idempotency>,
) -> StoreResult<Ticket> {
    let now = ferrodesk_core::time::to_storage_precision(now);
    // Numbered by the insert itself (the column's default), which returns the number.
    let mut ticket = Ticket::open(draft, id, TicketNumber(0), matrix, now);
    // The row carries its search vector (a new ticket has no comments yet): one version of the
    // row, where a later `UPDATE` would write a second one and index it again.
    let mut insert =
        query::insert_ticket_unnumbered(&ticket, Some(search_column(query::search_document(&ticket, &[]))));
    insert.sql.push_str(" RETURNING number");
    let mut rest = query::insert_ticket_sets(&ticket);
    rest.extend(query::insert_history(&query::created_change(&ticket, actor, now)));
    // One statement: each statement costs a backend a wake-up, a plan and an executor start,
    // which for a new ticket weighed more than the writes themselves.
    let number = one(c, &insert.with_writes(rest), |r| r.int("number")).await?;
    ticket.number = TicketNumber(number.ok_or_else(|| StoreError::Database("no ticket number".into()))?);
    if let Some(key) = &idempotency {
        record_idempotency(c, key, ticket.id.0, now).await?;
    }
    Ok(ticket)
}

async fn settings_on(c: &impl GenericClient) -> StoreResult<Settings> {
    let pairs =
        rows(c, &Stmt::new("SELECT key, value FROM settings", vec![]), |r| Ok((r.text("key")?, r.text("value")?)))
            .await?;
    Ok(query::settings_from_pairs(&pairs))
}

async fn custom_fields_on(c: &impl GenericClient) -> StoreResult<Vec<CustomFieldDef>> {
    rows(c, &Stmt::new(ticket_work::LIST_CUSTOM_FIELDS, vec![]), row::custom_field).await
}

/// The ticket row, locked: concurrent comments on one ticket queue here instead of conflicting.
fn locked_ticket(id: TicketId) -> Stmt {
    Stmt::new(format!("SELECT {} FROM tickets t WHERE t.id = $1 FOR UPDATE", row::TICKET_COLUMNS), by_id(id.0))
}

/// Stores a ticket change inside the caller's transaction: the guarded update carries the new
/// search vector (text or a comment changed); when it matched, the rows the change adds follow
/// as one statement, then replaced tag and watcher rows and the idempotency key.
async fn save_in(tx: &deadpool_postgres::Transaction<'_>, change: TicketChange) -> StoreResult<Ticket> {
    let search = if query::needs_reindex(&change) {
        // A concurrent comment would have bumped the version, so the guard refuses this update.
        Some(search_with_comments(tx, &change.ticket, change.comment.as_ref()).await?)
    } else {
        None
    };
    let writes = query::plan_save(&change);
    if exec(tx, &query::update_ticket(&change.ticket, change.expected_version, search)).await? != 1 {
        let current =
            one(tx, &Stmt::new("SELECT version FROM tickets WHERE id = $1", by_id(change.ticket.id.0)), |r| {
                r.int("version")
            })
            .await?;
        return Err(current.map_or(StoreError::NotFound, |current| StoreError::Conflict { current }));
    }
    let mut added = writes.added.into_iter();
    if let Some(first) = added.next() {
        exec(tx, &first.with_writes(added.collect())).await?;
    }
    exec_pipelined(tx, &writes.sets).await?;
    if let (Some(key), Some(comment)) = (&change.idempotency, &change.comment) {
        record_idempotency(tx, key, comment.id.0, change.at).await?;
    }
    let mut saved = change.ticket;
    saved.version = change.expected_version + 1;
    Ok(saved)
}

async fn record_idempotency(
    c: &impl GenericClient,
    key: &Idempotency,
    target: Uuid,
    now: Timestamp,
) -> StoreResult<()> {
    match one(c, &ticket_work::record_idempotency(key, target, now), |r| r.int("created_at")).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::Duplicate { what: "idempotency key".into() }),
    }
}

async fn ticket_numbers(c: &impl GenericClient, ids: &[TicketId]) -> StoreResult<Vec<(TicketId, i64)>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(n) =
            one(c, &Stmt::new("SELECT number FROM tickets WHERE id = $1", by_id(id.0)), |r| r.int("number")).await?
        {
            out.push((*id, n));
        }
    }
    Ok(out)
}

/// Everything access decisions need about an active user `u` (see `Store::actor`) as columns of
/// one row, their groups as an array: one statement where SQLite runs three, since each statement
/// costs a PostgreSQL backend more than the work in it. Read by `actor_from_row`.
macro_rules! actor_columns {
    () => {
        "u.role, u.organisation_id, coalesce(o.shares_tickets, false) AS shares_tickets, \
         ARRAY(SELECT m.group_id FROM group_members m WHERE m.user_id = u.id) AS group_ids, \
         (SELECT s.value FROM settings s WHERE s.key = 'agents_see_all') AS agents_see_all"
    };
}

const ACTOR: &str = concat!(
    "SELECT ",
    actor_columns!(),
    " FROM users u LEFT JOIN organisations o ON o.id = u.organisation_id WHERE u.id = $1 AND u.active"
);

/// An API token's id, when it was last used, and its owner as an actor, if both are active.
const TOKEN_ACTOR: &str = concat!(
    "SELECT k.id AS token_id, k.last_used_at, k.user_id, ",
    actor_columns!(),
    " FROM api_tokens k JOIN users u ON u.id = k.user_id LEFT JOIN organisations o ON o.id = u.organisation_id \
     WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.active"
);

fn actor_from_row(id: UserId, r: &tokio_postgres::Row) -> StoreResult<Actor> {
    let group_ids: Vec<Uuid> = r.try_get("group_ids").map_err(db)?;
    let see_all = r.opt_text("agents_see_all")?;
    query::actor_from(id, Some(row::actor(r)?), group_ids.into_iter().map(GroupId).collect(), see_all)
        .ok_or_else(|| StoreError::Database("an actor without a user".into()))
}

async fn actor_on(c: &impl GenericClient, id: UserId) -> StoreResult<Option<Actor>> {
    one(c, &Stmt::new(ACTOR, vec![Param::Uuid(id.0)]), |r| actor_from_row(id, r)).await
}

/// `name` as a PostgreSQL identifier, whatever it contains.
fn quoted_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn exactly_one(affected: u64) -> StoreResult<()> {
    if affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

fn by_id(id: Uuid) -> Vec<Param> {
    vec![Param::Uuid(id)]
}

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Database(format!("bad database URL: {e}")))?;
        let options = match config.get_options() {
            Some(given) => format!("{given} {GENERIC_PLANS}"),
            None => GENERIC_PLANS.to_owned(),
        };
        config.options(options);
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(16).build().map_err(pool_err)?;
        // Fail at start-up, not at the first request, when the server is unreachable.
        drop(pool.get().await.map_err(pool_err)?);
        Ok(Self { pool, config })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        let client = self.pool.get().await.map_err(pool_err)?;
        // Each statement text is prepared once per connection (`exec`, `rows`): one round trip
        // instead of two, and no parsing again. Texts vary with the length of IN lists, so the
        // cache is emptied now and then rather than growing without bound.
        if client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
            client.statement_cache.clear();
        }
        Ok(client)
    }
}

/// Prepared statements kept per connection before the cache starts again.
const STATEMENT_CACHE_LIMIT: usize = 500;

/// The channel server processes announce on.
const CHANNEL: &str = "ferrodesk_events";

/// Listens on a dedicated connection and forwards every announcement to `tx`; reconnects after
/// a second when the connection drops, and ends when nobody receives any more.
/// `ready` is told once the first `LISTEN` is in place.
async fn listen(
    config: tokio_postgres::Config,
    tx: tokio::sync::mpsc::Sender<String>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    use tokio_postgres::AsyncMessage;
    let mut ready = Some(ready);
    while !tx.is_closed() {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let statement = format!("LISTEN {CHANNEL}");
                let subscribe = client.batch_execute(&statement);
                let mut subscribe = std::pin::pin!(subscribe);
                let mut subscribed = false;
                loop {
                    tokio::select! {
                        done = &mut subscribe, if !subscribed => {
                            if let Err(e) = done {
                                tracing::warn!(error = %e, "cannot listen for other servers' announcements");
                                break;
                            }
                            subscribed = true;
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(());
                            }
                        }
                        // Polling the connection also carries the LISTEN above to the server.
                        message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if tx.send(n.payload().to_owned()).await.is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the announcement connection failed; reconnecting");
                                break;
                            }
                            None => break,
                        },
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for announcements; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[async_trait]
impl Store for PgStore {
    async fn announce(&self, payload: &str) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await.map_err(db)?;
        Ok(())
    }

    async fn announcements(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<String>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(self.config.clone(), tx, ready_tx));
        // Ready means listening: a change made elsewhere right after start-up is not missed.
        match tokio::time::timeout(std::time::Duration::from_secs(10), ready).await {
            Ok(Ok(())) => Ok(Some(rx)),
            _ => Err(StoreError::Database("could not LISTEN for other servers' announcements".into())),
        }
    }

    fn dialect(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.simple_query("SELECT 1").await.map_err(db).map(drop)
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        exec(&tx, &Stmt::new("SELECT pg_advisory_xact_lock($1)", vec![Param::Int(MIGRATION_LOCK)])).await?;
        let exists =
            one(&tx, &Stmt::new("SELECT to_regclass('schema_migrations') IS NOT NULL AS present", vec![]), |r| {
                r.boolean("present")
            })
            .await?
            .unwrap_or(false);
        let applied = if exists {
            rows(
                &tx,
                &Stmt::new("SELECT version, name, checksum FROM schema_migrations ORDER BY version", vec![]),
                |r| Ok(Applied { version: r.int("version")?, name: r.text("name")?, checksum: r.text("checksum")? }),
            )
            .await?
        } else {
            vec![]
        };
        let todo = migrate::pending(migrate::POSTGRES, &applied)?;
        if !exists {
            tx.batch_execute(
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                 checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await
            .map_err(db)?;
        }
        let mut names = Vec::new();
        for m in todo {
            tx.batch_execute(m.sql).await.map_err(|e| {
                // The driver's own text is just "db error"; the server's message says what.
                let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
                StoreError::Schema(format!("migration {} failed: {why}", m.name))
            })?;
            exec(
                &tx,
                &Stmt::new(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    vec![
                        Param::Int(m.version),
                        Param::Text(m.name.into()),
                        Param::Text(m.checksum()),
                        Param::Int(micros(Timestamp::now())),
                    ],
                ),
            )
            .await?;
            names.push(m.name.to_string());
        }
        tx.commit().await.map_err(db)?;
        // An import that died with indexes set aside: build them before anything is served.
        let rebuilt = self.rebuild_set_aside_indexes().await?;
        if rebuilt > 0 {
            tracing::warn!(indexes = rebuilt, "rebuilt indexes an interrupted import had set aside");
        }
        Ok(names)
    }

    async fn settings(&self) -> StoreResult<Settings> {
        settings_on(&self.client().await?).await
    }

    async fn ticket_rules(&self) -> StoreResult<(Settings, Vec<CustomFieldDef>)> {
        // Both on one connection, pipelined: one backend wakes once instead of two waking.
        let c = self.client().await?;
        tokio::try_join!(settings_on(&c), custom_fields_on(&c))
    }

    async fn save_settings(&self, settings: &Settings) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        for (k, v) in query::settings_to_pairs(settings) {
            exec(&tx, &Stmt::new(query::UPSERT_SETTING, vec![Param::Text(k.into()), Param::Text(v)])).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_user(user, password_hash)).await.map(drop)
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        match exec(&self.client().await?, &query::update_user(user)).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
        let s = Stmt::new(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            vec![Param::Text(hash.into()), Param::Uuid(id.0)],
        );
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        exec(&tx, &s).await?;
        exec(&tx, &crate::mail::void_resets(id, Timestamp::now())).await?;
        tx.commit().await.map_err(db)
    }

    async fn create_password_reset(&self, reset: &PasswordReset, mail: NewJob) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        exec(&tx, &crate::mail::void_resets(reset.user_id, reset.created_at)).await?;
        exec(&tx, &crate::mail::insert_reset(reset)).await?;
        exec(&tx, &crate::mail::insert_job(&mail, reset.created_at)).await?;
        tx.commit().await.map_err(db)
    }

    async fn use_password_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserId>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(user) = one(&tx, &crate::mail::claim_reset(token_hash, now), |r| r.uuid("user_id")).await?.map(UserId)
        else {
            return Ok(None);
        };
        if exec(&tx, &crate::mail::set_password(user, password_hash)).await? == 0 {
            return Ok(None);
        }
        exec(&tx, &crate::mail::void_resets(user, now)).await?;
        exec(&tx, &crate::mail::end_sessions(user)).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(user))
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        one(&self.client().await?, &query::user_by_id(id), row::user).await
    }

    async fn user_by_email(&self, email: &EmailAddress) -> StoreResult<Option<(User, Option<String>)>> {
        let s = Stmt::new(
            format!("SELECT {}, password_hash FROM users WHERE email = $1", row::USER_COLUMNS),
            vec![Param::Text(email.as_str().into())],
        );
        one(&self.client().await?, &s, |r| Ok((row::user(r)?, r.opt_text("password_hash")?))).await
    }

    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        rows(&self.client().await?, &query::list_users(q), row::user).await
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        rows(&self.client().await?, &query::users_by_ids(ids), row::user).await
    }

    async fn count_tickets(&self, q: &TicketQuery, scope: &TicketScope) -> StoreResult<i64> {
        let s = query::count_tickets(Dialect::Postgres, q, scope);
        one(&self.client().await?, &s, |r| r.int("n")).await.map(|n| n.unwrap_or(0))
    }

    async fn actor(&self, id: UserId) -> StoreResult<Option<Actor>> {
        actor_on(&self.client().await?, id).await
    }

    async fn create_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_token(token, token_hash)).await.map(drop)
    }

    async fn token_actor(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Actor>> {
        let c = self.client().await?;
        // The token and its owner's rights in one statement (SQLite: `query::find_token`, then
        // `actor_statements`).
        let find = Stmt::new(TOKEN_ACTOR, vec![Param::Text(token_hash.into())]);
        let found = one(&c, &find, |r| {
            let user = UserId(r.uuid("user_id")?);
            Ok((TokenId(r.uuid("token_id")?), r.opt_int("last_used_at")?, actor_from_row(user, r)?))
        })
        .await?;
        let Some((token_id, last_used, actor)) = found else {
            return Ok(None);
        };
        if let Some(touch) = query::touch_token(token_id, last_used, now) {
            exec(&c, &touch).await?;
        }
        Ok(Some(actor))
    }

    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>> {
        let s = Stmt::new(
            "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at",
            by_id(user.0),
        );
        rows(&self.client().await?, &s, row::token).await
    }

    async fn list_all_tokens(&self, limit: u32) -> StoreResult<Vec<ApiToken>> {
        rows(&self.client().await?, &query::list_all_tokens(limit), row::token).await
    }

    async fn revoke_token(&self, user: UserId, id: TokenId, now: Timestamp) -> StoreResult<bool> {
        exec(&self.client().await?, &query::revoke_token(user, id, now)).await.map(|n| n > 0)
    }

    async fn create_session(&self, session: &Session, secret_hash: &str) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_session(session, secret_hash)).await.map(drop)
    }

    async fn signed_in(
        &self,
        secret_hash: &str,
        now: Timestamp,
        idle: jiff::SignedDuration,
    ) -> StoreResult<Option<SignedIn>> {
        let c = self.client().await?;
        let Some(session) = one(&c, &query::find_session(secret_hash, now, idle), row::session).await? else {
            return Ok(None);
        };
        // The owner's rights and record pipelined: one round trip more, not two.
        let by_id = query::user_by_id(session.user_id);
        let (actor, user) = tokio::try_join!(actor_on(&c, session.user_id), one(&c, &by_id, row::user))?;
        let (Some(actor), Some(user)) = (actor, user) else {
            return Ok(None);
        };
        if let Some(touch) = query::touch_session(&session, now) {
            exec(&c, &touch).await?;
        }
        Ok(Some(SignedIn { session, actor, user }))
    }

    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<Session>> {
        let s = Stmt::new(
            format!("SELECT {} FROM sessions WHERE user_id = $1 ORDER BY created_at", query::SESSION_COLUMNS),
            by_id(user.0),
        );
        rows(&self.client().await?, &s, row::session).await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let s = Stmt::new(
            "DELETE FROM sessions WHERE user_id = $1 AND id = $2",
            vec![Param::Uuid(user.0), Param::Uuid(id.0)],
        );
        exec(&self.client().await?, &s).await.map(|n| n > 0)
    }

    async fn delete_sessions(&self, user: UserId, keep: Option<SessionId>) -> StoreResult<u64> {
        exec(&self.client().await?, &query::delete_sessions(user, keep)).await
    }

    async fn admit_login(
        &self,
        rules: &[ThrottleRule],
        now: Timestamp,
        window: jiff::SignedDuration,
    ) -> StoreResult<Option<Timestamp>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        for rule in rules {
            if one(&tx, &query::count_login_attempt(rule, now, window), |r| r.int("attempts")).await?.is_none() {
                let start = one(&tx, &query::throttle_window_start(&rule.key), |r| r.int("window_start"))
                    .await?
                    .unwrap_or(micros(now));
                // Dropping the transaction rolls back the counts already made.
                return Ok(Some(crate::from_micros(start + window.as_micros() as i64)?));
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(None)
    }

    async fn clear_login_attempts(&self, key: &str) -> StoreResult<()> {
        let s = Stmt::new("DELETE FROM login_throttle WHERE key = $1", vec![Param::Text(key.into())]);
        exec(&self.client().await?, &s).await.map(drop)
    }

    async fn create_organisation(&self, org: &Organisation) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_organisation(org)).await.map(drop)
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        let s = Stmt::new("SELECT id, name, shares_tickets, created_at FROM organisations ORDER BY name", vec![]);
        rows(&self.client().await?, &s, row::organisation).await
    }

    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_group(group)).await.map(drop)
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        let s = Stmt::new("SELECT id, name, support_level, created_at FROM support_groups ORDER BY name", vec![]);
        rows(&self.client().await?, &s, row::group).await
    }

    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let s = Stmt::new("SELECT id, name, support_level, created_at FROM support_groups WHERE id = $1", by_id(id.0));
        one(&self.client().await?, &s, row::group).await
    }

    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        exec(&self.client().await?, &query::add_member(group, user)).await.map(drop)
    }

    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<bool> {
        let s = Stmt::new(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
            vec![Param::Uuid(group.0), Param::Uuid(user.0)],
        );
        exec(&self.client().await?, &s).await.map(|n| n > 0)
    }

    async fn group_members(&self, group: GroupId) -> StoreResult<Vec<UserId>> {
        let s = Stmt::new("SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id", by_id(group.0));
        rows(&self.client().await?, &s, |r| Ok(UserId(r.uuid("user_id")?))).await
    }

    async fn create_category(&self, category: &Category) -> StoreResult<()> {
        exec(&self.client().await?, &query::insert_category(category)).await.map(drop)
    }

    async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        let s = Stmt::new("SELECT id, parent_id, name, created_at FROM categories ORDER BY name", vec![]);
        rows(&self.client().await?, &s, row::category).await
    }

    async fn update_organisation(&self, org: &Organisation) -> StoreResult<()> {
        exactly_one(exec(&self.client().await?, &query::update_organisation(org)).await?)
    }

    async fn update_group(&self, group: &Group) -> StoreResult<()> {
        exactly_one(exec(&self.client().await?, &query::update_group(group)).await?)
    }

    async fn update_category(&self, category: &Category) -> StoreResult<()> {
        exactly_one(exec(&self.client().await?, &query::update_category(category)).await?)
    }

    async fn update_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()> {
        exactly_one(exec(&self.client().await?, &ticket_work::update_custom_field(def)).await?)
    }

    async fn create_ticket(
        &self,
        draft: TicketDraft,
        matrix: &PriorityMatrix,
        actor: Option<UserId>,
        now: Timestamp,
        idempotency: Option<Idempotency>,
    ) -> StoreResult<Ticket> {
        let mut c = self.client().await?;
        let id = TicketId::generate();
        if idempotency.is_none() {
            return create_in(&c, draft, id, matrix, actor, now, None).await;
        }
        let tx = c.transaction().await.map_err(db)?;
        let ticket = create_in(&tx, draft, id, matrix, actor, now, idempotency).await?;
        tx.commit().await.map_err(db)?;
        Ok(ticket)
    }

    async fn set_aside_ticket_indexes(&self) -> StoreResult<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let empty =
            one(&tx, &Stmt::new("SELECT NOT EXISTS (SELECT 1 FROM tickets) AS empty", vec![]), |r| r.boolean("empty"))
                .await?;
        if empty != Some(true) {
            return Ok(0);
        }
        // Secondary indexes only: primary keys and unique constraints keep guarding the rows.
        let indexes = rows(
            &tx,
            &Stmt::new(
                "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i \
                 JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = to_regnamespace(i.schemaname) \
                 JOIN pg_index x ON x.indexrelid = c.oid \
                 WHERE i.schemaname = current_schema() AND NOT x.indisunique AND NOT x.indisprimary \
                 AND i.tablename IN ('tickets', 'comments', 'ticket_history', 'ticket_tags', 'ticket_watchers')",
                vec![],
            ),
            |r| Ok((r.text("name")?, r.text("definition")?)),
        )
        .await?;
        for (name, definition) in &indexes {
            exec(
                &tx,
                &Stmt::new(
                    "INSERT INTO set_aside_indexes (name, definition) VALUES ($1, $2)",
                    vec![Param::Text(name.clone()), Param::Text(definition.clone())],
                ),
            )
            .await?;
            tx.batch_execute(&format!("DROP INDEX {}", quoted_identifier(name))).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(indexes.len())
    }

    async fn compact_view_counters(&self) -> StoreResult<u64> {
        exec(&self.client().await?, &Stmt::new(query::COMPACT_VIEW_COUNTERS, vec![])).await
    }

    async fn merge_pending_search_entries(&self) -> StoreResult<u64> {
        // `to_regclass`: no index (set aside by a first import) is nothing to merge.
        let merge = "SELECT coalesce(gin_clean_pending_list(to_regclass('tickets_search')), 0) AS pages";
        let pages = one(&self.client().await?, &Stmt::new(merge, vec![]), |r| r.int("pages")).await?;
        Ok(pages.unwrap_or(0).max(0) as u64)
    }

    async fn compact_search_index(&self, _pages: u32) -> StoreResult<bool> {
        // PostgreSQL maintains its indexes itself; the GIN pending list is merged every second
        // (`merge_pending_search_entries`).
        Ok(false)
    }

    async fn bulk_writes(&self, _on: bool) -> StoreResult<()> {
        // The server's caches are its own (shared_buffers); nothing to size per connection.
        Ok(())
    }

    async fn rebuild_set_aside_indexes(&self) -> StoreResult<usize> {
        /// Builds at once, each on its own connection: the search index (GIN, the largest) on
        /// one core while the others take turns on the other.
        const AT_ONCE: usize = 2;
        let first_gin =
            "SELECT name, definition FROM set_aside_indexes ORDER BY definition LIKE '%USING gin%' DESC, name";
        let pending = rows(&self.client().await?, &Stmt::new(first_gin, vec![]), |r| {
            Ok((r.text("name")?, r.text("definition")?))
        })
        .await?;
        let count = pending.len();
        let build = |(name, definition): (String, String)| async move {
            // Each index in its own transaction with its record, so a crash half-way leaves the
            // rest listed. IF NOT EXISTS: another process may have built it meanwhile.
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db)?;
            tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'").await.map_err(db)?;
            let create = definition.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
            tx.batch_execute(&create).await.map_err(db)?;
            exec(&tx, &Stmt::new("DELETE FROM set_aside_indexes WHERE name = $1", vec![Param::Text(name)])).await?;
            tx.commit().await.map_err(db)
        };
        use futures_util::StreamExt;
        let mut builds = futures_util::stream::iter(pending).map(build).buffer_unordered(AT_ONCE);
        while let Some(built) = builds.next().await {
            built?;
        }
        Ok(count)
    }

    async fn import_tickets(&self, batch: Vec<ImportedTicket>) -> StoreResult<Vec<TicketNumber>> {
        /// PostgreSQL's protocol allows 65,535 parameters per statement.
        const MAX_PARAMS_PER_STATEMENT: usize = 30_000;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // One round trip for the batch's numbers, in order.
        let numbers: Vec<i64> = rows(
            &tx,
            &Stmt::new(
                "SELECT nextval('ticket_number_seq') AS n FROM generate_series(1, $1::bigint) ORDER BY 1",
                vec![Param::Int(batch.len() as i64)],
            ),
            |r| r.int("n"),
        )
        .await?;
        if numbers.len() != batch.len() {
            return Err(StoreError::Database("could not number the imported tickets".into()));
        }
        let mut statements = Vec::with_capacity(batch.len() * 12);
        for (mut item, number) in batch.into_iter().zip(&numbers) {
            item.ticket.number = TicketNumber(*number);
            item.ticket.version = 1;
            statements.extend(query::import_statements(&item, Some(search_column(query::import_document(&item)))));
        }
        // Rows of a kind go in together: one multi-row insert per table and chunk.
        let statements = query::multi_row_inserts(statements, MAX_PARAMS_PER_STATEMENT);
        exec_pipelined(&tx, &statements).await?;
        tx.commit().await.map_err(db)?;
        Ok(numbers.into_iter().map(TicketNumber).collect())
    }

    async fn ticket_with_comments(&self, ticket: TicketRef) -> StoreResult<Option<(Ticket, Vec<Comment>)>> {
        let (find, comments) = query::ticket_with_comments(ticket);
        // Sent together on one connection (one round trip); the ticket's statement runs first
        // (see the trait for why that order). Both are prepared beforehand, so neither waits for
        // its own Parse and the order they are polled in is the order they are sent in.
        let c = self.client().await?;
        for s in [&find, &comments] {
            c.prepare_cached(&s.sql).await.map_err(db)?;
        }
        let (found, comments) = tokio::try_join!(one(&c, &find, row::ticket), rows(&c, &comments, row::comment))?;
        Ok(found.map(|t| (t, comments)))
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        one(&self.client().await?, &query::find_ticket(TicketRef::Id(id)), row::ticket).await
    }

    async fn ticket_by_number(&self, number: TicketNumber) -> StoreResult<Option<Ticket>> {
        one(&self.client().await?, &query::find_ticket(TicketRef::Number(number)), row::ticket).await
    }

    async fn save_ticket(&self, change: TicketChange) -> StoreResult<Ticket> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let saved = save_in(&tx, change).await?;
        tx.commit().await.map_err(db)?;
        Ok(saved)
    }

    async fn add_comment(
        &self,
        comment: Comment,
        author_is_staff: bool,
        idempotency: Option<Idempotency>,
        jobs: Vec<NewJob>,
    ) -> StoreResult<Ticket> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let current = one(&tx, &locked_ticket(comment.ticket_id), row::ticket).await?.ok_or(StoreError::NotFound)?;
        let saved = save_in(&tx, crate::comment_change(current, comment, author_is_staff, idempotency, jobs)?).await?;
        tx.commit().await.map_err(db)?;
        Ok(saved)
    }

    async fn merge_tickets(&self, source: TicketChange, target: TicketChange) -> StoreResult<(Ticket, Ticket)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let (from, to) = (source.ticket.id, target.ticket.id);
        let source = save_in(&tx, source).await?;
        exec(&tx, &ticket_work::move_comments(from, to)).await?;
        exec(&tx, &ticket_work::move_attachments(from, to)).await?;
        // The target saved after the move: a change that re-indexes it already has every comment.
        let target_indexed = query::needs_reindex(&target);
        let target = save_in(&tx, target).await?;
        reindex(&tx, &source).await?;
        if !target_indexed {
            reindex(&tx, &target).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok((source, target))
    }

    async fn link_tickets(
        &self,
        from: TicketId,
        to: TicketId,
        kind: LinkKind,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Lock both tickets so concurrent links of the same pair are checked one after the other.
        exec(
            &tx,
            &Stmt::new(
                "SELECT 1 FROM tickets WHERE id IN ($1, $2) ORDER BY id FOR UPDATE",
                vec![Param::Uuid(from.0), Param::Uuid(to.0)],
            ),
        )
        .await?;
        let existing = rows(&tx, &ticket_work::links_touching(from, to), row::link).await?;
        let plan = ticket_work::plan_link(from, to, kind, &existing).map_err(StoreError::Refused)?;
        let numbers = ticket_numbers(&tx, &[from, to]).await?;
        for (a, b, k) in &plan {
            exec(&tx, &ticket_work::insert_link(*a, *b, k, now)).await?;
        }
        for s in ticket_work::link_history(&plan, &numbers, actor, now, false) {
            exec(&tx, &s).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn unlink_tickets(
        &self,
        a: TicketId,
        b: TicketId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let existing = rows(&tx, &ticket_work::links_touching(a, b), row::link).await?;
        let between = ticket_work::links_between(a, b, &existing);
        if between.is_empty() {
            return Ok(false);
        }
        exec(&tx, &ticket_work::delete_links(a, b)).await?;
        let numbers = ticket_numbers(&tx, &[a, b]).await?;
        for s in ticket_work::link_history(&between, &numbers, actor, now, true) {
            exec(&tx, &s).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn ticket_links(&self, ticket: TicketId) -> StoreResult<Vec<(LinkKind, Ticket)>> {
        rows(&self.client().await?, &ticket_work::list_links(ticket), |r| {
            Ok((ticket_work::link_kind(&r.text("link_kind")?), row::ticket(r)?))
        })
        .await
    }

    async fn add_time_entry(&self, entry: &TimeEntry) -> StoreResult<()> {
        exec(&self.client().await?, &ticket_work::insert_time_entry(entry)).await.map(drop)
    }

    async fn time_entries(&self, ticket: TicketId) -> StoreResult<Vec<TimeEntry>> {
        rows(&self.client().await?, &ticket_work::list_time_entries(ticket), row::time_entry).await
    }

    async fn idempotent_target(&self, user: UserId, key: &str, now: Timestamp) -> StoreResult<Option<IdempotentHit>> {
        one(&self.client().await?, &ticket_work::find_idempotency(user, key, now), |r| {
            Ok(IdempotentHit { request_hash: r.text("request_hash")?, target_id: r.uuid("target_id")? })
        })
        .await
    }

    async fn add_attachment(&self, attachment: &Attachment, data: Vec<u8>, quota: UploadQuota) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if let Some(user) = attachment.uploaded_by {
            // The user row lock makes the quota check and the insert one step per uploader.
            exec(&tx, &Stmt::new("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", by_id(user.0))).await?;
            let used =
                one(&tx, &ticket_work::uploaded_since(user, quota.since), |r| r.int("total")).await?.unwrap_or(0);
            if used + attachment.size > quota.max_bytes {
                return Err(StoreError::QuotaExceeded);
            }
        }
        exec(&tx, &ticket_work::insert_blob(&attachment.sha256, data.into(), attachment.created_at)).await?;
        exec(&tx, &ticket_work::insert_attachment(attachment)).await?;
        tx.commit().await.map_err(db)
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        let s = Stmt::new(
            format!("SELECT {} FROM attachments WHERE id = $1", ticket_work::ATTACHMENT_COLUMNS),
            by_id(id.0),
        );
        one(&self.client().await?, &s, row::attachment).await
    }

    async fn attachments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Attachment>> {
        rows(&self.client().await?, &ticket_work::list_attachments(ticket, include_internal), row::attachment).await
    }

    async fn blob(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let s = Stmt::new("SELECT data FROM blobs WHERE sha256 = $1", vec![Param::Text(sha256.into())]);
        one(&self.client().await?, &s, |r| r.bytes("data")).await
    }

    async fn create_saved_filter(&self, filter: &SavedFilter) -> StoreResult<()> {
        exec(&self.client().await?, &ticket_work::insert_saved_filter(filter)).await.map(drop)
    }

    async fn saved_filters(&self, user: UserId) -> StoreResult<Vec<SavedFilter>> {
        rows(&self.client().await?, &ticket_work::list_saved_filters(user), row::saved_filter).await
    }

    async fn delete_saved_filter(&self, user: UserId, id: Uuid) -> StoreResult<bool> {
        exec(&self.client().await?, &ticket_work::delete_saved_filter(user, id)).await.map(|n| n > 0)
    }

    async fn create_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()> {
        exec(&self.client().await?, &ticket_work::insert_custom_field(def, Timestamp::now())).await.map(drop)
    }

    async fn custom_fields(&self) -> StoreResult<Vec<CustomFieldDef>> {
        custom_fields_on(&self.client().await?).await
    }

    async fn create_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()> {
        exec(&self.client().await?, &crate::mail::insert_mailbox(mailbox)).await.map(drop)
    }

    async fn update_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()> {
        match exec(&self.client().await?, &crate::mail::update_mailbox(mailbox)).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn set_imap_state(&self, mailbox: Uuid, state: &ferrodesk_core::mail::ImapState) -> StoreResult<()> {
        exec(&self.client().await?, &crate::mail::set_imap_state(mailbox, state)).await.map(drop)
    }

    async fn mailboxes(&self) -> StoreResult<Vec<Mailbox>> {
        rows(&self.client().await?, &crate::mail::list_mailboxes(), row::mailbox).await
    }

    async fn receive_inbound(&self, message: NewInbound) -> StoreResult<Received> {
        self.receive_inbound_batch(vec![message])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("the message was not stored".into()))
    }

    async fn receive_inbound_batch(&self, messages: Vec<NewInbound>) -> StoreResult<Vec<Received>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let mut out = Vec::with_capacity(messages.len());
        for message in &messages {
            exec(&tx, &crate::mail::insert_inbound(message, InboundStatus::Pending, None)).await?;
            exec(&tx, &crate::mail::insert_raw(message)).await?;
            // A concurrent copy's claim makes this one wait for it to commit, then do nothing.
            if exec(&tx, &crate::mail::claim_key(message)).await? == 1 {
                out.push(Received::Stored);
                continue;
            }
            let (of, status) =
                one(&tx, &crate::mail::key_holder(&message.dedup_key), |r| Ok((r.uuid("id")?, r.text("status")?)))
                    .await?
                    .ok_or_else(|| StoreError::Database("a de-duplication key without its message".into()))?;
            exec(&tx, &crate::mail::mark_duplicate(message.id, of)).await?;
            let status = InboundStatus::parse(&status, "status").map_err(|e| StoreError::Database(e.to_string()))?;
            out.push(Received::Duplicate { of, status });
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn inbound(&self, id: Uuid) -> StoreResult<Option<InboundMessage>> {
        one(&self.client().await?, &crate::mail::inbound(id), row::inbound).await
    }

    async fn inbound_raw(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
        one(&self.client().await?, &crate::mail::inbound_raw(id), |r| r.bytes("raw")).await
    }

    async fn ticket_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>> {
        rows(&self.client().await?, &crate::mail::ticket_inbound(ticket), row::inbound).await
    }

    async fn list_inbound(
        &self,
        status: Option<InboundStatus>,
        before: Option<(Timestamp, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>> {
        rows(&self.client().await?, &crate::mail::list_inbound(status, before, limit), row::inbound).await
    }

    async fn pending_inbound(&self, limit: u32, received_before: Timestamp) -> StoreResult<Vec<InboundMessage>> {
        rows(&self.client().await?, &crate::mail::pending_inbound(limit, received_before), row::inbound).await
    }

    async fn settle_inbound(&self, o: InboundOutcome) -> StoreResult<Settled> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if one(&tx, &crate::mail::unsettled(&o, "FOR UPDATE"), |r| r.uuid("id")).await?.is_none() {
            return Ok(Settled::AlreadySettled);
        }
        let (ticket, comment_id) = match o.effect.clone() {
            InboundEffect::Nothing => (None, None),
            InboundEffect::NewTicket { id, draft, matrix, actor } => {
                (Some(create_in(&tx, draft, id, &matrix, actor, o.at, None).await?), None)
            }
            InboundEffect::Comment { comment, author_is_staff, watchers } => {
                let comment_id = comment.id.0;
                let current =
                    one(&tx, &locked_ticket(comment.ticket_id), row::ticket).await?.ok_or(StoreError::NotFound)?;
                let change = crate::inbound_comment_change(current, comment, author_is_staff, &watchers)?;
                (Some(save_in(&tx, change).await?), Some(comment_id))
            }
        };
        let mut ticket = ticket;
        for note in o.notes.clone() {
            if let Some(current) = ticket.take() {
                ticket = Some(save_in(&tx, crate::comment_change(current, note, false, None, vec![])?).await?);
            }
        }
        let at = o.at;
        let (blobs, effects, settle) = crate::mail::settle_statements(o, ticket.as_ref().map(|t| t.id), comment_id);
        for (sha256, data) in blobs {
            exec(&tx, &crate::ticket_work::insert_blob(&sha256, data, at)).await?;
        }
        for s in &effects {
            exec(&tx, s).await?;
        }
        if exec(&tx, &settle).await? == 0 {
            return Err(StoreError::Database("the message changed while it was settled".into()));
        }
        tx.commit().await.map_err(db)?;
        Ok(Settled::Applied(ticket.map(Box::new)))
    }

    async fn set_inbound_status(
        &self,
        id: Uuid,
        status: InboundStatus,
        error: Option<String>,
        from: &[InboundStatus],
    ) -> StoreResult<bool> {
        let s = crate::mail::set_inbound_status(id, status, error, from, status == InboundStatus::Quarantined);
        exec(&self.client().await?, &s).await.map(|n| n > 0)
    }

    async fn discard_held(&self, id: Uuid, by: UserId, at: Timestamp) -> StoreResult<bool> {
        exec(&self.client().await?, &crate::mail::discard_held(id, by, at)).await.map(|n| n > 0)
    }

    async fn held_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>> {
        rows(&self.client().await?, &crate::mail::held_on_ticket(ticket), row::inbound).await
    }

    async fn job(&self, id: Uuid) -> StoreResult<Option<Job>> {
        one(&self.client().await?, &crate::mail::job(id), row::job).await
    }

    async fn thread_ticket(&self, message_ids: &[String]) -> StoreResult<Option<TicketId>> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let found = rows(&self.client().await?, &crate::mail::thread_lookup(message_ids), |r| {
            Ok((r.text("message_id")?, r.uuid("ticket_id")?))
        })
        .await?;
        Ok(crate::nearest_thread(message_ids, found))
    }

    async fn instance_secret(&self, name: &str, fresh: Vec<u8>) -> StoreResult<Vec<u8>> {
        let c = self.client().await?;
        exec(&c, &crate::mail::insert_secret(name, fresh, Timestamp::now())).await?;
        one(&c, &crate::mail::secret(name), |r| r.bytes("value"))
            .await?
            .ok_or_else(|| StoreError::Database("the instance secret vanished".into()))
    }

    async fn bounce_count(&self, address: &str) -> StoreResult<i64> {
        Ok(one(&self.client().await?, &crate::mail::bounces(address), |r| r.int("bounces")).await?.unwrap_or(0))
    }

    async fn thread_ids(&self, ticket: TicketId) -> StoreResult<Vec<String>> {
        rows(&self.client().await?, &crate::mail::thread_ids(ticket), |r| r.text("message_id")).await
    }

    async fn remember_thread_id(&self, message_id: &str, ticket: TicketId, at: Timestamp) -> StoreResult<()> {
        exec(&self.client().await?, &crate::mail::remember_thread_id(message_id, ticket, at)).await.map(drop)
    }

    async fn ticket_mailbox(&self, ticket: TicketId) -> StoreResult<Option<Mailbox>> {
        one(&self.client().await?, &crate::mail::ticket_mailbox(ticket), row::mailbox).await
    }

    async fn enqueue_jobs(&self, jobs: Vec<NewJob>, now: Timestamp) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        for j in &jobs {
            exec(&tx, &crate::mail::insert_job(j, now)).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn claim_jobs(&self, now: Timestamp, lease: jiff::SignedDuration, limit: u32) -> StoreResult<Vec<Job>> {
        let until = now.checked_add(lease).unwrap_or(now);
        // SKIP LOCKED: concurrent workers on other nodes take other jobs instead of waiting.
        let s = crate::mail::claim_jobs(now, until, limit, "FOR UPDATE SKIP LOCKED");
        rows(&self.client().await?, &s, row::job).await
    }

    async fn finish_job(&self, id: Uuid, outcome: JobOutcome, now: Timestamp) -> StoreResult<()> {
        exec(&self.client().await?, &crate::mail::finish_job(id, &outcome, now)).await.map(drop)
    }

    async fn jobs_on_topic_since(&self, topic: &str, since: Timestamp) -> StoreResult<i64> {
        Ok(one(&self.client().await?, &crate::mail::jobs_on_topic_since(topic, since), |r| r.int("n"))
            .await?
            .unwrap_or(0))
    }

    async fn ticket_jobs(&self, ticket: TicketId) -> StoreResult<Vec<Job>> {
        rows(&self.client().await?, &crate::mail::jobs_of_ticket(ticket), row::job).await
    }

    async fn ticket_counts(&self) -> StoreResult<Vec<(ferrodesk_core::ticket::Status, i64)>> {
        rows(&self.client().await?, &Stmt::new(query::TICKET_COUNTS_FROM_COUNTERS, vec![]), row::status_count).await
    }

    async fn list_tickets(&self, q: &TicketQuery, scope: &TicketScope) -> StoreResult<Vec<Ticket>> {
        let s = query::list_tickets(Dialect::Postgres, q, scope);
        rows(&self.client().await?, &s, row::ticket).await
    }

    async fn comments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Comment>> {
        rows(&self.client().await?, &query::list_comments(ticket, include_internal), row::comment).await
    }

    async fn history(&self, ticket: TicketId) -> StoreResult<Vec<HistoryEntry>> {
        let s = Stmt::new(
            "SELECT id, ticket_id, actor_id, at, field, old_value, new_value FROM ticket_history WHERE ticket_id = $1 ORDER BY id",
            by_id(ticket.0),
        );
        rows(&self.client().await?, &s, row::history_entry).await
    }
}
