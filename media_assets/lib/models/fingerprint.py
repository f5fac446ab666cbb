"""What tells one set of model weights from another, by their files alone: the model_ref's
hash (lib/models/locate.py) and the name of a GGUF model's dequantised copy
(lib/models/dequantised.py). Below the role table, so both can import it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from media_assets.lib.models.gguf_file import SUFFIX


def weights_fingerprint(files: list[Path]) -> str:
    """Short hash of the weight files' names, sizes and first MB: tells weights apart that
    share a hub id (real vs tiny), without reading gigabytes."""
    h = hashlib.sha256()
    for f in sorted(p for p in files
                    if p.suffix in (".safetensors", ".bin", ".pt", ".pth", SUFFIX)):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:10]
