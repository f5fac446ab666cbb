"""Jobs: `media_job` runs every per-file asset over a batch of partitions in one process."""

import dagster as dg

from media_assets.defs.assets.ingest import INGEST_GROUP

# Later domains (images, audio, video, json) add their group here.
PER_FILE_GROUPS = [INGEST_GROUP]

media_job = dg.define_asset_job(
    "media_job",
    selection=dg.AssetSelection.groups(*PER_FILE_GROUPS),
    # One process per run: a model loaded for the first file serves the whole batch.
    executor_def=dg.in_process_executor,
)

