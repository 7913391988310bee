-- The search index keeps only what searches use. Searches AND whole words, optionally limited to
-- the public columns; they never ask for phrases, nearness or the indexed text back. So:
--   content=''           no second copy of every ticket's text inside the index (the tickets and
--                        comments tables hold it);
--   contentless_delete=1 a changed ticket's old entry is removed by rowid, without re-reading
--                        and re-tokenising its old text;
--   detail=column        which columns a word is in, not its positions: about half the index
--                        data for FTS5 to write and merge on every commit, the writer's largest
--                        cost at 1M tickets (docs/PERFORMANCE.md).
-- The entries are copied from the old table (same tokenizer, same rowids = ticket numbers).
CREATE VIRTUAL TABLE ticket_search_lean USING fts5(
    subject, description, public_text, internal_text,
    content = '', contentless_delete = 1, detail = column,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO ticket_search_lean (ticket_search_lean, rank) VALUES ('automerge', 8);
INSERT INTO ticket_search_lean (rowid, subject, description, public_text, internal_text)
    SELECT rowid, subject, description, public_text, internal_text FROM ticket_search;
INSERT INTO ticket_search_lean (ticket_search_lean) VALUES ('optimize');
DROP TABLE ticket_search;
ALTER TABLE ticket_search_lean RENAME TO ticket_search;
