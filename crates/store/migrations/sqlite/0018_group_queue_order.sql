-- An agent's queue is read per status and source of visibility (query::queue_by_source): their
-- groups' tickets in priority order from this index alone, stopping after a page. The old
-- (group_id, status, assignee_id) served view counts, which SQLite takes from ticket_counts
-- (0009); "unassigned" is still answered inside the index, from its last column. Same number
-- of indexes, so a ticket write costs what it did.
DROP INDEX tickets_group_queue;
CREATE INDEX tickets_group_queue ON tickets(group_id, status, priority, number, assignee_id);
