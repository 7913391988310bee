//! The SQLite store: one writer thread applying queued writes in short group-commit
//! transactions (each write in its own savepoint), and a small pool of read connections used
//! from blocking threads. WAL mode, `synchronous=FULL`: an acknowledged write survives power loss.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use ferrodesk_core::access::{Actor, TicketScope};
use ferrodesk_core::ids::*;
use ferrodesk_core::mail::InboundStatus;
use ferrodesk_core::priority::PriorityMatrix;
use ferrodesk_core::ticket::{Ticket, TicketDraft};
use ferrodesk_core::user::{EmailAddress, User};
use jiff::Timestamp;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use uuid::Uuid;

use crate::migrate::{self, Applied};
use crate::query::{self, Dialect, Param, Stmt};
use crate::records::*;
use crate::row::{self, RowAccess};
use crate::ticket_work;
use crate::{Store, StoreError, StoreResult, micros};
use ferrodesk_core::custom_field::CustomFieldDef;

const READERS: usize = 4;
const MAX_BATCH: usize = 64;

type Finish = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// A queued write: run on the writer's connection (or `None` when the batch cannot start),
/// returning whether it succeeded and how to deliver its result after commit.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

pub struct SqliteStore {
    writer: mpsc::Sender<Job>,
    readers: Arc<Readers>,
}

/// Read connections, opened when first needed (a short command such as `ferrodesk mail
/// ingest` then opens one, not five) and kept; the semaphore bounds how many exist.
struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    fn open(&self) -> StoreResult<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        configure(&c)?;
        Ok(c)
    }

    /// Runs `f` on an idle connection, in one read transaction: its statements see one snapshot,
    /// and take the database's read locks once rather than once each. The caller holds a permit,
    /// so fewer than READERS are in use and one more may be opened if none idles.
    fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.idle.lock().map_err(|_| StoreError::Database("reader pool poisoned".into()))?.pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        // Dropped (rolled back) at the end: it only read.
        let result = conn.unchecked_transaction().map_err(db).and_then(|snapshot| f(&snapshot));
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            // Borrowed: a large blob or text is not copied before SQLite takes its own copy.
            Param::Text(v) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(v.as_bytes())),
            Param::Bytes(v) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Blob(v)),
            Param::Int(v) => ToSqlOutput::Owned(SqlValue::Integer(*v)),
            Param::Uuid(v) => ToSqlOutput::Owned(SqlValue::Text(v.to_string())),
            Param::Bool(v) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*v))),
            Param::NullText | Param::NullUuid | Param::NullInt => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

/// A result row with its statement's column names, read once per statement. The decoders look
/// columns up by name; rusqlite's own look-up asks SQLite for each column's name and compares
/// them all again for every column of every row (an eighth of a queue page's time). Decoders
/// mostly ask in the order the columns are selected, so the search starts after the last hit.
struct LiteRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: &'r [String],
    next: std::cell::Cell<usize>,
}

impl LiteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> StoreResult<T> {
        let n = self.names.len();
        let start = self.next.get();
        let found = (0..n).map(|k| (start + k) % n).find(|&i| self.names[i].eq_ignore_ascii_case(col));
        let i = found.ok_or_else(|| StoreError::Database(format!("no column {col} in the result")))?;
        self.next.set(i + 1);
        self.row.get(i).map_err(db)
    }
}

impl RowAccess for LiteRow<'_, '_> {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.get(col)
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.get(col)
    }
    fn boolean(&self, col: &str) -> StoreResult<bool> {
        Ok(self.get::<i64>(col)? != 0)
    }
    fn uuid(&self, col: &str) -> StoreResult<Uuid> {
        let s: String = self.get(col)?;
        Uuid::parse_str(&s).map_err(|e| StoreError::Database(format!("{col}: {e}")))
    }
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
        self.get(col)
    }
    fn opt_uuid(&self, col: &str) -> StoreResult<Option<Uuid>> {
        let s: Option<String> = self.get(col)?;
        s.map(|s| Uuid::parse_str(&s).map_err(|e| StoreError::Database(format!("{col}: {e}")))).transpose()
    }
}

/// Maps driver errors to store errors: constraint violations become their own cases.
fn db(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        if let Some(cols) = msg.strip_prefix("UNIQUE constraint failed: ") {
            let what = cols.split(", ").map(|c| c.rsplit('.').next().unwrap_or(c)).collect::<Vec<_>>().join(", ");
            return StoreError::Duplicate { what };
        }
        if msg.contains("FOREIGN KEY") {
            return StoreError::MissingReference { what: "a referenced record".into() };
        }
    }
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    {
        return StoreError::Busy;
    }
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::DiskFull
    {
        return StoreError::Full;
    }
    StoreError::Database(e.to_string())
}

/// Our statements use `$N`; SQLite spells numbered parameters `?N`.
fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn exec(conn: &Connection, s: &Stmt) -> StoreResult<usize> {
    let started = std::time::Instant::now();
    let mut st = conn.prepare_cached(&lite(&s.sql)).map_err(db)?;
    let done = st.execute(rusqlite::params_from_iter(s.params.iter())).map_err(db);
    s.note_duration(started);
    done
}

fn rows<T>(conn: &Connection, s: &Stmt, decode: impl Fn(&LiteRow<'_, '_>) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let started = std::time::Instant::now();
    let mut st = conn.prepare_cached(&lite(&s.sql)).map_err(db)?;
    let names: Vec<String> = st.column_names().into_iter().map(str::to_owned).collect();
    let mut rs = st.query(rusqlite::params_from_iter(s.params.iter())).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rs.next().map_err(db)? {
        out.push(decode(&LiteRow { row, names: &names, next: std::cell::Cell::new(0) })?);
    }
    s.note_duration(started);
    Ok(out)
}

fn one<T>(conn: &Connection, s: &Stmt, decode: impl Fn(&LiteRow<'_, '_>) -> StoreResult<T>) -> StoreResult<Option<T>> {
    Ok(rows(conn, s, decode)?.into_iter().next())
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;",
    )
    .map_err(db)?;
    conn.execute_batch(&format!("PRAGMA cache_size = {CACHE}")).map_err(db)
}

/// Page cache per connection, in KiB (negative, as SQLite takes it): small, for the RSS target.
const CACHE: i32 = -8192;
/// The writer's page cache during an import: at 1M tickets with 8 MiB the writer re-read index
/// pages from the operating system for every insert (a quarter of the import's time).
const BULK_CACHE: i32 = -524_288;

/// How FTS5 merges the search index's segments while serving: a little after each write, 8
/// segments of a level at a time (automerge; 4 cost create throughput, migration 0010), and all
/// of a level at once only if it reaches 16 (the default crisis limit).
const SERVING_SEARCH_MERGES: &str = "INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 8); \
    INSERT INTO ticket_search (ticket_search, rank) VALUES ('crisismerge', 16);";
/// While importing: no merging a little at a time, only whole levels of 8 segments at once.
/// Incremental merges of a growing index were a third of a 1M import's time, most of it
/// deleting the pages each step had consumed from every input segment; a whole-level merge
/// deletes each input once. And it leaves fewer than 8 segments on every level, so the serving
/// automerge has no large merge pending after an import (one was what made create latency
/// worse on a freshly imported database).
const BULK_SEARCH_MERGES: &str = "INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 0); \
    INSERT INTO ticket_search (ticket_search, rank) VALUES ('crisismerge', 8);";

