"""Image assets: CLIP embeddings in pgvector."""

import time

import dagster as dg

from media_assets.defs.assets.ingest import MAX_PARTITIONS_PER_RUN, media_file
from media_assets.defs.partitions import media_files
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.models.clip import embed_images
from media_assets.lib.search import embedded_keys, store_embeddings

IMAGES_GROUP = "images"
CLIP_BATCH = 32


@dg.asset(
    partitions_def=media_files,
    deps=[media_file],
    backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
    group_name=IMAGES_GROUP,
    pool="gpu",
    kinds={"pytorch", "postgres"},
)
def image_embeddings(context: dg.AssetExecutionContext, catalog: CatalogResource,
                     gpu: GpuResource) -> dg.MaterializeResult:
    """512-d L2-normalised CLIP vectors of the batch's images, stored in pgvector (HNSW,
    cosine) with the model that made them; images already embedded by the current model
    are skipped, so a model change re-embeds only stale rows. Non-images are skipped."""
    cat = catalog.get()
    rows = cat.files.get(context.partition_keys)
    images = {k: r for k, r in rows.items() if r.kind == "image" and r.status == "ok"}
    metadata: dict = {"images_in_batch": dg.MetadataValue.int(len(images)),
                      "other_files_skipped": dg.MetadataValue.int(len(rows) - len(images))}
    if not images:
        return dg.MaterializeResult(metadata=metadata)
    start = time.perf_counter()
    with gpu.manager.use("clip") as clip:
        current = embedded_keys(cat.engine, list(images), clip.model_ref)
        todo = [k for k in images if k not in current]
        paths = {}
        for k in todo:
            found = cat.files.paths_of(k)
            if found:
                paths[found[0]] = k
        vectors, errors = embed_images(clip, list(paths), CLIP_BATCH)
        ok_keys = [paths[p] for p in paths if p not in errors]
        stored = store_embeddings(cat.engine, ok_keys, vectors, clip.model_ref)
        model_ref = clip.model_ref
    seconds = time.perf_counter() - start
    for path, error in errors.items():
        context.log.warning(f"{path}: {error}")
    metadata.update(gpu.report("clip"))
    metadata.update({
        "embedded": dg.MetadataValue.int(stored),
        "already_current": dg.MetadataValue.int(len(images) - len(todo)),
        "decode_errors": dg.MetadataValue.json(errors),
        "model_ref": model_ref,
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "images_per_second": dg.MetadataValue.float(round(stored / seconds, 2) if seconds else 0),
    })
    return dg.MaterializeResult(metadata=metadata)
