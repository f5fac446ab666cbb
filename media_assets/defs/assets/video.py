"""Video assets: a timeline of sampled frames (through the image path) and a summary that
joins what is seen with what is said."""

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.speech import transcripts
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import FileBatch, per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.images.analysis import AnalysisSettings, analyse_images
from media_assets.lib.clusters.store import assign_new
from media_assets.lib.images.vectors import store_embeddings
from media_assets.lib.models.clip import image_features
from media_assets.lib.models.roles import Role
from media_assets.lib.speech.store import transcript_of
from media_assets.lib.video.frames import sample_frames
from media_assets.lib.video.store import frames_of, store_frames, store_summary
from media_assets.lib.video.summary import build_summary

VIDEO_GROUP = "video"


class VideoFramesConfig(dg.Config):
    """Frame sampling; editable in the launchpad."""

    every_seconds: float = Field(default=2.0, description="One frame every N seconds.")
    scene_changes: bool = Field(default=True, description="Also keep scene-change frames.")
    max_frames: int = Field(default=2000, description="At most this many frames per video.")
    use_captioner: bool = Field(default=True, description="False: CLIP-only frame captions.")


@per_file_asset(group_name=VIDEO_GROUP, file_kinds=("video",), deps=[media_file],
                model=Role.CLIP, versioned=True, kinds={"pytorch", "postgres"})
def video_frames(context: dg.AssetExecutionContext, config: VideoFramesConfig,
                 catalog: CatalogResource, gpu: GpuResource) -> FileOutcome:
    """A frame every `every_seconds` (plus scene changes) of each video, with its timestamp;
    each frame gets a CLIP vector (searchable like an image, hits carry the timestamp) and a
    caption, objects and scene through the image analysis path. A video's vectors and frame
    rows are written in one transaction."""
    batch = FileBatch(context, catalog, gpu, columns=["frames"])
    settings = AnalysisSettings(questions=[], use_captioner=config.use_captioner)
    total, embedded = 0, []
    for item in batch:
        with batch.each(item):
            frames = list(sample_frames(item.path, config.every_seconds, config.scene_changes,
                                        config.max_frames))
            images = [f.image for f in frames]
            vectors, results = None, []
            if frames:
                with gpu.manager.use(Role.CLIP) as clip:
                    vectors = image_features(clip, images)
                    model_ref = clip.model_ref
                results = analyse_images(gpu.manager, images, settings, feats=vectors)
            with batch.engine.begin() as conn:
                if frames:
                    store_embeddings(batch.engine, [item.key] * len(frames), vectors, model_ref,
                                     [f.ms for f in frames], conn=conn)
                store_frames(batch.engine, item.key, [
                    {"frame_ms": f.ms, "reason": f.reason, "caption": a.caption,
                     "scene_type": a.scene_type, "objects": a.objects}
                    for f, a in zip(frames, results)], conn=conn)
            total += len(frames)
            if frames:
                embedded.append(item.key)
            batch.ok(item, len(frames))
    metadata = {"frames": dg.MetadataValue.int(total)}
    if total:
        # Between full cluster runs, new videos join the nearest cluster when close enough.
        metadata["joined_clusters"] = dg.MetadataValue.int(
            assign_new(batch.engine, model_ref, embedded))
        metadata.update(gpu.report(Role.CLIP))
    return batch.result(metadata)


@per_file_asset(group_name=VIDEO_GROUP, file_kinds=("video",),
                deps=[video_frames, transcripts], kinds={"postgres"})
def video_summary(context: dg.AssetExecutionContext,
                  catalog: CatalogResource) -> FileOutcome:
    """Each video as one timeline, frame captions and spoken segments in time order, and a
    short summary of both."""
    batch = FileBatch(context, catalog, columns=["summary"])
    for item in batch:
        with batch.each(item):
            summary, timeline = build_summary(item.row.details.get("duration_s"),
                                              frames_of(batch.engine, item.key),
                                              transcript_of(batch.engine, item.key))
            store_summary(batch.engine, item.key, summary, timeline)
            batch.ok(item, summary[:300])
    return batch.result()
