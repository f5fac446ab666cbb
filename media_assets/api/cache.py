"""The server's own thumbnails and video frames: JPEGs on disk, bounded in bytes and in
files, least recently used evicted first.

Before, every `t` up to 86,400 s in millisecond steps made a new frame file, for ever. Now
frames are snapped (`routes/catalogue.py`) and this cache holds at most
MEDIA_ASSETS_API_CACHE_MB and MEDIA_ASSETS_API_CACHE_FILES. It lives in its own folder
(`$MEDIA_ASSETS_HOME/api-cache`), so it never evicts the thumbnails ingest made for the
Dagster UI (`thumbnails/`), which are served as they are when present.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from PIL import Image

from media_assets.lib.images.thumbnails import THUMB_PX

NAME = re.compile(r"^[0-9a-f]{16}(_\d+)?$")


class PictureCache:
    def __init__(self, folder: Path, max_bytes: int, max_files: int,
                 made_by_ingest: Path | None = None):
        self.folder, self.max_bytes, self.max_files = folder, max_bytes, max_files
        self.made_by_ingest = made_by_ingest
        self._lock = threading.Lock()
        self._index: OrderedDict[str, int] = OrderedDict()  # name -> bytes, oldest use first
        self.total = 0
        folder.mkdir(parents=True, exist_ok=True)
        found = []
        for entry in os.scandir(folder):
            stem = entry.name.removesuffix(".jpg")
            if entry.is_file(follow_symlinks=False) and NAME.match(stem):
                st = entry.stat(follow_symlinks=False)
                found.append((st.st_atime, stem, st.st_size))
            elif entry.name.startswith("."):  # a temporary file of a process that died
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        for _, stem, size in sorted(found):
            self._index[stem] = size
            self.total += size
        with self._lock:
            self._evict(keep=None)

    def _evict(self, keep: str | None) -> None:
        while self._index and (self.total > self.max_bytes or len(self._index) > self.max_files):
            name = next(iter(self._index))
            if name == keep:
                if len(self._index) == 1:
                    return
                self._index.move_to_end(name)
                continue
            self.total -= self._index.pop(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / f"{name}.jpg")

    def _read(self, name: str) -> bytes | None:
        with self._lock:
            if name not in self._index:
                return None
            self._index.move_to_end(name)
        try:
            return (self.folder / f"{name}.jpg").read_bytes()
        except FileNotFoundError:  # evicted meanwhile
            return None

    def get(self, name: str, make: Callable[[], Image.Image]) -> bytes:
        """The JPEG bytes of `name`, made by `make()` once and kept while room allows.
        Bytes, not a path: a file may be evicted before a response could stream it."""
        if self.made_by_ingest is not None and "_" not in name:
            with contextlib.suppress(OSError):
                return (self.made_by_ingest / f"{name}.jpg").read_bytes()
        data = self._read(name)
        if data is not None:
            return data
        data = self._save(name, make())
        with self._lock:
            if name not in self._index:
                self._index[name] = len(data)
                self.total += len(data)
            self._index.move_to_end(name)
            self._evict(keep=name)
        return data

    def _save(self, name: str, image: Image.Image) -> bytes:
        img = image.convert("RGB")
        img.thumbnail((THUMB_PX, THUMB_PX))
        # Unique per thread: two requests may make the same picture at once.
        tmp = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / f"{name}.jpg")
        return data

    def __len__(self) -> int:
        return len(self._index)
