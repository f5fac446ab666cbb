"""Small JPEG thumbnails under the data home: for the Dagster UI's per-file facts and the
web page (the same cache). Made from the decoded picture; originals are only read."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

THUMB_PX = 320


def save_thumbnail(folder: Path, name: str, image: Image.Image) -> Path:
    """`folder/name.jpg`, at most 320 px, written atomically; kept when it exists."""
    path = folder / f"{name}.jpg"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    img = image.convert("RGB")
    img.thumbnail((THUMB_PX, THUMB_PX))
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    img.save(tmp, "JPEG", quality=85)
    os.replace(tmp, path)
    return path
