"""Decoding images for models and previews: reduced, and under one pixel limit.

Models see 224-512 px. A 250-megapixel PNG decoded whole and converted takes gigabytes;
decoded at reduced scale (JPEG's DCT scaling through `draft`) or reduced right after the
decode (`Image.reduce`, then the full-size pixels are freed) it takes a fraction.
"""

from __future__ import annotations

from PIL import Image

DEFAULT_MAX_PIXELS = 250_000_000


def apply_pixel_limit(max_pixels: int) -> None:
    """The one pixel limit, for every image this process opens. Pillow warns above it and
    refuses at twice it; the probe refuses anything above it, with its own message, so a
    file the probe accepted always decodes in the model steps too."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def open_reduced(path: str, side: int) -> Image.Image:
    """An RGB image no larger than `side` x `side`, decoded at reduced scale where the
    format allows."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (side, side))
        factor = max(img.size) // (2 * side)
        img = img.reduce(factor) if factor >= 2 else img  # reduce() loads, then subsamples
        img = img.convert("RGB")
    img.thumbnail((side, side))
    return img
