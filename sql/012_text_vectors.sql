-- Search by meaning: every text people look for, as units with their place in the file and
-- a sentence vector from the text model (multilingual-e5-small by default). Each row names
-- the model that embedded it and the digest of the text, so a model change or a changed text
-- re-embeds only that row. The column takes any dimension (another model may give 768-d);
-- the HNSW index is per dimension, on a cast, for the rows of that dimension.
CREATE TABLE text_units (
    key        text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    idx        integer NOT NULL,
    source     text NOT NULL,      -- speech, caption, answer, text, json_table, json_records
    at_ms      integer NOT NULL DEFAULT -1,  -- the moment (speech, video frame); -1: the file
    char_start integer,            -- text: character offsets; json_records: record numbers
    char_end   integer,
    text       text NOT NULL,
    digest     text NOT NULL,      -- of the text as embedded
    model_id   text,               -- model id @ weights fingerprint; NULL: not embedded
    embedding  vector,
    tsv        tsvector GENERATED ALWAYS AS
               (to_tsvector('simple'::regconfig, text) || to_tsvector('english'::regconfig, text))
               STORED,
    PRIMARY KEY (key, idx)
);
-- 384 floats are 1.5 kB: kept inline, never TOASTed (an exact scan reads no side table).
ALTER TABLE text_units ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX text_units_e384 ON text_units
    USING hnsw ((embedding::vector(384)) vector_cosine_ops)
    WHERE vector_dims(embedding) = 384;
CREATE INDEX text_units_model ON text_units (model_id, source);
-- Full text over what no other leg reads: text files and JSON content.
CREATE INDEX text_units_tsv ON text_units USING gin (tsv)
    WHERE source IN ('text', 'json_table', 'json_records');

-- Cluster names, descriptions and search descriptions, embedded the same way.
CREATE TABLE cluster_text_vectors (
    cluster_id integer PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    text       text NOT NULL,
    digest     text NOT NULL,
    model_id   text NOT NULL,
    embedding  vector NOT NULL
);

-- How the language was decided: the allowed languages and the most probable ones.
ALTER TABLE transcripts ADD COLUMN language_candidates jsonb;
