-- View counters for PostgreSQL, as SQLite has had since 0009/0019: an agent's five view counts
-- were index scans over every open ticket of their groups (11,701 entries for one count at 1M
-- tickets, most of the queue page's time, and slower still while writes keep pages from being
-- all-visible). A single row per (group, status, assignee) would be a hot row: every new ticket
-- would wait for the previous one's commit to update it. So changes are appended as deltas (no
-- row is ever updated by a writer), a count is the sum of its key's rows, and the server folds
-- each key's deltas into one row every second (`Store::compact_view_counters`).
-- group_key and assignee_key are the ids as text, '' for none (as in SQLite).
CREATE TABLE ticket_counts (
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee_key TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX ticket_counts_key ON ticket_counts (group_key, status, assignee_key) INCLUDE (n);
CREATE INDEX ticket_counts_assignee ON ticket_counts (assignee_key, status, group_key) INCLUDE (n);

INSERT INTO ticket_counts (group_key, status, assignee_key, n)
SELECT coalesce(group_id::text, ''), status, coalesce(assignee_id::text, ''), count(*)
FROM tickets GROUP BY 1, 2, 3;

-- Inserts and deletes: once per statement, so an import's multi-row insert adds a row per key
-- it touched, not per ticket. Both name their rows `changed`.
CREATE FUNCTION ticket_counts_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counts (group_key, status, assignee_key, n)
    SELECT coalesce(group_id::text, ''), status, coalesce(assignee_id::text, ''),
           CASE TG_OP WHEN 'DELETE' THEN -count(*) ELSE count(*) END
    FROM changed GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ticket_counts_added_or_removed();
CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ticket_counts_added_or_removed();

-- Updates: per row, and only when the row changes key (a comment's update does not).
CREATE FUNCTION ticket_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counts (group_key, status, assignee_key, n) VALUES
        (coalesce(OLD.group_id::text, ''), OLD.status, coalesce(OLD.assignee_id::text, ''), -1),
        (coalesce(NEW.group_id::text, ''), NEW.status, coalesce(NEW.assignee_id::text, ''), 1);
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_counts_update AFTER UPDATE OF group_id, status, assignee_id ON tickets
FOR EACH ROW
WHEN (OLD.group_id IS DISTINCT FROM NEW.group_id OR OLD.status <> NEW.status
      OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
EXECUTE FUNCTION ticket_counts_moved();
