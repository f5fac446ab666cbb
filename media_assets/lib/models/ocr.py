"""The OCR model: rapidocr's PP-OCRv6 detection and recognition (ONNX, inside the rapidocr
wheel), run by onnxruntime. Chosen over Tesseract by bench/bench_ocr.py (README "Text in
pictures"): lower CER on rendered text over photos and installable with pip alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "models/PP-OCRv6_rec_small.onnx"


@dataclass
class OcrEngine:
    engine: Any  # rapidocr.RapidOCR
    device: str
    model_ref: str = ""

    def __call__(self, rgb: np.ndarray):
        """rapidocr's output for an RGB uint8 array (boxes, txts, scores; None when empty)."""
        return self.engine(rgb)


def load_ocr(path: Path, device: str) -> OcrEngine:
    """The engine over the ONNX files in `path/models`, its three models loaded now (rapidocr
    loads lazily; the model manager measures what a load costs)."""
    from rapidocr import RapidOCR

    cuda = device.startswith("cuda")
    engine = RapidOCR(params={
        "Global.log_level": "error", "Global.model_root_dir": str(Path(path) / "models"),
        "EngineConfig.onnxruntime.use_cuda": cuda})
    # Something to detect, so det, cls and rec all load. Small and square: the detector
    # enlarges a picture until its shorter side is 736 px, so a 64x256 strip became
    # 736x2944 and its warm-up cost 2.5x this one's.
    square = np.full((48, 48, 3), 255, np.uint8)
    square[20:28, 4:44] = 0
    engine(square)
    return OcrEngine(engine, device)
