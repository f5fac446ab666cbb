-- The library's timeline (lib/search/browse.py): newest first by the date a file was taken,
-- else its modification time, paged by keyset. Without an index on the same expression
-- every page sorts the whole catalogue.
CREATE INDEX media_files_timeline
    ON media_files ((coalesce(taken_at, file_modified_at, first_seen_at)) DESC, key DESC);
CREATE INDEX media_files_kind_timeline
    ON media_files (kind, (coalesce(taken_at, file_modified_at, first_seen_at)) DESC, key DESC);