/// Puts back the serving merge settings if an import that died left its own (FTS5 keeps them
/// in the database). Every migrate does this — also one by another command started while an
/// import runs, which then goes on with the serving merges: slower, never wrong.
fn restore_search_merges(c: &Connection) -> StoreResult<()> {
    let automerge: Option<i64> = c
        .query_row("SELECT v FROM ticket_search_config WHERE k = 'automerge'", [], |r| r.get(0))
        .optional()
        .map_err(db)?;
    if automerge == Some(0) {
        tracing::warn!(
            "the search index had an import's merge settings (an import died or is running); serving ones restored"
        );
        c.execute_batch(SERVING_SEARCH_MERGES).map_err(db)?;
    }
    Ok(())
}

/// Makes a file or folder accessible to its owner only.
fn restrict(path: &Path, mode: u32) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| StoreError::Database(format!("cannot restrict {}: {e}", path.display())))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Refreshes the planner's statistics (`sqlite_stat1`) of tables that changed a lot, reading at
/// most about 1,000 rows per index so it stays quick at any size. Without statistics SQLite
/// guesses, and at 1M tickets it guessed wrong: it read a requester's tickets through the
/// status index (every resolved ticket) instead of the requester index (200 ms instead of 1).
const REFRESH_STATISTICS: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;";
/// How often the writer refreshes statistics while the server runs.
const STATISTICS_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The search rows a write batch produced wait here until the batch's other writes are done.
/// SQLite opens a statement savepoint for any statement that may abort half-way (a counter
/// trigger's upsert, a constrained insert), and at every savepoint FTS5 writes what it holds
/// as a new index segment: search rows written amid the other rows made one segment per
/// ticket, merged over and over (an import ran 3× slower, creates lost throughput). Written
/// together at the end of the batch, they make one. Being a table, the queue follows the
/// writer's savepoints: a failed job's rows go with its rollback. Temporary: one per
/// connection, in memory, never in the database file.
const SEARCH_QUEUE: &str = "CREATE TEMP TABLE search_queue (\
    rowid INTEGER PRIMARY KEY, subject TEXT NOT NULL, \
    description TEXT NOT NULL, public_text TEXT NOT NULL, internal_text TEXT NOT NULL)";
/// Runs at the end of every write batch, inside its transaction; through `exec`, so the
/// statements are prepared once, not parsed again for every batch. One statement replaces old
/// rows and adds new ones: a separate `DELETE` before the `INSERT` left its deletions pending,
/// and the `INSERT`'s statement savepoint made FTS5 write them as a segment of their own, with
/// its own merge step (a fifth of the writer's time under a comment load).
fn flush_search(conn: &Connection) -> StoreResult<()> {
    for sql in [
        "INSERT OR REPLACE INTO ticket_search (rowid, subject, description, public_text, internal_text) \
         SELECT rowid, subject, description, public_text, internal_text FROM temp.search_queue ORDER BY rowid",
        "DELETE FROM temp.search_queue",
    ] {
        exec(conn, &Stmt::new(sql, vec![]))?;
    }
    Ok(())
}

fn run_writer(conn: Connection, jobs: mpsc::Receiver<Job>) {
    loop {
        let first = match jobs.recv_timeout(STATISTICS_EVERY) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.execute_batch(REFRESH_STATISTICS) {
                    tracing::warn!(error = %e, "refreshing the query planner's statistics failed");
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = db(e);
            for job in batch {
                let (_, finish) = job(None);
                finish(Err(err.clone()));
            }
            continue;
        }
        // A job alone in its batch needs no savepoint: the transaction is one. And it must not
        // have one when it is large (an import's thousands of rows): SQLite then keeps every
        // page the job touched in its in-memory sub-journal and walks that list at the end of
        // each statement, which made a 2,000-ticket import batch quadratic (40% of its time).
        let alone = batch.len() == 1;
        let (begin, undo, end) = if alone { ("", "", "") } else { ("SAVEPOINT job", "ROLLBACK TO job", "RELEASE job") };
        let mut finishes = Vec::with_capacity(batch.len());
        let mut failed = false;
        for job in batch {
            if conn.execute_batch(begin).is_err() {
                let (_, finish) = job(None);
                finishes.push((finish, false));
                continue;
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(Some(&conn)))) {
                Ok((ok, finish)) => {
                    if !ok {
                        failed = true;
                        let _ = conn.execute_batch(undo);
                    }
                    finishes.push((finish, true));
                }
                Err(_) => {
                    tracing::error!("a store write panicked; its changes were rolled back");
                    failed = true;
                    let _ = conn.execute_batch(undo);
                }
            }
            let _ = conn.execute_batch(end);
        }
        // A lone job that failed goes with the transaction: nothing to commit, and its own
        // error is what it reports.
        let discard = alone && failed;
        let commit =
            if discard { Ok(()) } else { flush_search(&conn).and_then(|()| conn.execute_batch("COMMIT").map_err(db)) };
        if discard || commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for (finish, started) in finishes {
            let outcome =
                if started { commit.clone() } else { Err(StoreError::Database("could not start the write".into())) };
            finish(outcome);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its connections.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
            restrict(dir, 0o700)?;
        }
        let writer_conn = Connection::open(path).map_err(db)?;
        // The database holds attachments and password hashes: readable by its owner only.
        restrict(path, 0o600)?;
        configure(&writer_conn)?;
        writer_conn.execute_batch(SEARCH_QUEUE).map_err(db)?;
        // Statistics before the readers open, so they plan with them from the first query.
        if let Err(e) = writer_conn.execute_batch(REFRESH_STATISTICS) {
            tracing::warn!(error = %e, "refreshing the query planner's statistics failed");
        }
        let readers = Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::with_capacity(READERS)),
            permits: Arc::new(Semaphore::new(READERS)),
        };
        // One reader now, so that a database that cannot be read fails at open, not later.
        let first = readers.open()?;
        if let Ok(mut idle) = readers.idle.lock() {
            idle.push(first);
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer_conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { writer: tx, readers: Arc::new(readers) })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(c) => f(c),
                None => Err(StoreError::Database("the write could not start".into())),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, finish)
        });
        let stopped = || StoreError::Database("the database writer has stopped".into());
        self.writer.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    async fn reader_permit(&self) -> StoreResult<OwnedSemaphorePermit> {
        self.readers.permits.clone().acquire_owned().await.map_err(|_| StoreError::Database("store closed".into()))
    }

    /// A read that may take long (lists, searches, counts over many rows, large values): on a
    /// blocking thread, so that it never holds up the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let permit = self.reader_permit().await?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            // The permit goes with the connection: released when this thread is done with it.
            let _permit = permit;
            readers.with_connection(f)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }

    /// A read of a few rows found by key (a session, a ticket and its conversation, a user):
    /// run where the caller is. It takes tens of microseconds; handing it to a blocking thread
    /// and back cost more than that in thread wake-ups (see docs/PERFORMANCE.md).
    async fn read_by_key<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let _permit = self.reader_permit().await?;
        self.readers.with_connection(f)
    }
}

/// Everything access decisions need about an active user (see `Store::actor`).
fn actor_in(c: &Connection, id: UserId) -> StoreResult<Option<Actor>> {
    let (who, groups, see_all) = query::actor_statements(id);
    let Some(found) = one(c, &who, |r| row::actor(r))? else {
        return Ok(None);
    };
    let group_ids = rows(c, &groups, |r| Ok(GroupId(r.uuid("group_id")?)))?;
    let see_all = one(c, &see_all, |r| r.text("value"))?;
    Ok(query::actor_from(id, Some(found), group_ids, see_all))
}

