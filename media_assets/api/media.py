"""Bytes from requests and pictures for the page: base64 decoding, the catalogue's own
probe on a private temporary file, and images decoded under the server's pixel bound.

A PNG (or any format Pillow cannot decode at reduced scale, as it can a JPEG) is decoded
whole before it is reduced: a 249-megapixel PNG took +742 MB per `/analyze-image`. The
server refuses such an image in a request above `DECODE_PIXELS` (413), and decodes one
that large from the catalogue (a thumbnail nobody made yet) one at a time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator

from PIL import Image

from media_assets.lib.files.probe import Limits, Probe, ProbeError, probe_file
from media_assets.lib.imaging import open_reduced

DECODE_PIXELS = 64_000_000  # ~200 MB decoded as RGB; more only one at a time, or refused
_BIG = threading.Semaphore(1)


class BadInput(ValueError):
    """A request whose content cannot be used: a 4xx with the catalogue's own words."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message[:1000])
        self.status = status


def decode_base64(data: str, field: str) -> bytes:
    if data[:5] == "data:" and "," in data[:200]:  # a data: URL from a browser
        data = data.split(",", 1)[1]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"{field}: invalid base64 ({str(exc)[:100]})", 400) from None
    if not raw:
        raise BadInput(f"{field}: empty file (0 bytes): nothing to analyse", 400)
    return raw


def image_size(path: str) -> tuple[int, int, str | None] | None:
    """(width, height, format) from the header alone, or None when Pillow cannot tell."""
    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], img.format
    except Exception:  # not an image Pillow knows, or a bomb: the probe says which
        return None


def refuse_huge(path: str, field: str) -> None:
    size = image_size(path)
    if size is None:
        return
    width, height, fmt = size
    if fmt != "JPEG" and width * height > DECODE_PIXELS:
        raise BadInput(
            f"{field}: a {width}x{height} {fmt} image ({width * height / 1e6:.0f} megapixels);"
            f" the server decodes at most {DECODE_PIXELS / 1e6:.0f} megapixels of an image "
            "it cannot decode at reduced scale (JPEG it can): send a smaller copy", 413)


@contextlib.contextmanager
def probed(raw: bytes, kinds: tuple[str, ...], limits: Limits, field: str,
           ) -> Iterator[tuple[str, Probe]]:
    """(a private temporary file holding `raw`, its probe), when the catalogue would accept
    it as one of `kinds`; otherwise BadInput with the error the catalogue records."""
    fd, name = tempfile.mkstemp(prefix="media-assets-api-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        if "image" in kinds:
            refuse_huge(name, field)
        try:
            probe = probe_file(name, limits)
        except ProbeError as exc:
            raise BadInput(f"{field}: {exc}") from None
        if probe.kind not in kinds:
            raise BadInput(f"{field}: expected {' or '.join(kinds)}, got {probe.kind} "
                           f"({probe.mime_type or 'unknown type'})")
        yield name, probe
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def reduced(path: str, side: int) -> Image.Image:
    """`path` decoded reduced to `side`; an image that must be decoded whole above
    DECODE_PIXELS waits for the one slot such decodes share."""
    size = image_size(path)
    if size is not None and size[2] != "JPEG" and size[0] * size[1] > DECODE_PIXELS:
        with _BIG:
            return open_reduced(path, side)
    return open_reduced(path, side)
