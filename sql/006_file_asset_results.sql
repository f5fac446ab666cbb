-- What each per-file asset concluded for each file: done (`ok`), nothing to do (`skipped`,
-- e.g. a video without sound for transcripts) or `failed` with the reason. `version` is the
-- model space the result belongs to (the CLIP model ref for CLIP assets, '' otherwise), so
-- "what is left to do" is: files of an asset's kinds with no row at the current version.
CREATE TABLE file_asset_results (
    key        text NOT NULL REFERENCES media_files (key) ON DELETE CASCADE,
    asset      text NOT NULL,
    version    text NOT NULL DEFAULT '',
    status     text NOT NULL CHECK (status IN ('ok', 'skipped', 'failed')),
    error      text,
    seconds    double precision,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, asset)
);
CREATE INDEX file_asset_results_failed ON file_asset_results (asset) WHERE status = 'failed';

-- Catalogues made before this table: their finished work counts as done, so upgrading
-- re-runs nothing that already has its rows.
INSERT INTO file_asset_results (key, asset, version, status)
SELECT DISTINCT key, 'image_embeddings', model_id, 'ok' FROM image_embeddings WHERE frame_ms = -1
ON CONFLICT DO NOTHING;
INSERT INTO file_asset_results (key, asset, version, status)
SELECT key, 'image_analysis', clip_model, 'ok' FROM image_analysis
ON CONFLICT DO NOTHING;
INSERT INTO file_asset_results (key, asset, status)
SELECT key, 'transcripts', 'ok' FROM transcripts ON CONFLICT DO NOTHING;
INSERT INTO file_asset_results (key, asset, status)
SELECT key, 'video_summary', 'ok' FROM video_summaries ON CONFLICT DO NOTHING;
INSERT INTO file_asset_results (key, asset, status)
SELECT key, 'json_schemas', 'ok' FROM json_schemas ON CONFLICT DO NOTHING;
INSERT INTO file_asset_results (key, asset, status)
SELECT key, 'json_tables', 'ok' FROM json_tables ON CONFLICT DO NOTHING;
