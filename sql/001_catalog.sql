-- The file catalog: one row per distinct content (a partition of `media_files`), and one
-- row per path seen, so duplicates become aliases and refused paths keep their reason.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE media_files (
    key              text PRIMARY KEY CHECK (key ~ '^[0-9a-f]{16}$'),
    sha256           text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    primary_path     text NOT NULL,
    kind             text NOT NULL DEFAULT 'unknown'
                     CHECK (kind IN ('image', 'video', 'audio', 'json', 'text', 'other', 'unknown')),
    mime_type        text,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'ok', 'failed', 'refused', 'unsupported')),
    error            text,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_modified_at timestamptz,
    file_changed_at  timestamptz,
    taken_at         timestamptz,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    processing_ms    double precision
);
CREATE INDEX media_files_kind_status ON media_files (kind, status);

CREATE TABLE media_paths (
    path          text PRIMARY KEY,
    key           text REFERENCES media_files (key) ON DELETE SET NULL,
    size_bytes    bigint,
    mtime_ns      bigint,
    status        text NOT NULL CHECK (status IN ('registered', 'refused', 'failed')),
    error         text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_paths_key ON media_paths (key);

-- Every path with its content's state: what `media-assets status` and other tools read.
CREATE VIEW catalog_entries AS
SELECT p.path,
       p.key,
       (f.primary_path IS NOT NULL AND f.primary_path <> p.path) AS is_alias,
       coalesce(f.kind, 'unknown') AS kind,
       CASE WHEN p.status = 'registered' THEN f.status ELSE p.status END AS status,
       coalesce(p.error, f.error) AS error,
       f.mime_type,
       coalesce(f.size_bytes, p.size_bytes) AS size_bytes
FROM media_paths p
LEFT JOIN media_files f ON f.key = p.key;
