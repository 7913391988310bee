-- Every queue page shows five view counts. At 1M tickets, counting them from indexes read about
-- 50,000 index entries per page (half the page's time). These counters are kept by triggers in
-- the same transaction as every ticket change, so a view count is a sum over a few rows
-- (query::count_from_counters). group_key is the group's id, '' for tickets without a group.
CREATE TABLE ticket_counts (
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    unassigned INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (group_key, status, unassigned)
) WITHOUT ROWID;

INSERT INTO ticket_counts (group_key, status, unassigned, n)
SELECT coalesce(group_id, ''), status, assignee_id IS NULL, count(*) FROM tickets GROUP BY 1, 2, 3;

CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_counts (group_key, status, unassigned, n)
    VALUES (coalesce(NEW.group_id, ''), NEW.status, NEW.assignee_id IS NULL, 1)
    ON CONFLICT (group_key, status, unassigned) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER ticket_counts_update AFTER UPDATE OF group_id, status, assignee_id ON tickets
WHEN coalesce(OLD.group_id, '') <> coalesce(NEW.group_id, '')
  OR OLD.status <> NEW.status
  OR (OLD.assignee_id IS NULL) <> (NEW.assignee_id IS NULL)
BEGIN
    UPDATE ticket_counts SET n = n - 1
    WHERE group_key = coalesce(OLD.group_id, '') AND status = OLD.status AND unassigned = (OLD.assignee_id IS NULL);
    INSERT INTO ticket_counts (group_key, status, unassigned, n)
    VALUES (coalesce(NEW.group_id, ''), NEW.status, NEW.assignee_id IS NULL, 1)
    ON CONFLICT (group_key, status, unassigned) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets BEGIN
    UPDATE ticket_counts SET n = n - 1
    WHERE group_key = coalesce(OLD.group_id, '') AND status = OLD.status AND unassigned = (OLD.assignee_id IS NULL);
END;
