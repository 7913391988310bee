-- An agent's queue is read per status and source of visibility (query::queue_by_source): their
-- groups' tickets in priority order from this index, stopping after a page. PostgreSQL keeps
-- tickets_group_queue (group_id, status, assignee_id) beside it: its view counts still come
-- from indexes, and "unassigned in my groups" is a seek there instead of a walk here.
CREATE INDEX tickets_group_priority ON tickets(group_id, status, priority, number);