fn settings_in(c: &Connection) -> StoreResult<Settings> {
    let pairs =
        rows(c, &Stmt::new("SELECT key, value FROM settings", vec![]), |r| Ok((r.text("key")?, r.text("value")?)))?;
    Ok(query::settings_from_pairs(&pairs))
}

fn custom_fields_in(c: &Connection) -> StoreResult<Vec<CustomFieldDef>> {
    rows(c, &Stmt::new(ticket_work::LIST_CUSTOM_FIELDS, vec![]), |r| row::custom_field(r))
}

/// Queues a changed ticket's search row (written at the end of the batch, see `SEARCH_QUEUE`).
fn reindex(conn: &Connection, t: &Ticket) -> StoreResult<()> {
    let comments = rows(conn, &query::comment_texts(t.id), |r| row::comment_text(r))?;
    queue_search(conn, t.number, query::search_document(t, &comments))
}

/// Queues a ticket's search row (rowid = its number; internal notes in their own column),
/// replacing any the ticket had.
fn queue_search(conn: &Connection, number: TicketNumber, doc: (String, String, String, String)) -> StoreResult<()> {
    let (subject, description, public, internal) = doc;
    exec(
        conn,
        &Stmt::new(
            "INSERT INTO temp.search_queue (rowid, subject, description, public_text, internal_text) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rowid) DO UPDATE SET subject = excluded.subject, \
             description = excluded.description, public_text = excluded.public_text, \
             internal_text = excluded.internal_text",
            vec![
                Param::Int(number.0),
                Param::Text(subject),
                Param::Text(description),
                Param::Text(public),
                Param::Text(internal),
            ],
        ),
    )?;
    Ok(())
}

/// Stores a ticket change inside the writer's transaction (see `Store::save_ticket`).
fn save_in(c: &Connection, change: TicketChange) -> StoreResult<Ticket> {
    if exec(c, &query::update_ticket(&change.ticket, change.expected_version, None))? != 1 {
        let current =
            one(c, &Stmt::new("SELECT version FROM tickets WHERE id = $1", by_id(change.ticket.id.0)), |r| {
                r.int("version")
            })?;
        return Err(current.map_or(StoreError::NotFound, |current| StoreError::Conflict { current }));
    }
    let writes = query::plan_save(&change);
    for s in writes.sets.iter().chain(&writes.added) {
        exec(c, s)?;
    }
    if let (Some(key), Some(comment)) = (&change.idempotency, &change.comment) {
        record_idempotency(c, key, comment.id.0, change.at)?;
    }
    if query::needs_reindex(&change) {
        reindex(c, &change.ticket)?;
    }
    let mut saved = change.ticket;
    saved.version = change.expected_version + 1;
    Ok(saved)
}

/// Opens a ticket inside the caller's transaction: the next number, the row, its sets, a
/// "created" history line, the idempotency key and the search entry.
fn create_in(
    c: &Connection,
    draft: TicketDraft,
    id: TicketId,
    matrix: &PriorityMatrix,
    actor: Option<UserId>,
    now: Timestamp,
    idempotency: Option<Idempotency>,
) -> StoreResult<Ticket> {
    let now = ferrodesk_core::time::to_storage_precision(now);
    let number: i64 =
        c.query_row("SELECT coalesce(max(number), 1000) + 1 FROM tickets", [], |r| r.get(0)).map_err(db)?;
    let ticket = Ticket::open(draft, id, TicketNumber(number), matrix, now);
    exec(c, &query::insert_ticket(&ticket, None))?;
    for s in query::insert_ticket_sets(&ticket) {
        exec(c, &s)?;
    }
    for s in query::insert_history(&query::created_change(&ticket, actor, now)) {
        exec(c, &s)?;
    }
    if let Some(key) = &idempotency {
        record_idempotency(c, key, ticket.id.0, now)?;
    }
    // A new ticket has no comments yet.
    queue_search(c, ticket.number, query::search_document(&ticket, &[]))?;
    Ok(ticket)
}

/// Stores a raw message inside the caller's transaction: `pending`, or `duplicate` of the copy
/// that holds its key.
fn receive_in(c: &Connection, message: &NewInbound) -> StoreResult<Received> {
    exec(c, &crate::mail::insert_inbound(message, InboundStatus::Pending, None))?;
    insert_raw(c, message)?;
    if exec(c, &crate::mail::claim_key(message))? == 1 {
        return Ok(Received::Stored);
    }
    let (of, status) =
        one(c, &crate::mail::key_holder(&message.dedup_key), |r| Ok((r.uuid("id")?, r.text("status")?)))?
            .ok_or_else(|| StoreError::Database("a de-duplication key without its message".into()))?;
    exec(c, &crate::mail::mark_duplicate(message.id, of))?;
    let status = InboundStatus::parse(&status, "status").map_err(|e| StoreError::Database(e.to_string()))?;
    Ok(Received::Duplicate { of, status })
}

/// A message's bytes, written in pieces into a blob made to measure: SQLite copies a bound
/// value, and builds the whole row in memory once more before writing it, so binding a large
/// message would hold it three times.
fn insert_raw(c: &Connection, message: &NewInbound) -> StoreResult<()> {
    if message.raw.len() <= PIECE {
        // Small: bound at once is cheaper than opening a blob handle.
        return exec(c, &crate::mail::insert_raw(message)).map(drop);
    }
    c.execute(
        "INSERT INTO inbound_raw (id, raw) VALUES (?1, zeroblob(?2))",
        rusqlite::params![message.id.to_string(), blob_size(&message.raw)?],
    )
    .map_err(db)?;
    write_pieces(c, "inbound_raw", "raw", &message.raw)
}

/// A file's contents, once per content (the same way as [`insert_raw`]).
fn write_blob(c: &Connection, sha256: &str, data: &bytes::Bytes, at: Timestamp) -> StoreResult<()> {
    if data.len() <= PIECE {
        return exec(c, &ticket_work::insert_blob(sha256, data.clone(), at)).map(drop);
    }
    let inserted = c
        .execute(
            "INSERT INTO blobs (sha256, size, data, created_at) VALUES (?1, ?2, zeroblob(?3), ?4) \
             ON CONFLICT (sha256) DO NOTHING",
            rusqlite::params![sha256, data.len() as i64, blob_size(data)?, crate::micros(at)],
        )
        .map_err(db)?;
    if inserted == 0 {
        return Ok(());
    }
    write_pieces(c, "blobs", "data", data)
}

fn blob_size(data: &[u8]) -> StoreResult<i32> {
    i32::try_from(data.len()).map_err(|_| StoreError::Database("too large for one value".into()))
}

/// What large values are written in (and what is small enough to bind at once).
const PIECE: usize = 1024 * 1024;

/// Fills the blob of the row just inserted, a piece at a time.
fn write_pieces(c: &Connection, table: &str, column: &str, data: &[u8]) -> StoreResult<()> {
    let mut blob = c.blob_open(rusqlite::MAIN_DB, table, column, c.last_insert_rowid(), false).map_err(db)?;
    for (n, piece) in data.chunks(PIECE).enumerate() {
        blob.write_at(piece, n * PIECE).map_err(db)?;
    }
    Ok(())
}

