-- Agents' view counts filter by group, status and "unassigned": one index that covers all three
-- answers them without reading ticket rows.
DROP INDEX tickets_group_status;
CREATE INDEX tickets_group_queue ON tickets(group_id, status, assignee_id);
