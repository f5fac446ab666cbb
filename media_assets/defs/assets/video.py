"""Video assets: a timeline of sampled frames (through the image path) and a summary that
joins what is seen with what is said."""

import time

import dagster as dg

from media_assets.defs.assets.audio import transcripts
from media_assets.defs.assets.ingest import media_file
from media_assets.defs.partitions import per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.analysis.images import AnalysisSettings, analyse_images
from media_assets.lib.analysis.video import build_summary
from media_assets.lib.catalog.speech import (frames_of, store_frames, store_summary,
                                             transcript_of)
from media_assets.lib.media.frames import sample_frames
from media_assets.lib.models.clip import image_features
from media_assets.lib.search import store_embeddings

VIDEO_GROUP = "video"


class VideoFramesConfig(dg.Config):
    """Frame sampling; editable in the launchpad."""

    every_seconds: float = 2.0
    scene_changes: bool = True
    max_frames: int = 2000
    use_captioner: bool = True


@per_file_asset(group_name=VIDEO_GROUP, deps=[media_file],
                uses_models=True, kinds={"pytorch", "postgres"})
def video_frames(context: dg.AssetExecutionContext, config: VideoFramesConfig,
                 catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """A frame every `every_seconds` (plus scene changes) of each video, with its timestamp;
    each frame gets a CLIP vector (searchable like an image, hits carry the timestamp) and a
    caption, objects and scene through the image analysis path."""
    cat = catalog.get()
    rows = cat.files.get(context.partition_keys)
    videos = [k for k, r in rows.items() if r.kind == "video" and r.status == "ok"]
    settings = AnalysisSettings(questions=[], use_captioner=config.use_captioner)
    total, failed = 0, {}
    start = time.perf_counter()
    for key in videos:
        path = cat.files.paths_of(key)[0]
        try:
            frames = list(sample_frames(path, config.every_seconds, config.scene_changes,
                                        config.max_frames))
        except Exception as exc:
            failed[path] = f"{type(exc).__name__}: {exc}"
            continue
        if not frames:
            continue
        images = [f.image for f in frames]
        with gpu.manager.use("clip") as clip:
            vectors = image_features(clip, images)
            store_embeddings(cat.engine, [key] * len(frames), vectors, clip.model_ref,
                             [f.ms for f in frames])
        results = analyse_images(gpu.manager, images, settings, feats=vectors)
        store_frames(cat.engine, key, [
            {"frame_ms": f.ms, "reason": f.reason, "caption": a.caption,
             "scene_type": a.scene_type, "objects": a.objects}
            for f, a in zip(frames, results)])
        total += len(frames)
    metadata = {"videos": dg.MetadataValue.int(len(videos)),
                "frames": dg.MetadataValue.int(total),
                "failed": dg.MetadataValue.json(failed),
                "seconds": dg.MetadataValue.float(round(time.perf_counter() - start, 2))}
    if total:
        metadata.update(gpu.report("clip"))
    return dg.MaterializeResult(metadata=metadata)


@per_file_asset(group_name=VIDEO_GROUP, deps=[video_frames, transcripts], kinds={"postgres"})
def video_summary(context: dg.AssetExecutionContext,
                  catalog: CatalogResource) -> dg.MaterializeResult:
    """Each video as one timeline, frame captions and spoken segments in time order, and a
    short summary of both."""
    cat = catalog.get()
    rows = cat.files.get(context.partition_keys)
    previews = []
    for key, row in rows.items():
        if row.kind != "video" or row.status != "ok":
            continue
        summary, timeline = build_summary(row.details.get("duration_s"), frames_of(cat.engine, key),
                                          transcript_of(cat.engine, key))
        store_summary(cat.engine, key, summary, timeline)
        previews.append(f"**{row.primary_path.rsplit('/', 1)[-1]}**: {summary}")
    return dg.MaterializeResult(metadata={
        "videos": dg.MetadataValue.int(len(previews)),
        "preview": dg.MetadataValue.md("\n\n".join(previews[:10]) or "no videos in this batch")})
