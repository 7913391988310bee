-- PostgreSQL gains the view counters SQLite has kept since 0009 (see the PostgreSQL migration).
SELECT 1;
