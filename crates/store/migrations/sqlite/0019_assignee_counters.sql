-- The view counters (0009) gain the assignee. An agent's counts then come from counters alone
-- for their groups and for the tickets of other groups assigned to them ("mine", and the part of
-- every view that their groups do not hold): before, each count walked the agent's assigned
-- tickets, which grow with every ticket they ever resolved (a third of a queue page's time at
-- 1M tickets). assignee_key is the assignee's id, '' for none; ticket_counts_assignee finds one
-- agent's rows. The counters are derived from the tickets, so they are rebuilt here.
DROP TRIGGER ticket_counts_insert;
DROP TRIGGER ticket_counts_update;
DROP TRIGGER ticket_counts_delete;
DROP TABLE ticket_counts;

CREATE TABLE ticket_counts (
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee_key TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (group_key, status, assignee_key)
) WITHOUT ROWID;
CREATE INDEX ticket_counts_assignee ON ticket_counts (assignee_key, status, group_key);

INSERT INTO ticket_counts (group_key, status, assignee_key, n)
SELECT coalesce(group_id, ''), status, coalesce(assignee_id, ''), count(*) FROM tickets GROUP BY 1, 2, 3;

CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_counts (group_key, status, assignee_key, n)
    VALUES (coalesce(NEW.group_id, ''), NEW.status, coalesce(NEW.assignee_id, ''), 1)
    ON CONFLICT (group_key, status, assignee_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER ticket_counts_update AFTER UPDATE OF group_id, status, assignee_id ON tickets
WHEN OLD.group_id IS NOT NEW.group_id OR OLD.status <> NEW.status OR OLD.assignee_id IS NOT NEW.assignee_id
BEGIN
    UPDATE ticket_counts SET n = n - 1
    WHERE group_key = coalesce(OLD.group_id, '') AND status = OLD.status
      AND assignee_key = coalesce(OLD.assignee_id, '');
    INSERT INTO ticket_counts (group_key, status, assignee_key, n)
    VALUES (coalesce(NEW.group_id, ''), NEW.status, coalesce(NEW.assignee_id, ''), 1)
    ON CONFLICT (group_key, status, assignee_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets BEGIN
    UPDATE ticket_counts SET n = n - 1
    WHERE group_key = coalesce(OLD.group_id, '') AND status = OLD.status
      AND assignee_key = coalesce(OLD.assignee_id, '');
END;
