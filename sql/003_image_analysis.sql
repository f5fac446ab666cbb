-- What each image shows: a caption (BLIP-2, or built from CLIP labels in degraded mode),
-- answers to configured questions, zero-shot objects and scene, dominant colours.
CREATE TABLE image_analysis (
    key              text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    caption          text NOT NULL,
    answers          jsonb NOT NULL DEFAULT '{}'::jsonb,
    objects          jsonb NOT NULL DEFAULT '[]'::jsonb,
    scene_type       text,
    scene_confidence double precision,
    dominant_colors  jsonb NOT NULL DEFAULT '[]'::jsonb,
    captioner_model  text,          -- NULL in degraded (CLIP-only) mode
    clip_model       text NOT NULL,
    degraded         boolean NOT NULL DEFAULT false,
    degraded_reason  text,
    processing_time_ms double precision NOT NULL,
    analysed_at      timestamptz NOT NULL DEFAULT now(),
    caption_tsv      tsvector GENERATED ALWAYS AS (to_tsvector('english', caption)) STORED
);
CREATE INDEX image_analysis_caption_tsv ON image_analysis USING gin (caption_tsv);

-- Pairs of images whose CLIP vectors lie within a cosine distance (default 0.01, as Immich).
CREATE TABLE near_duplicates (
    key_a      text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    key_b      text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    model_id   text NOT NULL,
    distance   double precision NOT NULL,
    found_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_a, key_b, model_id),
    CHECK (key_a < key_b)
);
