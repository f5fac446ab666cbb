"""Bytes from requests and pictures for the page: base64 decoding, the catalogue's own
probe on a private temporary file, and thumbnails cached under the data home."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from media_assets.lib.files.probe import Limits, Probe, ProbeError, probe_file
from media_assets.lib.images.thumbnails import save_thumbnail

class BadInput(ValueError):
    """A request whose content cannot be used: a 4xx with the catalogue's own words."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def decode_base64(data: str, field: str) -> bytes:
    if "," in data[:100] and data[:5] == "data:":  # a data: URL from a browser
        data = data.split(",", 1)[1]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"{field}: invalid base64 ({exc})", 400) from None
    if not raw:
        raise BadInput(f"{field}: empty file (0 bytes): nothing to analyse", 400)
    return raw


@contextlib.contextmanager
def probed(raw: bytes, kinds: tuple[str, ...], limits: Limits, field: str,
           ) -> Iterator[tuple[str, Probe]]:
    """(a private temporary file holding `raw`, its probe), when the catalogue would accept
    it as one of `kinds`; otherwise BadInput with the error the catalogue records."""
    fd, name = tempfile.mkstemp(prefix="media-assets-api-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
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


def cached_picture(cache: Path, name: str, make) -> Path:
    """A JPEG under `cache`, made once by `make()` (a PIL image). Originals are only read."""
    path = cache / f"{name}.jpg"
    return path if path.is_file() else save_thumbnail(cache, name, make())
