"""Images/s through our CLIP embedding path vs a bare open_clip loop, same files, same batch.

    python bench/bench_clip.py [--n 64] [--batch 32] [--model ViT-B-32|tiny]

`ViT-B-32` builds the full-size architecture with random weights (same compute as the real
model; nothing downloaded). Files are scikit-image's photos, re-saved as 1024x768 JPEGs.
Both loops run in this process; the ratio is ours / bare (>1: we are faster).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_files(n: int, folder: Path) -> list[str]:
    import skimage.data

    src = Path(skimage.data.__file__).parent
    photos = [src / p for p in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                "horse.png", "motorcycle_left.png")]
    paths = []
    for i in range(n):
        img = Image.open(photos[i % len(photos)]).convert("RGB").resize((1024, 768))
        path = folder / f"{i}.jpg"
        img.save(path, quality=90)
        paths.append(str(path))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", default="ViT-B-32")
    args = ap.parse_args()
    import open_clip

    from media_assets.lib.models.clip import embed_images
    from media_assets.lib.models.loaders import ClipBundle

    if args.model == "tiny":
        from media_assets.lib.models.tiny import write_clip

        ref = "local-dir:" + str(write_clip(Path(tempfile.mkdtemp()) / "clip"))
        model, _, preprocess = open_clip.create_model_and_transforms(ref)
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
    model.eval()
    bundle = ClipBundle(model, preprocess, None, "cpu")
    paths = make_files(args.n, Path(tempfile.mkdtemp()))
    embed_images(bundle, paths[: args.batch], args.batch)  # warm-up

    t = time.perf_counter()
    ours, errors = embed_images(bundle, paths, args.batch)
    ours_s = time.perf_counter() - t
    assert not errors

    t = time.perf_counter()
    bare = []
    for i in range(0, len(paths), args.batch):
        batch = torch.stack([preprocess(Image.open(p).convert("RGB"))
                             for p in paths[i:i + args.batch]])
        with torch.no_grad():
            f = model.encode_image(batch)
        bare.append(torch.nn.functional.normalize(f, dim=-1).numpy())
    bare_s = time.perf_counter() - t
    bare = np.concatenate(bare)
    cos = float((ours * bare).sum(axis=1).min())
    print(f"model {args.model}, {args.n} JPEGs 1024x768, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")
    print(f"ours: {args.n / ours_s:.2f} img/s   bare open_clip: {args.n / bare_s:.2f} img/s   "
          f"ratio {bare_s / ours_s:.2f}x   (min cosine ours vs bare: {cos:.4f})")


if __name__ == "__main__":
    main()
