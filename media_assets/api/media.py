"""Bytes from requests: base64 decoding, and the catalogue's own probe on a private
temporary file, with images held to lib's decode bound (`lib/imaging.py`).

A 249-megapixel PNG was decoded whole, +742 MB per `/analyze-image`. Now the probe and
`open_reduced` decode a large JPEG at reduced scale and a large PNG in bands; an image over
the bound in a format that can only be decoded whole is refused before any decoding, here
with 413 (the request is too large for this server), not the probe's 422.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from collections.abc import Iterator

from PIL import Image

from media_assets.lib.files.probe import Limits, Probe, ProbeError, probe_file
from media_assets.lib.imaging import (TooLargeToDecode, decode_mode, open_reduced,
                                      too_large_message)


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


def refuse_undecodable(path: str, field: str) -> None:
    """413 for an image over lib's decode bound that could only be decoded whole."""
    try:
        with Image.open(path) as img:
            if decode_mode(img) == "refuse":
                raise BadInput(f"{field}: {too_large_message(img)}", 413)
    except BadInput:
        raise
    except Exception:  # not an image Pillow knows, or a bomb: the probe says which
        return


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
            refuse_undecodable(name, field)
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
    """`path` decoded reduced to fit `side` (lib's bounded decode); 413 over the bound."""
    try:
        return open_reduced(path, side)
    except TooLargeToDecode as exc:
        raise BadInput(str(exc), 413) from None