/// Applies a processed inbound message inside the caller's transaction.
fn settle_in(c: &Connection, o: InboundOutcome) -> StoreResult<Settled> {
    // The one writer runs this whole function: nothing can settle the message in between.
    if one(c, &crate::mail::unsettled(&o, ""), |r| r.uuid("id"))?.is_none() {
        return Ok(Settled::AlreadySettled);
    }
    let (ticket, comment_id) = match o.effect.clone() {
        InboundEffect::Nothing => (None, None),
        InboundEffect::NewTicket { id, draft, matrix, actor } => {
            (Some(create_in(c, draft, id, &matrix, actor, o.at, None)?), None)
        }
        InboundEffect::Comment { comment, author_is_staff, watchers } => {
            let comment_id = comment.id.0;
            let current = one(c, &query::find_ticket(TicketRef::Id(comment.ticket_id)), |r| row::ticket(r))?
                .ok_or(StoreError::NotFound)?;
            let change = crate::inbound_comment_change(current, comment, author_is_staff, &watchers)?;
            (Some(save_in(c, change)?), Some(comment_id))
        }
    };
    let mut ticket = ticket;
    for note in o.notes.clone() {
        if let Some(current) = ticket.take() {
            ticket = Some(save_in(c, crate::comment_change(current, note, false, None, vec![])?)?);
        }
    }
    let at = o.at;
    let (blobs, effects, settle) = crate::mail::settle_statements(o, ticket.as_ref().map(|t| t.id), comment_id);
    for (sha256, data) in blobs {
        write_blob(c, &sha256, &data, at)?;
    }
    for s in &effects {
        exec(c, s)?;
    }
    if exec(c, &settle)? == 0 {
        return Err(StoreError::Database("the message changed while it was settled".into()));
    }
    Ok(Settled::Applied(ticket.map(Box::new)))
}

fn record_idempotency(c: &Connection, key: &Idempotency, target: Uuid, now: Timestamp) -> StoreResult<()> {
    match one(c, &ticket_work::record_idempotency(key, target, now), |r| r.int("created_at"))? {
        Some(_) => Ok(()),
        None => Err(StoreError::Duplicate { what: "idempotency key".into() }),
    }
}

fn ticket_numbers(c: &Connection, ids: &[TicketId]) -> StoreResult<Vec<(TicketId, i64)>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(n) =
            one(c, &Stmt::new("SELECT number FROM tickets WHERE id = $1", by_id(id.0)), |r| r.int("number"))?
        {
            out.push((*id, n));
        }
    }
    Ok(out)
}

fn by_id(id: Uuid) -> Vec<Param> {
    vec![Param::Uuid(id)]
}

