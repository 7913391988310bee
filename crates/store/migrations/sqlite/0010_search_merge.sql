-- FTS5 merges its index segments as tickets are written. With the default (merge 4 segments of
-- a level at a time) merging took ~40% of the writer's time at 1M tickets; merging 8 at a time
-- does fewer passes over the same data, at the cost of a few more segments for a search to read.
INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 8);
