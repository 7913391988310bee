-- SQLite rebuilds its FTS5 index leaner in this version (see the SQLite migration); PostgreSQL's
-- single weighted search vector (0015) is unchanged.
SELECT 1;
