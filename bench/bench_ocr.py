"""OCR on rendered text: character error rate and seconds per image, rapidocr vs Tesseract.

    python bench/bench_ocr.py [--images 40] [--seed 0] [--no-tesseract]

Pictures (lib/images/synthetic_text.py): 1-3 lines of English or German in Debian's DejaVu
and Liberation fonts (or Pillow's default), 18-60 px, half of them rotated up to 10°, on a
white background ("clean") or over scikit-image's real photos on a pale box ("photo").
rapidocr runs through our own path (`read_image`, reduced to 2,000 px); Tesseract 5
(Debian `tesseract-ocr` + `-eng`/`-deu`, `-l deu+eng`) when installed. CER = edit distance
/ reference characters, spacing and case ignored. The seconds per image are the added
ingest cost of `image_text` per image.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def cer(ref: str, hyp: str) -> float:
    ref, hyp = " ".join(ref.lower().split()), " ".join(hyp.lower().split())
    prev = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        cur = [i]
        for j, b in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] / max(1, len(ref))


def tesseract(img, tmp: Path) -> str:
    path = tmp / "t.png"
    img.save(path)
    out = subprocess.run(["tesseract", str(path), "-", "-l", "deu+eng", "--psm", "3"],
                         capture_output=True, text=True)
    return " ".join(out.stdout.split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-tesseract", action="store_true")
    args = ap.parse_args()
    from media_assets.lib.images import synthetic_text as st
    from media_assets.lib.images.ocr import read_image
    from media_assets.lib.models.ocr import load_ocr
    from media_assets.lib.models.packaged import wheel_folder

    t = time.perf_counter()
    engine = load_ocr(Path(wheel_folder("rapidocr", "")), "cpu")
    print(f"rapidocr loaded in {time.perf_counter() - t:.1f} s; fonts: {st.fonts() or 'default'}")
    use_tess = not args.no_tesseract and shutil.which("tesseract")
    rng = random.Random(args.seed)
    rows = {"rapidocr": {"clean": [], "photo": []}, "tesseract": {"clean": [], "photo": []}}
    secs = {"rapidocr": [], "tesseract": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.images):
            kind = "photo" if n % 2 else "clean"
            img, lines = st.sample(rng, kind == "photo")
            ref = " ".join(lines)
            t = time.perf_counter()
            got = " ".join(read_image(engine, img).text.split())
            secs["rapidocr"].append(time.perf_counter() - t)
            rows["rapidocr"][kind].append(cer(ref, got))
            if use_tess:
                t = time.perf_counter()
                tess = tesseract(img, Path(tmp))
                secs["tesseract"].append(time.perf_counter() - t)
                rows["tesseract"][kind].append(cer(ref, tess))
    print(f"{args.images} images ({args.images // 2 + args.images % 2} clean, "
          f"{args.images // 2} over photos), English and German, CPU (2 busy cores)")
    for name in ("rapidocr", "tesseract"):
        if not secs[name]:
            continue
        print(f"{name:<10} CER clean {np.mean(rows[name]['clean']):.1%}  over photos "
              f"{np.mean(rows[name]['photo']):.1%}  seconds per image "
              f"{np.mean(secs[name]):.2f} (the added ingest cost per image)")


if __name__ == "__main__":
    main()
