"""Jobs: `media_job` runs every per-file asset over a batch of partitions in one process."""

import dagster as dg

from media_assets.defs.assets.audio import transcripts
from media_assets.defs.assets.images import image_analysis, image_duplicates, image_embeddings
from media_assets.defs.assets.video import video_frames, video_summary
from media_assets.defs.assets.ingest import media_file
from media_assets.defs.assets.json_docs import json_schemas, json_tables

# Every asset partitioned by `media_files`; later domains (audio, video, json) add theirs.
PER_FILE_ASSETS = [media_file, image_embeddings, image_analysis, image_duplicates,
                   transcripts, video_frames, video_summary, json_schemas, json_tables]

# The model each model asset needs: `media-assets ingest` leaves out (and names) the assets
# whose model is not on this machine, instead of failing the whole batch.
MODEL_OF_ASSET = {"image_embeddings": "clip", "image_analysis": "clip",
                  "image_duplicates": "clip", "transcripts": "whisper", "video_frames": "clip"}

media_job = dg.define_asset_job(
    "media_job",
    selection=dg.AssetSelection.assets(*PER_FILE_ASSETS),
    # One process per run: a model loaded for the first file serves the whole batch.
    executor_def=dg.in_process_executor,
)
