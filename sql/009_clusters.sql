-- Clusters of one CLIP model's space (images and video key frames), their labels and their
-- hierarchies. Ids are kept across full runs when membership mostly holds (Jaccard), so
-- labels are not recomputed for nothing (lib/clusters/method.py match_ids).
CREATE TABLE clusters (
    id              serial PRIMARY KEY,
    model_id        text NOT NULL,
    size            integer NOT NULL,            -- distinct files (a video counts once)
    centroid        vector(512) NOT NULL,
    radius          double precision NOT NULL,   -- a new vector at least this similar joins
    representatives text[] NOT NULL,             -- up to 5 keys, most central first
    rep_frames      integer[] NOT NULL,          -- their frame (-1: the whole image)
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cluster_members (
    cluster_id  integer NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    key         text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    frame_ms    integer NOT NULL,                -- the frame nearest the centroid (-1: image)
    similarity  double precision NOT NULL,       -- cosine similarity to the centroid
    assigned    text NOT NULL DEFAULT 'full' CHECK (assigned IN ('full', 'incremental')),
    PRIMARY KEY (cluster_id, key)
);
CREATE INDEX cluster_members_key ON cluster_members (key);

-- One row per full run: what the sensor compares with to decide on the next one.
CREATE TABLE cluster_runs (
    id          serial PRIMARY KEY,
    model_id    text NOT NULL,
    vectors     integer NOT NULL,
    files       integer NOT NULL,
    clusters    integer NOT NULL,
    unsorted    integer NOT NULL,
    kept_ids    integer NOT NULL,
    method      text NOT NULL,
    seconds     double precision NOT NULL,
    params      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cluster_labels (
    cluster_id       integer PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    cluster_name     text NOT NULL,
    description      text NOT NULL,
    tags             text[] NOT NULL,
    primary_category text NOT NULL,
    confidence       double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    clip_terms       text[] NOT NULL,            -- zero-shot terms nearest the centroid
    captions         text[] NOT NULL,            -- the representatives' captions
    degraded         boolean NOT NULL DEFAULT false,
    degraded_reason  text,
    model_id         text,                       -- the captioner (null: CLIP only)
    labelled_from    text[] NOT NULL,            -- the representatives labelled
    labelled_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cluster_hierarchies (
    cluster_id         integer PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    hierarchy          text[] NOT NULL,
    folder_path        text NOT NULL,
    extended_tags      text[] NOT NULL,
    relationships      jsonb NOT NULL,
    search_description text NOT NULL,
    source             text NOT NULL CHECK (source IN ('llm', 'heuristic')),
    source_reason      text,
    model_id           text,
    label_digest       text NOT NULL,            -- the label it was made from
    search_tsv         tsvector NOT NULL,        -- hierarchy, tags, description: search leg
    enriched_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cluster_hierarchies_tsv ON cluster_hierarchies USING gin (search_tsv);
