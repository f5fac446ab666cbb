"""Image assets: CLIP embeddings in pgvector, analysis (captions, objects, colours),
near-duplicates."""

import time

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.ingest import media_file
from media_assets.defs.partitions import per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.analysis.images import (DEFAULT_OBJECTS, DEFAULT_QUESTIONS,
                                              DEFAULT_SCENES, Analysis, AnalysisSettings,
                                              analyse_images, open_thumbnail)
from media_assets.lib.catalog.images import (DUPLICATE_DISTANCE, record_near_duplicates,
                                             store_analysis)
from media_assets.lib.models.clip import embed_images
from media_assets.lib.models.registry import clip_model_ref
from media_assets.lib.search import embedded_keys, store_embeddings

IMAGES_GROUP = "images"
CLIP_BATCH = 32


@per_file_asset(group_name=IMAGES_GROUP, deps=[media_file],
                uses_models=True, kinds={"pytorch", "postgres"})
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


class ImageAnalysisConfig(dg.Config):
    """What to ask of each image; editable in the launchpad."""

    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS))
    objects: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTS))
    scenes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENES))
    use_captioner: bool = True
    batch_size: int = 8


def _analysis_markdown(rows: list[tuple[str, str, Analysis]], limit: int = 20) -> str:
    lines = ["| file | caption | scene | objects | colours |", "|---|---|---|---|---|"]
    for _, path, a in rows[:limit]:
        name = path.rsplit("/", 1)[-1].replace("|", "\\|").replace("\n", "\\n")
        objs = ", ".join(f"{o['name']} {o['confidence']:.2f}" for o in a.objects[:3])
        swatches = " ".join(c["hex"] for c in a.dominant_colors[:3])
        caption = a.caption.replace("|", "/") + (" *(degraded)*" if a.degraded else "")
        lines.append(f"| {name} | {caption} | {a.scene_type} | {objs} | {swatches} |")
    return "\n".join(lines)


@per_file_asset(group_name=IMAGES_GROUP, deps=[media_file],
                uses_models=True, kinds={"pytorch", "postgres"})
def image_analysis(context: dg.AssetExecutionContext, config: ImageAnalysisConfig,
                   catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """Per image: a BLIP-2 caption, answers to the configured questions, CLIP zero-shot
    objects (with their probabilities) and scene type, and dominant colours (k-means in Lab).
    Without the captioner it goes on in CLIP-only mode: the caption is built from the labels
    and each row says it is degraded, and why."""
    cat = catalog.get()
    rows = cat.files.get(context.partition_keys)
    images = [k for k, r in rows.items() if r.kind == "image" and r.status == "ok"]
    settings = AnalysisSettings(config.questions, config.objects, config.scenes,
                                config.use_captioner)
    done: list[tuple[str, str, Analysis]] = []
    failed: dict[str, str] = {}
    start = time.perf_counter()
    for i in range(0, len(images), config.batch_size):
        batch, thumbs = [], []
        for key in images[i:i + config.batch_size]:
            paths = cat.files.paths_of(key)
            try:
                thumbs.append(open_thumbnail(paths[0]))
                batch.append((key, paths[0]))
            except Exception as exc:  # one unreadable image must not stop the batch
                failed[key] = f"cannot decode: {exc}"
        if thumbs:
            results = analyse_images(gpu.manager, thumbs, settings)
            done += [(k, p, a) for (k, p), a in zip(batch, results)]
    store_analysis(cat.engine, [(k, a) for k, _, a in done])
    seconds = time.perf_counter() - start
    degraded = [a for _, _, a in done if a.degraded]
    metadata: dict = {
        "images_analysed": dg.MetadataValue.int(len(done)),
        "degraded": dg.MetadataValue.int(len(degraded)),
        "failed": dg.MetadataValue.json(failed),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "preview": dg.MetadataValue.md(_analysis_markdown(done)),
    }
    if degraded:
        metadata["degraded_reason"] = degraded[0].degraded_reason or ""
        context.log.warning(f"CLIP-only mode for {len(degraded)} images: "
                            f"{degraded[0].degraded_reason}")
    if done:
        metadata.update(gpu.report("clip"))
        if not degraded:
            metadata.update(gpu.report("captioner"))
    return dg.MaterializeResult(metadata=metadata)


@per_file_asset(group_name=IMAGES_GROUP, deps=[image_embeddings], kinds={"postgres"})
def image_duplicates(context: dg.AssetExecutionContext, catalog: CatalogResource,
                     gpu: GpuResource) -> dg.MaterializeResult:
    """Pairs of images whose CLIP vectors lie within a cosine distance of 0.01 (Immich's
    default): re-encodes, resizes and copies with other bytes. Listed by
    `media-assets duplicates`."""
    cat = catalog.get()
    model_ref = clip_model_ref(gpu.config())
    found = record_near_duplicates(cat.engine, context.partition_keys, model_ref)
    return dg.MaterializeResult(metadata={"pairs_found": dg.MetadataValue.int(found),
                                          "max_distance": DUPLICATE_DISTANCE,
                                          "model_ref": model_ref})
