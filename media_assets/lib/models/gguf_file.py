"""What a GGUF file holds, read from its header alone: the model's name, architecture and
parameter count, without the `gguf` package and without reading the weights.

transformers loads a GGUF by dequantising every tensor (fp32 on the CPU, fp16 on CUDA), so
the memory a GGUF model takes is its parameter count times 4 or 2 bytes, not its file size:
the estimate the model manager charges comes from here. The format is documented in
ggml's docs/gguf.md: magic, version, tensor count, key/value pairs, then tensor infos.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".gguf"
# value type -> struct format of a scalar (8: string, 9: array are read apart)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
            11: "q", 12: "d"}
_WANTED = ("general.name", "general.architecture")


class NotGguf(ValueError):
    """The file is not a GGUF file (or not one this reader understands)."""


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    name: str
    architecture: str
    params: int
    file_mb: float

    def memory_mb(self, device: str) -> float:
        """What transformers' dequantised copy takes: fp16 on CUDA, fp32 on the CPU."""
        return self.params * (2 if device.startswith("cuda") else 4) / 2**20


def _read(fh, fmt: str):
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise NotGguf("truncated header")
    return struct.unpack("<" + fmt, data)[0]


def _string(fh) -> bytes:
    n = _read(fh, "Q")
    if n > 1 << 24:
        raise NotGguf("implausible string length")
    return fh.read(n)


def _skip_value(fh, vtype: int):
    if vtype == 8:
        return _string(fh)
    if vtype == 9:
        item, count = _read(fh, "I"), _read(fh, "Q")
        if item in _SCALARS:  # fixed-size items: one seek
            fh.seek(struct.calcsize("<" + _SCALARS[item]) * count, 1)
        else:  # strings (the vocabulary) or nested arrays: one by one
            for _ in range(count):
                _skip_value(fh, item)
        return None
    if vtype not in _SCALARS:
        raise NotGguf(f"unknown value type {vtype}")
    return _read(fh, _SCALARS[vtype])


def read_info(path: Path) -> GgufInfo:
    """Name, architecture and parameter count from the header (milliseconds, even for a
    file of gigabytes)."""
    meta: dict[str, str] = {}
    params = 0
    with open(path, "rb", buffering=1 << 20) as fh:
        if fh.read(4) != b"GGUF":
            raise NotGguf(f"{path} is not a GGUF file")
        version = _read(fh, "I")
        if version < 2:
            raise NotGguf(f"GGUF version {version} is too old")
        n_tensors, n_kv = _read(fh, "Q"), _read(fh, "Q")
        for _ in range(n_kv):
            key = _string(fh).decode("utf-8", "replace")
            value = _skip_value(fh, _read(fh, "I"))
            if key in _WANTED and isinstance(value, bytes):
                meta[key] = value.decode("utf-8", "replace")
        for _ in range(n_tensors):
            _string(fh)
            dims = [_read(fh, "Q") for _ in range(_read(fh, "I"))]
            _read(fh, "I")  # quantisation type
            _read(fh, "Q")  # offset
            params += math.prod(dims)
    return GgufInfo(path, meta.get("general.name", path.stem),
                    meta.get("general.architecture", "?"), params,
                    path.stat().st_size / 2**20)


def gguf_in(folder: Path) -> list[Path]:
    """The GGUF files directly in a folder, by name."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == SUFFIX)
    except OSError:
        return []
