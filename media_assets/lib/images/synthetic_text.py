"""Rendered text pictures with known text, for the OCR bench and tests: receipts and
screenshots on flat backgrounds, and captions over real photos (scikit-image's)."""

from __future__ import annotations

import glob
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_GLOBS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
              "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
              "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
              "**/matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf")


def fonts() -> list[str]:
    """TrueType fonts on this machine (Debian's DejaVu and Liberation, or matplotlib's)."""
    found = []
    for pattern in FONT_GLOBS:
        found += sorted(glob.glob(pattern, recursive=pattern.startswith("**")))[:1]
    return found


def font(path: str | None, size: int):
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def render_lines(lines: list[str], size: tuple[int, int] = (900, 600), font_path=None,
                 font_px: int = 32, background: Image.Image | None = None,
                 angle: float = 0.0, colour=(20, 20, 20), box=True) -> Image.Image:
    """`lines` written top-down; over `background` (on a pale box, as captions and signs
    are) or white; rotated by `angle` degrees."""
    img = (background.convert("RGB").resize(size) if background is not None
           else Image.new("RGB", size, "white"))
    draw = ImageDraw.Draw(img)
    f = font(font_path, font_px)
    y = int(font_px * 0.8)
    for line in lines:
        x0, y0, x1, y1 = draw.textbbox((30, y), line, font=f)
        if background is not None and box:
            draw.rectangle((x0 - 8, y0 - 6, x1 + 8, y1 + 6), fill=(245, 245, 235))
        draw.text((30, y), line, font=f, fill=colour)
        y += int(font_px * 1.6)
    if angle:
        img = img.rotate(angle, expand=True, fillcolor="white", resample=Image.BICUBIC)
    return img


def receipt(path, font_path=None) -> list[str]:
    lines = ["BÄCKEREI SONNENSCHEIN", "Roggenbrot 1 kg     4,20 EUR",
             "Butterbrezel x2     2,60 EUR", "Kaffee groß         3,10 EUR",
             "Summe              9,90 EUR", "Vielen Dank für Ihren Einkauf!"]
    render_lines(lines, (700, 520), font_path, 28).save(path)
    return lines


def screenshot(path, font_path=None) -> list[str]:
    lines = ["Settings - Network", "Wireless network: Garden Office 5G",
             "Signal strength: excellent", "Your invoice number is 4471-B",
             "Dentist appointment tomorrow at 9:30", "Remember to renew the parking permit",
             "Backup finished without errors", "Last sync: Monday 08:15"]
    render_lines(lines, (1280, 800), font_path, 30).save(path)
    return lines


def photo(name: str) -> Image.Image:
    import skimage.data

    arr = getattr(skimage.data, name)()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(arr[..., :3])


ENGLISH = ["Fresh coffee served daily", "Platform 7 departures", "Welcome to the harbour",
           "Open Monday to Friday", "Please keep the door closed", "Quarterly report 2026",
           "Total amount due 42.17", "Meeting moved to Thursday"]
GERMAN = ["Größe: Zahnarzttermin morgen früh", "Bitte nicht stören", "Ausgang links",
          "Frühstück ab sieben Uhr", "Straßenbahn Linie 12", "Öffnungszeiten täglich",
          "Grüße aus München", "Übermorgen geschlossen"]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field")


def sample(rng: random.Random, over_photo: bool) -> tuple[Image.Image, list[str]]:
    """One random test picture and its lines."""
    pool = rng.choice([ENGLISH, GERMAN])
    lines = rng.sample(pool, rng.randint(1, 3))
    f = rng.choice(fonts() or [None])
    px = rng.choice([18, 24, 32, 44, 60])
    angle = rng.uniform(-10, 10) if rng.random() < 0.5 else 0.0
    bg = photo(rng.choice(PHOTOS)) if over_photo else None
    width = max(640, int(px * 0.62 * max(len(x) for x in lines)) + 80)
    img = render_lines(lines, (width, int(px * 1.6 * len(lines) + px * 2)), f, px, bg, angle)
    return img, lines
