-- Speech: one transcript per audio file or video soundtrack, and its timed segments with a
-- full-text index. Each segment's tsvector holds the stemmed words of its language (when
-- known) and the words as spoken ('simple'), so a search finds "running" from "run" in
-- English and any word exactly in any language, with one constant query and the GIN index.
CREATE TABLE transcripts (
    key                  text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    model_id             text NOT NULL,
    language             text,
    language_probability double precision,
    text                 text NOT NULL,
    duration_s           double precision,
    processing_time_ms   double precision NOT NULL,
    word_timestamps      boolean NOT NULL DEFAULT false,
    transcribed_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transcript_segments (
    key       text NOT NULL REFERENCES transcripts (key) ON DELETE CASCADE,
    idx       integer NOT NULL,
    start_s   double precision NOT NULL,
    end_s     double precision NOT NULL,
    text      text NOT NULL,
    words     jsonb,
    ts_config regconfig NOT NULL DEFAULT 'simple',
    tsv       tsvector GENERATED ALWAYS AS
              (to_tsvector(ts_config, text) || to_tsvector('simple'::regconfig, text)) STORED,
    PRIMARY KEY (key, idx),
    CHECK (end_s >= start_s)
);
CREATE INDEX transcript_segments_tsv ON transcript_segments USING gin (tsv);

-- Video: sampled frames with their timestamps and what they show (their CLIP vectors are in
-- image_embeddings with frame_ms >= 0), and a summary combining frames and speech.
CREATE TABLE video_frames (
    key         text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    frame_ms    integer NOT NULL CHECK (frame_ms >= 0),
    reason      text NOT NULL DEFAULT 'interval',   -- 'interval' or 'scene_change'
    caption     text,
    scene_type  text,
    objects     jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (key, frame_ms)
);

CREATE TABLE video_summaries (
    key        text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    summary    text NOT NULL,
    timeline   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
