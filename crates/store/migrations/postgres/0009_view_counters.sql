-- SQLite keeps view counters by trigger in this version (see the SQLite migration). PostgreSQL
-- counts views from its indexes: a single counter row per (group, status) would be a hot row
-- that serialises concurrent writers across app nodes; appended deltas are the plan there.
SELECT 1;
