-- PostgreSQL gets a table for indexes set aside during a first import in this version (see the
-- PostgreSQL migration). SQLite's import keeps its indexes: it meets its target with them.
SELECT 1;
