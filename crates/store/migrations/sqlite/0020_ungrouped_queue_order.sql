-- PostgreSQL gains an index of the tickets no group holds, in queue order. SQLite already reads
-- them in that order from tickets_group_queue: it treats `group_id IS NULL` as an equality.
SELECT 1;
