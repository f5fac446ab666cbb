"""Text in pictures: the lines an OCR engine reads in an image, with boxes, confidence and
language, and whether the picture is a document or screenshot (little picture, much text).

Memory is bounded by the working size: a picture is decoded reduced (lib/imaging) so its
longer side is at most `OCR_SIDE` pixels, the size the detector then works at (a smaller
picture is read at its own size, never enlarged: lib/models/ocr.py);
boxes are given back in the original picture's pixels. A 20,000-px banner is read at
2,000 px: its text may then be too small to read, and the note says it was reduced.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from media_assets.lib.imaging import open_reduced
from media_assets.lib.models.ocr import DETECT_SIDE

OCR_SIDE = DETECT_SIDE  # pictures are read at the detector's own working size
HUGE_RETRY_SIDE = 640
MIN_CONFIDENCE = 0.5  # lines read with less are noise (textures, foliage)
BLANK_CONTRAST = 12  # grey levels between the darkest and the lightest pixel
# A picture (at its working size) thinner than this holds no readable line of text. rapidocr
# enlarges such a strip to a 30 px shorter side and pads it: a 2000x4 one cost 1.2 s and
# +449 MB for nothing.
MIN_TEXT_SIDE = 8
# A document or screenshot: at least this much text, covering this share of the picture
# (boxes' area) or in this many lines.
DOCUMENT_CHARS, DOCUMENT_AREA, DOCUMENT_LINES = 80, 0.10, 8

GERMAN = re.compile(r"[äöüßÄÖÜ]|\b(der|die|das|und|ist|nicht|mit|für|ein|eine|auf|zu|den|"
                    r"im|von|bitte|morgen|heute|straße|uhr)\b", re.IGNORECASE)
ENGLISH = re.compile(r"\b(the|and|of|to|is|for|with|on|you|your|this|that|are|at|total|"
                     r"from|please|today|street)\b", re.IGNORECASE)
TS_CONFIG = {"en": "english", "de": "german"}


@dataclass
class Line:
    text: str
    confidence: float
    box: list[list[float]]  # four corners (x, y), clockwise from top-left, original pixels

    def as_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4),
                "box": [[round(x, 1), round(y, 1)] for x, y in self.box]}


@dataclass
class PictureText:
    lines: list[Line] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)  # the original picture's width and height
    read_size: tuple[int, int] = (0, 0)  # what the engine saw
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def language(self) -> str | None:
        return language_of(self.text)

    @property
    def text_area(self) -> float:
        """Share of the picture covered by the lines' boxes."""
        w, h = self.size
        if not w or not h:
            return 0.0
        area = sum(_polygon_area(line.box) for line in self.lines)
        return min(1.0, area / (w * h))

    @property
    def is_document(self) -> bool:
        chars = len(self.text.replace("\n", ""))
        return chars >= DOCUMENT_CHARS and (self.text_area >= DOCUMENT_AREA
                                            or len(self.lines) >= DOCUMENT_LINES)

    @property
    def note(self) -> str | None:
        parts = []
        if self.read_size != self.size and max(self.size) > OCR_SIDE:
            parts.append(f"read at {self.read_size[0]}x{self.read_size[1]} "
                         f"(reduced from {self.size[0]}x{self.size[1]})")
        if not self.lines:
            parts.append("no text found")
        return "; ".join(parts) or None


def language_of(text: str) -> str | None:
    """'de' or 'en' from telltale letters and common words; None when unclear."""
    de, en = len(GERMAN.findall(text)), len(ENGLISH.findall(text))
    if de == en == 0:
        return None
    return "de" if de > en else "en" if en > de else None


def _polygon_area(box) -> float:
    xs, ys = np.array([p[0] for p in box]), np.array([p[1] for p in box])
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def picture_size(path: str) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def read_path(engine, path: str, side: int = OCR_SIDE) -> PictureText:
    """The text in an image file, decoded reduced to at most `side` px."""
    size = picture_size(path)
    return read_image(engine, open_reduced(path, side), size)


def read_image(engine, image: Image.Image, original_size: tuple[int, int] | None = None,
               side: int = OCR_SIDE) -> PictureText:
    """The text in a PIL image (reduced to `side` px first when larger); boxes are scaled
    to `original_size` (the image's own size when not given)."""
    start = time.perf_counter()
    size = original_size or image.size
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side))
    if min(image.size) < MIN_TEXT_SIDE or is_blank(image):  # nothing written: not asked
        return PictureText([], tuple(size), image.size, time.perf_counter() - start)
    lines = _lines(engine, image, size)
    if not lines and max(image.size) > HUGE_RETRY_SIDE:
        # Letters hundreds of pixels tall are beyond the detector's view: nothing found at
        # the working size is tried again smaller, where huge text is ordinary text.
        small = image.copy()
        small.thumbnail((HUGE_RETRY_SIDE, HUGE_RETRY_SIDE))
        lines = _lines(engine, small, size)
    return PictureText(lines, tuple(size), image.size, time.perf_counter() - start)


def is_blank(image: Image.Image) -> bool:
    """A picture of one flat colour (a blank slide, a black video frame; JPEG noise aside)
    holds no text: writing needs contrast, and text under BLANK_CONTRAST levels of 255 is
    unreadable anyway. Checked on every pixel, so one thin line of text keeps it
    non-blank."""
    grey = np.asarray(image.convert("L"))
    return grey.size == 0 or int(grey.max()) - int(grey.min()) < BLANK_CONTRAST


def _lines(engine, image: Image.Image, size: tuple[int, int]) -> list[Line]:
    rgb = np.asarray(image.convert("RGB"))
    out = engine(rgb)
    sx, sy = size[0] / image.size[0], size[1] / image.size[1]
    lines = []
    if out is not None and getattr(out, "txts", None):
        for box, txt, score in zip(out.boxes, out.txts, out.scores):
            txt = " ".join(str(txt).split())
            if sum(c.isalnum() for c in txt) < 2 or float(score) < MIN_CONFIDENCE:
                continue
            lines.append(Line(txt, float(score),
                              [[float(x) * sx, float(y) * sy] for x, y in np.asarray(box)]))
    lines.sort(key=lambda line: (round(min(p[1] for p in line.box) / max(1.0, 0.02 * size[1])),
                                 min(p[0] for p in line.box)))
    return lines


def normalised(text: str) -> str:
    """Text compared across video frames: case, spacing and punctuation do not count."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def same_text(a: str, b: str, ratio: float = 0.9) -> bool:
    """Two frames show the same text (OCR of one text wobbles by a character or two)."""
    import difflib

    a, b = normalised(a), normalised(b)
    if a == b:
        return True
    return bool(a and b) and difflib.SequenceMatcher(None, a, b).ratio() >= ratio
