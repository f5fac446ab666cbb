"""Jobs: `media_job` runs every per-file asset over a batch of partitions in one process;
`clusters_job` re-clusters. What runs to ask for is `planning.py`'s."""

import dagster as dg

from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.images import image_analysis, image_duplicates, image_embeddings
from media_assets.defs.assets.json_docs import json_schemas, json_tables
from media_assets.defs.assets.picture_text import image_text
from media_assets.defs.assets.speakers import speakers
from media_assets.defs.assets.search import text_embeddings
from media_assets.defs.assets.speech import transcripts
from media_assets.defs.assets.video import video_frames, video_summary

# Every asset partitioned by `media_files`, in graph order.
PER_FILE_ASSETS = [media_file, image_embeddings, image_analysis, image_duplicates,
                   transcripts, video_frames, video_summary, json_schemas, json_tables,
                   image_text, text_embeddings, speakers]

media_job = dg.define_asset_job(
    "media_job",
    selection=dg.AssetSelection.assets(*PER_FILE_ASSETS),
    description="Every per-file asset over a range of `media_files` partitions, in one "
                "process, so a model loaded for the first file serves the whole batch.",
    # One process per run: a model loaded for the first file serves the whole batch, and
    # one model manager holds the memory budget.
    executor_def=dg.in_process_executor,
)


clusters_job = dg.define_asset_job(
    "clusters_job",
    selection=dg.AssetSelection.groups("clusters"),
    description="Re-cluster the whole CLIP space, then name new or changed clusters and place "
                "them in the hierarchy. Requested by `recluster_sensor` when enough new "
                "files arrived, and nightly by `clusters_schedule`.",
    executor_def=dg.in_process_executor,
)


# Every job runs in one process, including the UI's asset-graph runs and backfills
# (`__ASSET_JOB`): one model manager then holds the memory budget for the whole run, and
# model steps never overlap in parallel processes.
defs = dg.Definitions(jobs=[media_job, clusters_job], executor=dg.in_process_executor)
