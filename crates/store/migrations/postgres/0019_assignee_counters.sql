-- SQLite's view counters gain the assignee in this version (see the SQLite migration).
-- PostgreSQL counts views from its indexes (see 0009).
SELECT 1;
