-- Full-text legs of search beside the visual one: Q&A answers, video frame captions and
-- file/folder names (tokenised at every non-alphanumeric character), each with its index.
ALTER TABLE image_analysis ADD COLUMN answers_tsv tsvector
    GENERATED ALWAYS AS (jsonb_to_tsvector('english'::regconfig, answers, '["string"]')) STORED;
CREATE INDEX image_analysis_answers_tsv ON image_analysis USING gin (answers_tsv);

ALTER TABLE video_frames ADD COLUMN caption_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, coalesce(caption, ''))) STORED;
CREATE INDEX video_frames_caption_tsv ON video_frames USING gin (caption_tsv);

ALTER TABLE media_files ADD COLUMN name_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
        regexp_replace(primary_path, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX media_files_name_tsv ON media_files USING gin (name_tsv);

-- Nearest images and video frames in one model's space, with the search filters applied
-- inside the index scan (callers set hnsw.iterative_scan so k rows still come back).
CREATE FUNCTION search_media(query vector(512), model text, k integer DEFAULT 10,
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
    ORDER BY e.embedding <=> query
    LIMIT k
$$;
