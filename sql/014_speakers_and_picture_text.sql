-- Speakers (the `speakers` asset): per file, its speakers S1, S2, ... in order of first
-- speech with their talk time and voice centroid (GE2E, 256-d, unit length), and the
-- speaker of each transcript segment part (a long segment may hold a turn change).
CREATE TABLE speaker_files (
    key           text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    model_id      text NOT NULL,
    speaker_count integer NOT NULL,
    speech_s      double precision NOT NULL,
    note          text,          -- why there are no speakers, or what was left out
    made_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE file_speakers (
    key      text NOT NULL REFERENCES speaker_files (key) ON DELETE CASCADE,
    label    text NOT NULL,      -- S1, S2, ...
    talk_s   double precision NOT NULL,
    first_s  double precision NOT NULL,
    segments integer NOT NULL,
    centroid vector(256) NOT NULL,
    PRIMARY KEY (key, label)
);

CREATE TABLE segment_speakers (
    key        text NOT NULL,
    idx        integer NOT NULL,  -- transcript_segments.idx
    part       integer NOT NULL,
    start_s    double precision NOT NULL,
    end_s      double precision NOT NULL,
    label      text NOT NULL,
    word_start integer,           -- the segment's words [word_start, word_end) in this part
    word_end   integer,
    PRIMARY KEY (key, idx, part),
    FOREIGN KEY (key, idx) REFERENCES transcript_segments (key, idx) ON DELETE CASCADE,
    FOREIGN KEY (key, label) REFERENCES file_speakers (key, label) ON DELETE CASCADE
);

-- A name given to one file's speaker; it applies to every file speaker whose centroid is
-- within NAME_DISTANCE (lib/speech/speaker_store.py) of a named voice, the nearest winning.
CREATE TABLE speaker_names (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    centroid     vector(256) NOT NULL,
    source_key   text,
    source_label text,
    named_at     timestamptz NOT NULL DEFAULT now()
);

-- Text read in pictures (the `image_text` asset): one row per image (frame_ms -1) or per
-- video frame whose text differs from the frame before it (until_ms: the last frame that
-- showed the same text), with its lines (text, confidence, box in the image's pixels).
CREATE TABLE picture_texts (
    key       text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    frame_ms  integer NOT NULL DEFAULT -1,
    until_ms  integer,
    text      text NOT NULL,
    lines     jsonb NOT NULL,
    language  text,
    ts_config regconfig NOT NULL DEFAULT 'simple',
    tsv       tsvector GENERATED ALWAYS AS
              (to_tsvector(ts_config, text) || to_tsvector('simple'::regconfig, text)) STORED,
    PRIMARY KEY (key, frame_ms)
);
CREATE INDEX picture_texts_tsv ON picture_texts USING gin (tsv);

-- Per file: whether it is a document or screenshot (little picture, much text), and why
-- nothing was read when nothing was.
CREATE TABLE picture_text_files (
    key         text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    model_id    text NOT NULL,
    is_document boolean NOT NULL DEFAULT false,
    text_area   double precision,   -- share of the picture covered by text boxes
    chars       integer NOT NULL DEFAULT 0,
    frames_read integer NOT NULL DEFAULT 0,
    note        text,
    read_at     timestamptz NOT NULL DEFAULT now()
);
