"""The OCR model: rapidocr's PP-OCRv6 detection and recognition (ONNX, inside the rapidocr
wheel), run by onnxruntime. Chosen over Tesseract by bench/bench_ocr.py (README "Text in
pictures"): lower CER on rendered text over photos and installable with pip alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "models/PP-OCRv6_rec_small.onnx"
# The longest side the detector works at; `read_image` reduces pictures to it first
# (lib/images/ocr.py OCR_SIDE is this), so nothing is reduced twice.
DETECT_SIDE = 2000


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
        "EngineConfig.onnxruntime.use_cuda": cuda,
        # The detector sees a picture at its own size, reduced only past DETECT_SIDE.
        # rapidocr's default enlarged it until its shorter side was 736 px: a 264x50 label
        # was detected at 3886x736. On bench/bench_ocr.py's 40 pictures (18-60 px text,
        # many under 736 px high) that read worse and slower: CER 2.8 % clean and 10.1 %
        # over photos at 1.28 s a picture, against 0.0 % and 0.0 % at 0.18 s; on small
        # labels of 10-14 px text, 6.8 % and 7.8 % at about 1 s, against 0.3 % and 0.2 % at
        # 0.1 s (2026-12-04). Pictures of 736 px and more were never scaled, and are not.
        "Det.limit_type": "max", "Det.limit_side_len": DETECT_SIDE})
    # A word to read, so det, cls and rec all load (a bar or a blank page is detected as
    # nothing at its own size, and then only det would load).
    from PIL import Image, ImageDraw, ImageFont

    word = Image.new("RGB", (160, 48), "white")
    ImageDraw.Draw(word).text((8, 8), "OCR 42", fill="black", font=ImageFont.load_default(28))
    engine(np.asarray(word))
    return OcrEngine(engine, device)
