-- The assignee and group-member pickers list staff only; with many thousands of requesters a
-- partial index keeps that a short read in e-mail order. The condition is written exactly as
-- the query writes it (query::list_users), which is what lets the planner use the index.
CREATE INDEX users_staff ON users(email) WHERE role <> 'requester';

-- "Recently resolved" lists one status by last change: read in that order from the index
-- instead of sorting every resolved ticket (160 ms at 1M tickets before, 3 ms after). Lists of
-- several statuses are merged from one ordered read per status (query::list_tickets), so this
-- index never competes with tickets_status_priority_number for the priority-sorted queues.
CREATE INDEX tickets_status_updated ON tickets(status, updated_at, number);

-- Agents' view counts include "tickets of other groups assigned to me": with the group in the
-- assignee index that part is answered from the index alone (it read every one of an agent's
-- resolved tickets, thousands over the years, to look at their group).
DROP INDEX tickets_assignee_queue;
CREATE INDEX tickets_assignee_queue ON tickets(assignee_id, status, priority, number, group_id);
