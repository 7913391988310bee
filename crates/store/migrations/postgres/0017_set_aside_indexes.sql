-- A first import into an empty database sets aside the secondary indexes of the ticket tables
-- and builds them once at the end (`Store::set_aside_ticket_indexes`): building an index from
-- sorted data is several times cheaper than maintaining it row by row. Their definitions wait
-- here until rebuilt, so an import that dies half-way loses no index: the next start of any
-- `ferrodesk` command (migrate) builds what is listed.
CREATE TABLE set_aside_indexes (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
