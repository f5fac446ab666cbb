-- A path whose file is gone from disk when its folder is scanned again is kept as
-- `missing`, not deleted: when the file comes back (moved back, a disk mounted again) with
-- the size and modification time it had, it is registered again as it was, and nothing is
-- processed twice. Content that no registered path holds is left out of search.
ALTER TABLE media_paths DROP CONSTRAINT media_paths_status_check;
ALTER TABLE media_paths ADD CONSTRAINT media_paths_status_check
    CHECK (status IN ('registered', 'refused', 'failed', 'missing'));

-- "Is this content on disk anywhere?": one index probe per search candidate.
CREATE INDEX media_paths_registered_key ON media_paths (key) WHERE status = 'registered';

-- The visual leg's filtered nearest-neighbour scan, as in 008, leaving out content whose
-- every path is gone.
CREATE OR REPLACE FUNCTION search_media(query vector(512), model text, k integer DEFAULT 10,
                                        kind text DEFAULT NULL, after timestamptz DEFAULT NULL,
                                        before timestamptz DEFAULT NULL, under text DEFAULT NULL,
                                        min_duration double precision DEFAULT NULL,
                                        max_duration double precision DEFAULT NULL,
                                        lang text DEFAULT NULL)
RETURNS TABLE (key text, frame_ms integer, path text, distance double precision)
LANGUAGE sql STABLE AS $$
    SELECT e.key, e.frame_ms, f.primary_path, e.embedding <=> query
    FROM image_embeddings e JOIN media_files f ON f.key = e.key
    WHERE e.model_id = model
      AND (search_media.kind IS NULL OR f.kind = search_media.kind)
      AND (after IS NULL OR coalesce(f.taken_at, f.file_modified_at) >= after)
      AND (before IS NULL OR coalesce(f.taken_at, f.file_modified_at) < before)
      AND (under IS NULL OR starts_with(f.primary_path, under))
      AND (min_duration IS NULL OR (f.details ->> 'duration_s')::float8 >= min_duration)
      AND (max_duration IS NULL OR (f.details ->> 'duration_s')::float8 <= max_duration)
      AND (lang IS NULL OR EXISTS (SELECT 1 FROM transcripts t
                                   WHERE t.key = f.key AND t.language = lang))
      AND EXISTS (SELECT 1 FROM media_paths p WHERE p.key = f.key AND p.status = 'registered')
    ORDER BY e.embedding <=> query
    LIMIT k
$$;
