"""Dominant colours: k-means in CIE Lab (perceptual distances), reported as hex + proportion."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

SAMPLE_SIDE = 96  # pixels per side after downscaling: plenty for proportions, fast k-means


def dominant_colors(img: Image.Image, k: int = 5, min_share: float = 0.01) -> list[dict]:
    """Up to k colours, largest share first; each hex is the mean sRGB of its cluster, so a
    solid colour comes back exactly."""
    from skimage.color import rgb2lab
    from sklearn.cluster import KMeans

    small = img.convert("RGB")
    small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.NEAREST)
    rgb = np.asarray(small, dtype=np.uint8).reshape(-1, 3)
    # Distinct colours as one integer each (np.unique over rows sorts void records:
    # several times slower, and the API's /analyze-image pays it per request).
    codes = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    n = min(k, len(np.unique(codes)))
    if n == 1:
        labels = np.zeros(len(rgb), dtype=int)
    else:
        lab = rgb2lab(rgb.reshape(-1, 1, 3) / 255.0).reshape(-1, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fewer distinct colours than clusters
            labels = KMeans(n_clusters=n, n_init=4, random_state=0).fit_predict(lab)
    out = []
    for cluster in range(n):
        members = rgb[labels == cluster]
        if len(members) == 0:
            continue
        share = len(members) / len(rgb)
        if share < min_share:
            continue
        r, g, b = (int(round(c)) for c in members.mean(axis=0))
        out.append({"hex": f"#{r:02x}{g:02x}{b:02x}", "proportion": round(share, 4)})
    return sorted(out, key=lambda c: -c["proportion"])
