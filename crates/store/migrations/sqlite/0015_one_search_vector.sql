-- PostgreSQL merges its two search vectors into one weighted vector in this version (see the
-- PostgreSQL migration). SQLite's FTS5 table already keeps public and internal text in separate
-- columns of one index.
SELECT 1;
