"""Text in pictures: what is written in images and video key frames (OCR), searchable."""

import contextlib

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.video import video_frames
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import FileBatch, per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.images.ocr import OCR_SIDE, read_path
from media_assets.lib.images.text_store import store_picture_text
from media_assets.lib.models.roles import Role
from media_assets.lib.video.frame_text import read_frames
from media_assets.lib.video.store import frames_of

TEXT_GROUP = "images"


class ImageTextConfig(dg.Config):
    """OCR settings; editable in the launchpad."""

    side: int = Field(default=OCR_SIDE, description="Pictures are read reduced to this many "
                                                     "pixels on their longer side.")
    max_video_frames: int = Field(default=300, description="At most this many of a video's "
                                                           "sampled frames are read.")


@per_file_asset(group_name=TEXT_GROUP, file_kinds=("image", "video"),
                deps=[media_file, video_frames], model=Role.OCR, kinds={"onnx", "postgres"})
def image_text(context: dg.AssetExecutionContext, config: ImageTextConfig,
               catalog: CatalogResource, gpu: GpuResource) -> FileOutcome:
    """The text written in each image and in each video's sampled frames (PP-OCRv6 through
    rapidocr): lines with their boxes, confidence and language, joined into the full-text
    search (`text_in_picture` leg) and, through `text_embeddings` (made pending again for a
    file whose text changed), the search by meaning. A text that stays on screen over
    several frames is stored once, with its span. Pictures with little picture and much text are flagged as
    documents or screenshots. Large pictures are read reduced (bounded memory); a picture
    with no text gets a row that says so. Without the OCR model every file records why."""
    batch = FileBatch(context, catalog, gpu, columns=["lines", "document", "text"])
    docs = 0
    why = batch.model_missing() if len(batch) else None
    if why is not None:
        batch.fail_all(f"no OCR model: {why}")
        return batch.result()
    ref = batch.model_ref if len(batch) else ""
    with gpu.manager.use(Role.OCR) if len(batch) else contextlib.nullcontext() as engine:
        for item in batch:
            with batch.each(item):
                if item.row.kind == "image":
                    t = read_path(engine, item.path, config.side)
                    reads, read_count, note = [(-1, None, t)], 1, None
                else:
                    ms = [f["frame_ms"] for f in frames_of(batch.engine, item.key)]
                    note = (f"{len(ms)} sampled frames; the first {config.max_video_frames} "
                            "read") if len(ms) > config.max_video_frames else None
                    reads, read_count = read_frames(engine, item.path,
                                                    ms[:config.max_video_frames], config.side)
                    if not ms:
                        note = "no sampled frames (video_frames found none)"
                store_picture_text(batch.engine, item.key, ref, reads, read_count, note,
                                   built_on_it=["text_embeddings"])
                found = [t for _, _, t in reads if t.lines]
                is_doc = any(t.is_document for t in found)
                docs += is_doc
                text = " | ".join(t.text.replace("\n", " / ") for t in found)
                batch.ok(item, sum(len(t.lines) for t in found), "yes" if is_doc else "",
                         text[:200] or (reads[0][2].note if reads else note) or "no text")
    metadata = {"documents": dg.MetadataValue.int(docs)}
    if batch.done:
        metadata.update(gpu.report(Role.OCR))
    # Versioned like transcripts (resume_plan knows CLIP and text spaces only); the model
    # ref is in the rows.
    return batch.result(metadata)
