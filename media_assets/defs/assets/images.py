"""Image assets: CLIP embeddings in pgvector, analysis (captions, objects, colours),
near-duplicates."""

import contextlib
from pathlib import Path

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.files import media_file
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import (FileBatch, blocking_check, check_result,
                                        per_file_asset)
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.clusters.store import assign_new
from media_assets.lib.images.analysis import (DEFAULT_OBJECTS, DEFAULT_QUESTIONS,
                                              DEFAULT_SCENES, AnalysisSettings, analyse_images,
                                              open_thumbnail)
from media_assets.lib.images.thumbnails import save_thumbnail
from media_assets.lib.images.store import (DUPLICATE_DISTANCE, record_near_duplicates,
                                           store_analysis)
from media_assets.lib.images.vectors import bad_vectors, embedded_keys, store_embeddings
from media_assets.lib.models.clip import embed_images
from media_assets.lib.models.roles import Role

IMAGES_GROUP = "images"
CLIP_BATCH = 32


VECTORS_CHECK = "vectors_are_unit_512"


@per_file_asset(group_name=IMAGES_GROUP, file_kinds=("image",), deps=[media_file],
                model=Role.CLIP, versioned=True, kinds={"pytorch", "postgres"},
                check_specs=[blocking_check("image_embeddings", VECTORS_CHECK,
                                            "Every vector of the batch is 512-d and "
                                            "L2-normalised, as search and duplicates assume.")])
def image_embeddings(context: dg.AssetExecutionContext, catalog: CatalogResource,
                     gpu: GpuResource) -> FileOutcome:
    """512-d L2-normalised CLIP vectors of the batch's images, stored in pgvector (HNSW,
    cosine) with the model that made them; images already embedded by the current model
    are skipped (and CLIP is not loaded for them), so a model change re-embeds only stale
    rows. Non-images are skipped."""
    batch = FileBatch(context, catalog, gpu, columns=["vector"])
    if not len(batch):
        return batch.result(check_results=[check_result(VECTORS_CHECK, [])])
    model_ref = batch.model_ref
    current = embedded_keys(batch.engine, [i.key for i in batch], model_ref)
    todo = {i.path: i for i in batch if i.key not in current}
    for item in batch:
        if item.key in current:
            batch.ok(item, "already current")
    metadata: dict = {"already_current": dg.MetadataValue.int(len(current)),
                      "embedded": dg.MetadataValue.int(0), "model_ref": model_ref}
    if todo:
        with gpu.manager.use(Role.CLIP) as clip:
            vectors, errors = embed_images(clip, list(todo), CLIP_BATCH)
        for path, error in errors.items():
            batch.fail(todo[path], error)
        ok = [item for path, item in todo.items() if path not in errors]
        store_embeddings(batch.engine, [i.key for i in ok], vectors, model_ref)
        for item in ok:
            batch.ok(item, "embedded")
        metadata["embedded"] = dg.MetadataValue.int(len(ok))
        # Between full cluster runs, new images join the nearest cluster when close enough.
        metadata["joined_clusters"] = dg.MetadataValue.int(
            assign_new(batch.engine, model_ref, [i.key for i in ok]))
        metadata.update(gpu.report(Role.CLIP))
        metadata["images_per_second"] = dg.MetadataValue.float(
            round(len(ok) / batch.elapsed, 2) if batch.elapsed else 0)
    bad = bad_vectors(batch.engine, [i.key for i in batch], model_ref)
    return batch.result(metadata, check_results=[check_result(VECTORS_CHECK, bad)])


class ImageAnalysisConfig(dg.Config):
    """What to ask of each image; editable in the launchpad."""

    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS),
                                 description="Visual questions BLIP-2 answers for each image.")
    objects: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTS),
                               description="Vocabulary for CLIP zero-shot objects.")
    scenes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENES),
                              description="Vocabulary for CLIP zero-shot scene types.")
    use_captioner: bool = Field(default=True, description="False: CLIP-only captions.")
    batch_size: int = Field(default=8, description="Images per captioner batch.")


@per_file_asset(group_name=IMAGES_GROUP, file_kinds=("image",), deps=[media_file],
                model=Role.CLIP, versioned=True, kinds={"pytorch", "postgres"})
def image_analysis(context: dg.AssetExecutionContext, config: ImageAnalysisConfig,
                   catalog: CatalogResource, gpu: GpuResource) -> FileOutcome:
    """Per image: a BLIP-2 caption, answers to the configured questions, CLIP zero-shot
    objects (with their probabilities) and scene type, and dominant colours (k-means in Lab).
    Without the captioner it goes on in CLIP-only mode: the caption is built from the labels
    and each row says it is degraded, and why."""
    batch = FileBatch(context, catalog, gpu, columns=["caption", "scene", "objects", "colours"])
    settings = AnalysisSettings(config.questions, config.objects, config.scenes,
                                config.use_captioner)
    items, degraded = list(batch), []
    for i in range(0, len(items), config.batch_size):
        chunk, thumbs = [], []
        for item in items[i:i + config.batch_size]:
            with batch.each(item):
                thumbs.append(open_thumbnail(item.path))
                chunk.append(item)
        if not thumbs:
            continue
        results = analyse_images(gpu.manager, thumbs, settings)
        store_analysis(batch.engine, [(item.key, a) for item, a in zip(chunk, results)])
        for item, thumb in zip(chunk, thumbs):
            # The file's own thumbnail in its partition's facts (and the page's cache).
            with contextlib.suppress(OSError):
                batch.note(item.key, thumbnail=dg.MetadataValue.path(str(
                    save_thumbnail(Path(catalog.home) / "thumbnails", item.key, thumb))))
        for item, a in zip(chunk, results):
            batch.ok(item, a.caption + (" *(degraded)*" if a.degraded else ""), a.scene_type,
                     ", ".join(f"{o['name']} {o['confidence']:.2f}" for o in a.objects[:3]),
                     " ".join(c["hex"] for c in a.dominant_colors[:3]))
            if a.degraded:
                degraded.append(a.degraded_reason or "")
    metadata: dict = {"degraded": dg.MetadataValue.int(len(degraded))}
    if degraded:
        metadata["degraded_reason"] = degraded[0]
        context.log.warning(f"CLIP-only mode for {len(degraded)} images: {degraded[0]}")
    if batch.done:
        metadata.update(gpu.report(Role.CLIP))
        if not degraded:
            metadata.update(gpu.report(Role.CAPTIONER))
    return batch.result(metadata)


@per_file_asset(group_name=IMAGES_GROUP, file_kinds=("image",), deps=[image_embeddings],
                model=Role.CLIP, loads_model=False, versioned=True, kinds={"postgres"})
def image_duplicates(context: dg.AssetExecutionContext, catalog: CatalogResource,
                     gpu: GpuResource) -> FileOutcome:
    """Pairs of images within a CLIP cosine distance of 0.01 (Immich's default): re-encodes,
    resizes and copies with other bytes. Listed by `media-assets duplicates`."""
    batch = FileBatch(context, catalog, gpu)
    model_ref = batch.model_ref if len(batch) else "none"  # no CLIP weights needed
    found = record_near_duplicates(batch.engine, batch.ok_all(), model_ref)
    return batch.result({"pairs_found": dg.MetadataValue.int(found), "model_ref": model_ref,
                         "max_distance": DUPLICATE_DISTANCE})
