"""Models whose weights ship inside an installed wheel (Resemblyzer's GE2E, rapidocr's
PP-OCR ONNX files): their default model id is that wheel's folder, found without importing
the package (Resemblyzer's own `__init__` would import librosa, which is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


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
