-- PostgreSQL orders a requester's tickets by status and age in one index (see the PostgreSQL
-- migration). SQLite reads the requester's few tickets from tickets_requester and sorts them.
SELECT 1;