#[async_trait]
impl Store for SqliteStore {
    fn dialect(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read_by_key(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db)).await
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        self.write(|c| {
            let exists: bool = c
                .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(db)?
                > 0;
            let applied = if exists {
                rows(
                    c,
                    &Stmt::new("SELECT version, name, checksum FROM schema_migrations ORDER BY version", vec![]),
                    |r| {
                        Ok(Applied { version: r.int("version")?, name: r.text("name")?, checksum: r.text("checksum")? })
                    },
                )?
            } else {
                vec![]
            };
            let todo = migrate::pending(migrate::SQLITE, &applied)?;
            if !exists {
                c.execute_batch(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
                     checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                )
                .map_err(db)?;
            }
            let mut names = Vec::new();
            for m in todo {
                c.execute_batch(m.sql).map_err(|e| StoreError::Schema(format!("migration {} failed: {e}", m.name)))?;
                exec(
                    c,
                    &Stmt::new(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                        vec![
                            Param::Int(m.version),
                            Param::Text(m.name.into()),
                            Param::Text(m.checksum()),
                            Param::Int(micros(Timestamp::now())),
                        ],
                    ),
                )?;
                names.push(m.name.to_string());
            }
            if !names.is_empty() {
                // New indexes get their statistics now rather than at the next hourly run.
                c.execute_batch(REFRESH_STATISTICS).map_err(db)?;
            }
            restore_search_merges(c)?;
            Ok(names)
        })
        .await
    }

    async fn settings(&self) -> StoreResult<Settings> {
        self.read_by_key(settings_in).await
    }

    async fn ticket_rules(&self) -> StoreResult<(Settings, Vec<CustomFieldDef>)> {
        self.read_by_key(|c| Ok((settings_in(c)?, custom_fields_in(c)?))).await
    }

    async fn save_settings(&self, settings: &Settings) -> StoreResult<()> {
        let pairs = query::settings_to_pairs(settings);
        self.write(move |c| {
            for (k, v) in pairs {
                exec(c, &Stmt::new(query::UPSERT_SETTING, vec![Param::Text(k.into()), Param::Text(v)]))?;
            }
            Ok(())
        })
        .await
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let s = query::insert_user(user, password_hash);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let s = query::update_user(user);
        self.write(move |c| match exec(c, &s)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        })
        .await
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
        let s = Stmt::new(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            vec![Param::Text(hash.into()), Param::Uuid(id.0)],
        );
        let void = crate::mail::void_resets(id, Timestamp::now());
        self.write(move |c| {
            exec(c, &s)?;
            exec(c, &void).map(drop)
        })
        .await
    }

    async fn create_password_reset(&self, reset: &PasswordReset, mail: NewJob) -> StoreResult<()> {
        let (void, insert) =
            (crate::mail::void_resets(reset.user_id, reset.created_at), crate::mail::insert_reset(reset));
        let job = crate::mail::insert_job(&mail, reset.created_at);
        self.write(move |c| {
            exec(c, &void)?;
            exec(c, &insert)?;
            exec(c, &job).map(drop)
        })
        .await
    }

    async fn use_password_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserId>> {
        let claim = crate::mail::claim_reset(token_hash, now);
        let password_hash = password_hash.to_owned();
        self.write(move |c| {
            let Some(user) = one(c, &claim, |r| r.uuid("user_id"))?.map(UserId) else { return Ok(None) };
            if exec(c, &crate::mail::set_password(user, &password_hash))? == 0 {
                return Ok(None);
            }
            exec(c, &crate::mail::void_resets(user, now))?;
            exec(c, &crate::mail::end_sessions(user))?;
            Ok(Some(user))
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let s = query::user_by_id(id);
        self.read_by_key(move |c| one(c, &s, |r| row::user(r))).await
    }

    async fn user_by_email(&self, email: &EmailAddress) -> StoreResult<Option<(User, Option<String>)>> {
        let s = Stmt::new(
            format!("SELECT {}, password_hash FROM users WHERE email = $1", row::USER_COLUMNS),
            vec![Param::Text(email.as_str().into())],
        );
        self.read_by_key(move |c| one(c, &s, |r| Ok((row::user(r)?, r.opt_text("password_hash")?)))).await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let s = query::list_users(query);
        self.read(move |c| rows(c, &s, |r| row::user(r))).await
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let s = query::users_by_ids(ids);
        self.read_by_key(move |c| rows(c, &s, |r| row::user(r))).await
    }

    async fn count_tickets(&self, q: &TicketQuery, scope: &TicketScope) -> StoreResult<i64> {
        let s = query::count_tickets(Dialect::Sqlite, q, scope);
        self.read(move |c| one(c, &s, |r| r.int("n"))).await.map(|n| n.unwrap_or(0))
    }

    async fn count_tickets_each(&self, queries: &[TicketQuery], scope: &TicketScope) -> StoreResult<Vec<i64>> {
        let statements: Vec<Stmt> = queries.iter().map(|q| query::count_tickets(Dialect::Sqlite, q, scope)).collect();
        self.read(move |c| statements.iter().map(|s| one(c, s, |r| r.int("n")).map(|n| n.unwrap_or(0))).collect()).await
    }

    async fn actor(&self, id: UserId) -> StoreResult<Option<Actor>> {
        self.read_by_key(move |c| actor_in(c, id)).await
    }

    async fn create_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()> {
        let s = query::insert_token(token, token_hash);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn token_actor(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Actor>> {
        let find = query::find_token(token_hash);
        // The token and its owner's rights in one read: every API request starts here.
        let owner = self
            .read_by_key(move |c| {
                let Some((token_id, user, last_used)) = one(c, &find, |r| {
                    Ok((TokenId(r.uuid("id")?), UserId(r.uuid("user_id")?), r.opt_int("last_used_at")?))
                })?
                else {
                    return Ok(None);
                };
                Ok(actor_in(c, user)?.map(|actor| (token_id, actor, last_used)))
            })
            .await?;
        let Some((token_id, actor, last_used)) = owner else {
            return Ok(None);
        };
        if let Some(touch) = query::touch_token(token_id, last_used, now) {
            self.write(move |c| exec(c, &touch).map(drop)).await?;
        }
        Ok(Some(actor))
    }

    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>> {
        let s = Stmt::new(
            "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at",
            by_id(user.0),
        );
        self.read(move |c| rows(c, &s, |r| row::token(r))).await
    }

    async fn list_all_tokens(&self, limit: u32) -> StoreResult<Vec<ApiToken>> {
        let s = query::list_all_tokens(limit);
        self.read(move |c| rows(c, &s, |r| row::token(r))).await
    }

    async fn revoke_token(&self, user: UserId, id: TokenId, now: Timestamp) -> StoreResult<bool> {
        let s = query::revoke_token(user, id, now);
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn create_session(&self, session: &Session, secret_hash: &str) -> StoreResult<()> {
        let s = query::insert_session(session, secret_hash);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn signed_in(
        &self,
        secret_hash: &str,
        now: Timestamp,
        idle: jiff::SignedDuration,
    ) -> StoreResult<Option<SignedIn>> {
        let find = query::find_session(secret_hash, now, idle);
        // One hop for what every page needs first.
        let found = self
            .read_by_key(move |c| {
                let Some(session) = one(c, &find, |r| row::session(r))? else {
                    return Ok(None);
                };
                let Some(actor) = actor_in(c, session.user_id)? else {
                    return Ok(None);
                };
                let user = one(c, &query::user_by_id(session.user_id), |r| row::user(r))?;
                Ok(user.map(|user| SignedIn { session, actor, user }))
            })
            .await?;
        if let Some(touch) = found.as_ref().and_then(|s| query::touch_session(&s.session, now)) {
            self.write(move |c| exec(c, &touch).map(drop)).await?;
        }
        Ok(found)
    }

    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<Session>> {
        let s = Stmt::new(
            format!("SELECT {} FROM sessions WHERE user_id = $1 ORDER BY created_at", query::SESSION_COLUMNS),
            by_id(user.0),
        );
        self.read(move |c| rows(c, &s, |r| row::session(r))).await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let s = Stmt::new(
            "DELETE FROM sessions WHERE user_id = $1 AND id = $2",
            vec![Param::Uuid(user.0), Param::Uuid(id.0)],
        );
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn delete_sessions(&self, user: UserId, keep: Option<SessionId>) -> StoreResult<u64> {
        let s = query::delete_sessions(user, keep);
        self.write(move |c| exec(c, &s).map(|n| n as u64)).await
    }

    async fn admit_login(
        &self,
        rules: &[ThrottleRule],
        now: Timestamp,
        window: jiff::SignedDuration,
    ) -> StoreResult<Option<Timestamp>> {
        let rules = rules.to_vec();
        // Refusal is an error inside the write so its savepoint rolls back the other counts.
        let outcome = self
            .write(move |c| {
                for rule in &rules {
                    if one(c, &query::count_login_attempt(rule, now, window), |r| r.int("attempts"))?.is_none() {
                        let start = one(c, &query::throttle_window_start(&rule.key), |r| r.int("window_start"))?
                            .unwrap_or(micros(now));
                        return Err(StoreError::Throttled { until: start + window.as_micros() as i64 });
                    }
                }
                Ok(())
            })
            .await;
        match outcome {
            Ok(()) => Ok(None),
            Err(StoreError::Throttled { until }) => Ok(Some(crate::from_micros(until)?)),
            Err(e) => Err(e),
        }
    }

    async fn clear_login_attempts(&self, key: &str) -> StoreResult<()> {
        let s = Stmt::new("DELETE FROM login_throttle WHERE key = $1", vec![Param::Text(key.into())]);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn create_organisation(&self, org: &Organisation) -> StoreResult<()> {
        let s = query::insert_organisation(org);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        let s = Stmt::new("SELECT id, name, shares_tickets, created_at FROM organisations ORDER BY name", vec![]);
        self.read(move |c| rows(c, &s, |r| row::organisation(r))).await
    }

    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        let s = query::insert_group(group);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        let s = Stmt::new("SELECT id, name, support_level, created_at FROM support_groups ORDER BY name", vec![]);
        self.read_by_key(move |c| rows(c, &s, |r| row::group(r))).await
    }

    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let s = Stmt::new("SELECT id, name, support_level, created_at FROM support_groups WHERE id = $1", by_id(id.0));
        self.read_by_key(move |c| one(c, &s, |r| row::group(r))).await
    }

    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        let s = query::add_member(group, user);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<bool> {
        let s = Stmt::new(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
            vec![Param::Uuid(group.0), Param::Uuid(user.0)],
        );
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn group_members(&self, group: GroupId) -> StoreResult<Vec<UserId>> {
        let s = Stmt::new("SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id", by_id(group.0));
        self.read_by_key(move |c| rows(c, &s, |r| Ok(UserId(r.uuid("user_id")?)))).await
    }

    async fn create_category(&self, category: &Category) -> StoreResult<()> {
        let s = query::insert_category(category);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        let s = Stmt::new("SELECT id, parent_id, name, created_at FROM categories ORDER BY name", vec![]);
        self.read_by_key(move |c| rows(c, &s, |r| row::category(r))).await
    }

    async fn update_organisation(&self, org: &Organisation) -> StoreResult<()> {
        let s = query::update_organisation(org);
        self.write(move |c| match exec(c, &s)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        })
        .await
    }

    async fn update_group(&self, group: &Group) -> StoreResult<()> {
        let s = query::update_group(group);
        self.write(move |c| match exec(c, &s)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        })
        .await
    }

    async fn update_category(&self, category: &Category) -> StoreResult<()> {
        let s = query::update_category(category);
        self.write(move |c| match exec(c, &s)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        })
        .await
    }

    async fn update_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()> {
        let s = ticket_work::update_custom_field(def);
        self.write(move |c| match exec(c, &s)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        })
        .await
    }

    async fn create_ticket(
        &self,
        draft: TicketDraft,
        matrix: &PriorityMatrix,
        actor: Option<UserId>,
        now: Timestamp,
        idempotency: Option<Idempotency>,
    ) -> StoreResult<Ticket> {
        let matrix = matrix.clone();
        self.write(move |c| create_in(c, draft, TicketId::generate(), &matrix, actor, now, idempotency)).await
    }

    /// SQLite imports 1M tickets within its 5-minute target with its indexes in place.
    async fn set_aside_ticket_indexes(&self) -> StoreResult<usize> {
        Ok(0)
    }

    async fn rebuild_set_aside_indexes(&self) -> StoreResult<usize> {
        Ok(0)
    }

    async fn bulk_writes(&self, on: bool) -> StoreResult<()> {
        let (pages, merges) = if on { (BULK_CACHE, BULK_SEARCH_MERGES) } else { (CACHE, SERVING_SEARCH_MERGES) };
        self.write(move |c| {
            c.execute_batch(&format!("PRAGMA cache_size = {pages}")).map_err(db)?;
            c.execute_batch(merges).map_err(db)
        })
        .await
    }

    async fn compact_view_counters(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn merge_pending_search_entries(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn compact_search_index(&self, pages: u32) -> StoreResult<bool> {
        self.write(move |c| {
            // A negative page count asks FTS5 to merge every segment, not only full levels; the
            // merge goes on from where the last step left it. Whether this step did anything is
            // told by the rows FTS5 wrote: more than the one change the command itself counts.
            let before = c.total_changes();
            c.execute(
                "INSERT INTO ticket_search (ticket_search, rank) VALUES ('merge', ?1)",
                [-i64::from(pages.max(1))],
            )
            .map_err(db)?;
            Ok(c.total_changes() - before > 1)
        })
        .await
    }

    async fn import_tickets(&self, batch: Vec<ImportedTicket>) -> StoreResult<Vec<TicketNumber>> {
        self.write(move |c| {
            let first: i64 =
                c.query_row("SELECT coalesce(max(number), 1000) + 1 FROM tickets", [], |r| r.get(0)).map_err(db)?;
            let mut numbers = Vec::with_capacity(batch.len());
            for (number, mut item) in (first..).zip(batch) {
                item.ticket.number = TicketNumber(number);
                item.ticket.version = 1;
                for s in query::import_statements(&item, None) {
                    exec(c, &s)?;
                }
                queue_search(c, item.ticket.number, query::import_document(&item))?;
                numbers.push(item.ticket.number);
            }
            Ok(numbers)
        })
        .await
    }

    async fn ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        let s = query::find_ticket(TicketRef::Id(id));
        self.read_by_key(move |c| one(c, &s, |r| row::ticket(r))).await
    }

    async fn ticket_by_number(&self, number: TicketNumber) -> StoreResult<Option<Ticket>> {
        let s = query::find_ticket(TicketRef::Number(number));
        self.read_by_key(move |c| one(c, &s, |r| row::ticket(r))).await
    }

    async fn ticket_with_comments(&self, ticket: TicketRef) -> StoreResult<Option<(Ticket, Vec<Comment>)>> {
        let (find, comments) = query::ticket_with_comments(ticket);
        // One read: both statements see the same snapshot.
        self.read_by_key(move |c| {
            let Some(found) = one(c, &find, |r| row::ticket(r))? else {
                return Ok(None);
            };
            Ok(Some((found, rows(c, &comments, |r| row::comment(r))?)))
        })
        .await
    }

    async fn save_ticket(&self, change: TicketChange) -> StoreResult<Ticket> {
        self.write(move |c| save_in(c, change)).await
    }

    async fn add_comment(
        &self,
        comment: Comment,
        author_is_staff: bool,
        idempotency: Option<Idempotency>,
        jobs: Vec<NewJob>,
    ) -> StoreResult<Ticket> {
        let find = query::find_ticket(TicketRef::Id(comment.ticket_id));
        // Read and written by the one writer, in one transaction: nothing can come between.
        self.write(move |c| {
            let current = one(c, &find, |r| row::ticket(r))?.ok_or(StoreError::NotFound)?;
            save_in(c, crate::comment_change(current, comment, author_is_staff, idempotency, jobs)?)
        })
        .await
    }

    async fn merge_tickets(&self, source: TicketChange, target: TicketChange) -> StoreResult<(Ticket, Ticket)> {
        self.write(move |c| {
            let (from, to) = (source.ticket.id, target.ticket.id);
            let source = save_in(c, source)?;
            exec(c, &ticket_work::move_comments(from, to))?;
            exec(c, &ticket_work::move_attachments(from, to))?;
            let target = save_in(c, target)?;
            reindex(c, &source)?;
            reindex(c, &target)?;
            Ok((source, target))
        })
        .await
    }

    async fn link_tickets(
        &self,
        from: TicketId,
        to: TicketId,
        kind: LinkKind,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.write(move |c| {
            let existing = rows(c, &ticket_work::links_touching(from, to), |r| row::link(r))?;
            let plan = ticket_work::plan_link(from, to, kind, &existing).map_err(StoreError::Refused)?;
            let numbers = ticket_numbers(c, &[from, to])?;
            for (a, b, k) in &plan {
                exec(c, &ticket_work::insert_link(*a, *b, k, now))?;
            }
            for s in ticket_work::link_history(&plan, &numbers, actor, now, false) {
                exec(c, &s)?;
            }
            Ok(())
        })
        .await
    }

    async fn unlink_tickets(
        &self,
        a: TicketId,
        b: TicketId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write(move |c| {
            let existing = rows(c, &ticket_work::links_touching(a, b), |r| row::link(r))?;
            let between = ticket_work::links_between(a, b, &existing);
            if between.is_empty() {
                return Ok(false);
            }
            exec(c, &ticket_work::delete_links(a, b))?;
            let numbers = ticket_numbers(c, &[a, b])?;
            for s in ticket_work::link_history(&between, &numbers, actor, now, true) {
                exec(c, &s)?;
            }
            Ok(true)
        })
        .await
    }

    async fn ticket_links(&self, ticket: TicketId) -> StoreResult<Vec<(LinkKind, Ticket)>> {
        let s = ticket_work::list_links(ticket);
        self.read_by_key(move |c| rows(c, &s, |r| Ok((ticket_work::link_kind(&r.text("link_kind")?), row::ticket(r)?))))
            .await
    }

    async fn add_time_entry(&self, entry: &TimeEntry) -> StoreResult<()> {
        let s = ticket_work::insert_time_entry(entry);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn time_entries(&self, ticket: TicketId) -> StoreResult<Vec<TimeEntry>> {
        let s = ticket_work::list_time_entries(ticket);
        self.read_by_key(move |c| rows(c, &s, |r| row::time_entry(r))).await
    }

    async fn idempotent_target(&self, user: UserId, key: &str, now: Timestamp) -> StoreResult<Option<IdempotentHit>> {
        let s = ticket_work::find_idempotency(user, key, now);
        self.read_by_key(move |c| {
            one(c, &s, |r| Ok(IdempotentHit { request_hash: r.text("request_hash")?, target_id: r.uuid("target_id")? }))
        })
        .await
    }

    async fn add_attachment(&self, attachment: &Attachment, data: Vec<u8>, quota: UploadQuota) -> StoreResult<()> {
        let a = attachment.clone();
        self.write(move |c| {
            if let Some(user) = a.uploaded_by {
                let used = one(c, &ticket_work::uploaded_since(user, quota.since), |r| r.int("total"))?.unwrap_or(0);
                if used + a.size > quota.max_bytes {
                    return Err(StoreError::QuotaExceeded);
                }
            }
            write_blob(c, &a.sha256, &data.into(), a.created_at)?;
            exec(c, &ticket_work::insert_attachment(&a)).map(drop)
        })
        .await
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        let s = Stmt::new(
            format!("SELECT {} FROM attachments WHERE id = $1", ticket_work::ATTACHMENT_COLUMNS),
            by_id(id.0),
        );
        self.read_by_key(move |c| one(c, &s, |r| row::attachment(r))).await
    }

    async fn attachments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Attachment>> {
        let s = ticket_work::list_attachments(ticket, include_internal);
        self.read_by_key(move |c| rows(c, &s, |r| row::attachment(r))).await
    }

    async fn blob(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let s = Stmt::new("SELECT data FROM blobs WHERE sha256 = $1", vec![Param::Text(sha256.into())]);
        self.read(move |c| one(c, &s, |r| r.bytes("data"))).await
    }

    async fn create_saved_filter(&self, filter: &SavedFilter) -> StoreResult<()> {
        let s = ticket_work::insert_saved_filter(filter);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn saved_filters(&self, user: UserId) -> StoreResult<Vec<SavedFilter>> {
        let s = ticket_work::list_saved_filters(user);
        self.read_by_key(move |c| rows(c, &s, |r| row::saved_filter(r))).await
    }

    async fn delete_saved_filter(&self, user: UserId, id: Uuid) -> StoreResult<bool> {
        let s = ticket_work::delete_saved_filter(user, id);
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn create_custom_field(&self, def: &CustomFieldDef) -> StoreResult<()> {
        let s = ticket_work::insert_custom_field(def, Timestamp::now());
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn custom_fields(&self) -> StoreResult<Vec<CustomFieldDef>> {
        self.read_by_key(custom_fields_in).await
    }

    async fn create_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()> {
        let s = crate::mail::insert_mailbox(mailbox);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn update_mailbox(&self, mailbox: &Mailbox) -> StoreResult<()> {
        let s = crate::mail::update_mailbox(mailbox);
        self.write(move |c| if exec(c, &s)? == 0 { Err(StoreError::NotFound) } else { Ok(()) }).await
    }

    async fn set_imap_state(&self, mailbox: Uuid, state: &ferrodesk_core::mail::ImapState) -> StoreResult<()> {
        let s = crate::mail::set_imap_state(mailbox, state);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn mailboxes(&self) -> StoreResult<Vec<Mailbox>> {
        self.read(|c| rows(c, &crate::mail::list_mailboxes(), |r| row::mailbox(r))).await
    }

    async fn receive_inbound(&self, message: NewInbound) -> StoreResult<Received> {
        self.write(move |c| receive_in(c, &message)).await
    }

    async fn receive_inbound_batch(&self, messages: Vec<NewInbound>) -> StoreResult<Vec<Received>> {
        self.write(move |c| messages.iter().map(|m| receive_in(c, m)).collect()).await
    }

    async fn inbound(&self, id: Uuid) -> StoreResult<Option<InboundMessage>> {
        self.read(move |c| one(c, &crate::mail::inbound(id), |r| row::inbound(r))).await
    }

    async fn inbound_raw(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
        self.read(move |c| one(c, &crate::mail::inbound_raw(id), |r| r.bytes("raw"))).await
    }

    async fn ticket_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>> {
        let s = crate::mail::ticket_inbound(ticket);
        self.read(move |c| rows(c, &s, |r| row::inbound(r))).await
    }

    async fn list_inbound(
        &self,
        status: Option<InboundStatus>,
        before: Option<(Timestamp, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<InboundMessage>> {
        let s = crate::mail::list_inbound(status, before, limit);
        self.read(move |c| rows(c, &s, |r| row::inbound(r))).await
    }

    async fn pending_inbound(&self, limit: u32, received_before: Timestamp) -> StoreResult<Vec<InboundMessage>> {
        self.read(move |c| rows(c, &crate::mail::pending_inbound(limit, received_before), |r| row::inbound(r))).await
    }

    async fn settle_inbound(&self, outcome: InboundOutcome) -> StoreResult<Settled> {
        self.write(move |c| settle_in(c, outcome)).await
    }

    async fn set_inbound_status(
        &self,
        id: Uuid,
        status: InboundStatus,
        error: Option<String>,
        from: &[InboundStatus],
    ) -> StoreResult<bool> {
        let s = crate::mail::set_inbound_status(id, status, error, from, status == InboundStatus::Quarantined);
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn discard_held(&self, id: Uuid, by: UserId, at: Timestamp) -> StoreResult<bool> {
        let s = crate::mail::discard_held(id, by, at);
        self.write(move |c| exec(c, &s).map(|n| n > 0)).await
    }

    async fn held_inbound(&self, ticket: TicketId) -> StoreResult<Vec<InboundMessage>> {
        let s = crate::mail::held_on_ticket(ticket);
        self.read(move |c| rows(c, &s, |r| row::inbound(r))).await
    }

    async fn job(&self, id: Uuid) -> StoreResult<Option<crate::records::Job>> {
        let s = crate::mail::job(id);
        self.read_by_key(move |c| one(c, &s, |r| row::job(r))).await
    }

    async fn thread_ticket(&self, message_ids: &[String]) -> StoreResult<Option<TicketId>> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let ids = message_ids.to_vec();
        self.read(move |c| {
            let found =
                rows(c, &crate::mail::thread_lookup(&ids), |r| Ok((r.text("message_id")?, r.uuid("ticket_id")?)))?;
            Ok(crate::nearest_thread(&ids, found))
        })
        .await
    }

    async fn instance_secret(&self, name: &str, fresh: Vec<u8>) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        self.write(move |c| {
            exec(c, &crate::mail::insert_secret(&name, fresh, Timestamp::now()))?;
            one(c, &crate::mail::secret(&name), |r| r.bytes("value"))?
                .ok_or_else(|| StoreError::Database("the instance secret vanished".into()))
        })
        .await
    }

    async fn bounce_count(&self, address: &str) -> StoreResult<i64> {
        let s = crate::mail::bounces(address);
        self.read(move |c| Ok(one(c, &s, |r| r.int("bounces"))?.unwrap_or(0))).await
    }

    async fn thread_ids(&self, ticket: TicketId) -> StoreResult<Vec<String>> {
        self.read(move |c| rows(c, &crate::mail::thread_ids(ticket), |r| r.text("message_id"))).await
    }

    async fn remember_thread_id(&self, message_id: &str, ticket: TicketId, at: Timestamp) -> StoreResult<()> {
        let s = crate::mail::remember_thread_id(message_id, ticket, at);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn ticket_mailbox(&self, ticket: TicketId) -> StoreResult<Option<Mailbox>> {
        self.read(move |c| one(c, &crate::mail::ticket_mailbox(ticket), |r| row::mailbox(r))).await
    }

    async fn enqueue_jobs(&self, jobs: Vec<NewJob>, now: Timestamp) -> StoreResult<()> {
        self.write(move |c| {
            for j in &jobs {
                exec(c, &crate::mail::insert_job(j, now))?;
            }
            Ok(())
        })
        .await
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: u32,
    ) -> StoreResult<Vec<crate::records::Job>> {
        let until = now.checked_add(lease).unwrap_or(now);
        // The one writer serialises claims: no two workers can take the same job.
        let s = crate::mail::claim_jobs(now, until, limit, "");
        self.write(move |c| rows(c, &s, |r| row::job(r))).await
    }

    async fn finish_job(&self, id: Uuid, outcome: JobOutcome, now: Timestamp) -> StoreResult<()> {
        let s = crate::mail::finish_job(id, &outcome, now);
        self.write(move |c| exec(c, &s).map(drop)).await
    }

    async fn jobs_on_topic_since(&self, topic: &str, since: Timestamp) -> StoreResult<i64> {
        let s = crate::mail::jobs_on_topic_since(topic, since);
        self.read(move |c| Ok(one(c, &s, |r| r.int("n"))?.unwrap_or(0))).await
    }

    async fn ticket_jobs(&self, ticket: TicketId) -> StoreResult<Vec<crate::records::Job>> {
        self.read(move |c| rows(c, &crate::mail::jobs_of_ticket(ticket), |r| row::job(r))).await
    }

    async fn ticket_counts(&self) -> StoreResult<Vec<(ferrodesk_core::ticket::Status, i64)>> {
        self.read(|c| rows(c, &Stmt::new(query::TICKET_COUNTS_FROM_COUNTERS, vec![]), |r| row::status_count(r))).await
    }

    async fn list_tickets(&self, q: &TicketQuery, scope: &TicketScope) -> StoreResult<Vec<Ticket>> {
        let s = query::list_tickets(Dialect::Sqlite, q, scope);
        self.read(move |c| rows(c, &s, |r| row::ticket(r))).await
    }

    async fn comments(&self, ticket: TicketId, include_internal: bool) -> StoreResult<Vec<Comment>> {
        let s = query::list_comments(ticket, include_internal);
        self.read_by_key(move |c| rows(c, &s, |r| row::comment(r))).await
    }

    async fn history(&self, ticket: TicketId) -> StoreResult<Vec<HistoryEntry>> {
        let s = Stmt::new(
            "SELECT id, ticket_id, actor_id, at, field, old_value, new_value FROM ticket_history WHERE ticket_id = $1 ORDER BY id",
            by_id(ticket.0),
        );
        self.read_by_key(move |c| rows(c, &s, |r| row::history_entry(r))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_columns_are_found_by_name_in_any_order_and_a_missing_one_is_an_error() {
        let c = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let s = Stmt::new("SELECT 1 AS a, 'two' AS b, 3 AS c UNION ALL SELECT 4, 'five', 6", vec![]);
        // In order, backwards, one name asked twice, and in another case.
        let got = rows(&c, &s, |r| Ok((r.int("a")?, r.int("c")?, r.text("b")?, r.int("A")?, r.int("C")?)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, vec![(1, 3, "two".to_owned(), 1, 3), (4, 6, "five".to_owned(), 4, 6)]);
        let missing = rows(&c, &s, |r| r.int("d"));
        assert!(matches!(&missing, Err(StoreError::Database(m)) if m.contains("no column d")), "{missing:?}");
    }

    /// Ticket numbers whose search rows hold `word`, read on a reader connection.
    async fn found(store: &SqliteStore, word: &'static str) -> Vec<i64> {
        let s =
            Stmt::new("SELECT rowid FROM ticket_search WHERE ticket_search MATCH $1", vec![Param::Text(word.into())]);
        store.read(move |c| rows(c, &s, |r| r.int("rowid"))).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A write that queues a search row for `number`, then succeeds or fails as told.
    fn searchable<'a>(
        store: &'a SqliteStore,
        number: i64,
        word: &'static str,
        fail: bool,
    ) -> impl std::future::Future<Output = StoreResult<()>> + 'a {
        store.write(move |c| {
            let doc = (word.to_owned(), String::new(), String::new(), String::new());
            queue_search(c, TicketNumber(number), doc)?;
            if fail { Err(StoreError::Conflict { current: 7 }) } else { Ok(()) }
        })
    }

    /// A migrated store in a fresh file; `removed` deletes the file again.
    async fn temporary_store() -> (SqliteStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("ferrodesk-writer-{}.db", Uuid::now_v7()));
        let store = SqliteStore::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        (store, path)
    }

    fn removed(store: SqliteStore, path: &Path) {
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_writes_the_search_rows_of_its_committed_jobs_only() {
        let (store, path) = temporary_store().await;

        // Alone in its batch (no savepoint): the failure reports itself, not a commit error.
        assert!(matches!(searchable(&store, 1, "alpha", true).await, Err(StoreError::Conflict { current: 7 })));
        assert!(searchable(&store, 2, "bravo", false).await.is_ok());
        assert_eq!(found(&store, "alpha").await, Vec::<i64>::new());
        assert_eq!(found(&store, "bravo").await, vec![2]);

        // Three jobs queued while the writer is busy share the next batch: the failed one's
        // row goes with its savepoint, the others' are written at the batch's end.
        let busy = store.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(())
        });
        let together = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            tokio::join!(
                searchable(&store, 3, "charlie", false),
                searchable(&store, 4, "delta", true),
                searchable(&store, 5, "echo", false)
            )
        };
        let (waited, (c, d, e)) = tokio::join!(busy, together);
        assert!(waited.is_ok() && c.is_ok() && e.is_ok());
        assert!(matches!(d, Err(StoreError::Conflict { current: 7 })));
        assert_eq!(found(&store, "charlie").await, vec![3]);
        assert_eq!(found(&store, "delta").await, Vec::<i64>::new());
        assert_eq!(found(&store, "echo").await, vec![5]);

        // A ticket's new row replaces its old one: its old words no longer find it.
        assert!(searchable(&store, 2, "foxtrot", false).await.is_ok());
        assert_eq!(found(&store, "bravo").await, Vec::<i64>::new());
        assert_eq!(found(&store, "foxtrot").await, vec![2]);
        removed(store, &path);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_writes_size_the_writers_page_cache_up_and_back_down() {
        let (store, path) = temporary_store().await;
        let cache = || store.write(|c| c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i32>(0)).map_err(db));
        assert_eq!(cache().await.ok(), Some(CACHE));
        store.bulk_writes(true).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache().await.ok(), Some(BULK_CACHE));
        store.bulk_writes(false).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache().await.ok(), Some(CACHE));
        removed(store, &path);
    }

    /// The search index's merge settings (automerge, crisismerge) as FTS5 keeps them; a
    /// setting never written has FTS5's default (crisismerge 16).
    async fn search_merges(store: &SqliteStore) -> (i64, i64) {
        let read = |k: &'static str| {
            store.write(move |c| {
                c.query_row("SELECT v FROM ticket_search_config WHERE k = ?1", [k], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(db)
            })
        };
        let (a, c) = tokio::join!(read("automerge"), read("crisismerge"));
        (a.ok().flatten().unwrap_or(-1), c.ok().flatten().unwrap_or(16))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_writes_switch_the_search_merges_and_a_migrate_undoes_a_dead_imports() {
        let (store, path) = temporary_store().await;
        assert_eq!(search_merges(&store).await, (8, 16));
        store.bulk_writes(true).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(search_merges(&store).await, (0, 8));
        store.bulk_writes(false).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(search_merges(&store).await, (8, 16));

        // The import dies with its settings in place: the next start's migrate restores them.
        store.bulk_writes(true).await.unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(search_merges(&store).await, (0, 8));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(search_merges(&store).await, (8, 16));
        removed(store, &path);
    }
}
