"""Search assets: sentence vectors of every text in a file, for search by meaning."""

import contextlib
from pathlib import Path

import dagster as dg

from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.images import image_analysis
from media_assets.defs.assets.json_docs import json_schemas
from media_assets.defs.assets.picture_text import image_text
from media_assets.defs.assets.speech import transcripts
from media_assets.defs.assets.video import video_frames
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import FileBatch, per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.models.roles import Role
from media_assets.lib.search.meaning import store_units
from media_assets.lib.search.units import units_of

SEARCH_GROUP = "search"
TEXT_KINDS = ("image", "video", "audio", "json", "text")


@per_file_asset(group_name=SEARCH_GROUP, file_kinds=TEXT_KINDS,
                deps=[media_file, transcripts, image_analysis, video_frames, json_schemas,
                      image_text],
                model=Role.TEXT, versioned=True, kinds={"python", "postgres"})
def text_embeddings(context: dg.AssetExecutionContext, catalog: CatalogResource,
                    gpu: GpuResource) -> FileOutcome:
    """Sentence vectors (the multilingual text model, 384-d for multilingual-e5-small) of
    every text a file holds, each unit with where it is: transcript moments (time), image
    and frame captions and visual answers, text read in pictures (a few lines a unit),
    text-file chunks (character offsets), what a JSON table is about and its records'
    words (record numbers). Stored in `text_units` (pgvector HNSW, and full text for notes
    and JSON); a unit whose text and model are unchanged keeps its vector, so re-runs embed
    only what is stale."""
    batch = FileBatch(context, catalog, gpu, columns=["units", "embedded"])
    max_chars = catalog.settings().max_text_bytes
    units_total = embedded = 0
    model_seconds = 0.0
    with gpu.manager.use(Role.TEXT) if len(batch) else contextlib.nullcontext() as embedder:
        for item in batch:
            with batch.each(item):
                units = units_of(batch.engine, item.key, item.row.kind, Path(item.path),
                                 item.row.details, max_chars)
                done = store_units(batch.engine, item.key, units, embedder)
                units_total += done.units
                embedded += done.embedded
                model_seconds += done.seconds
                batch.ok(item, done.units, done.embedded)
    metadata: dict = {"units": dg.MetadataValue.int(units_total),
                      "embedded": dg.MetadataValue.int(embedded),
                      "model_seconds": dg.MetadataValue.float(round(model_seconds, 3))}
    if embedded:
        metadata["ms_per_text"] = dg.MetadataValue.float(round(1000 * model_seconds / embedded,
                                                               2))
    if batch.done:
        metadata["model_ref"] = embedder.model_ref
        metadata.update(gpu.report(Role.TEXT))
    return batch.result(metadata)
