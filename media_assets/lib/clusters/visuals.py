"""The pictures of a cluster's representatives: the image itself, or the video frame."""

from __future__ import annotations

import sqlalchemy as sa
from PIL import Image

from media_assets.lib.files.store import FileStore
from media_assets.lib.images.analysis import open_thumbnail
from media_assets.lib.video.frames import frame_at


def picture(path: str, frame_ms: int) -> Image.Image:
    return open_thumbnail(path) if frame_ms < 0 else frame_at(path, frame_ms)


def representative_images(engine: sa.Engine, reps: list[tuple[str, int]],
                          ) -> tuple[list[Image.Image], list[str]]:
    """Decoded representatives, and what could not be decoded (a moved or broken file is
    left out; the cluster is named from the others)."""
    files = FileStore(engine)
    images, problems = [], []
    for key, frame in reps:
        paths, why, _ = files.readable_paths(key)
        if not paths:
            problems.append(f"{key[:12]}: {why}")
            continue
        try:
            images.append(picture(paths[0], frame))
        except Exception as exc:  # a file that broke since it was catalogued
            problems.append(f"{key[:12]}: {type(exc).__name__}: {exc}"[:300])
    return images, problems
