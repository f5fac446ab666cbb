"""A synthetic CLIP-like corpus with known clusters and noise, for tests and the bench.

Realistic in the ways that matter to clustering: every vector shares a common direction
(CLIP image embeddings of unrelated photos still have cosine ~0.3 to each other), cluster
sizes follow a heavy tail (a few big events, many small ones), members sit at cosine
0.8-0.9 to their centre, and 10 % of the points are unrelated one-offs.
"""

from __future__ import annotations

import numpy as np


def corpus(n: int, dim: int = 512, clusters: int | None = None, noise: float = 0.1,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, true labels with -1 for noise)."""
    rng = np.random.default_rng(seed)
    k = clusters or max(10, n // 500)
    common = rng.normal(size=dim)
    common /= np.linalg.norm(common)

    def sphere(m: int) -> np.ndarray:
        v = rng.normal(size=(m, dim))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    centres = unit(0.55 * common + 0.835 * sphere(k))
    n_noise = int(n * noise)
    n_members = n - n_noise
    weights = np.clip(rng.zipf(1.6, size=k), 1, 50).astype(float)
    sizes = np.maximum((weights / weights.sum() * n_members).astype(int), 1)
    sizes[np.argmax(sizes)] += n_members - sizes.sum()
    parts, labels = [], []
    for i, size in enumerate(sizes):
        spread = rng.uniform(0.55, 0.75)
        parts.append(unit(centres[i] + spread * sphere(size)))
        labels += [i] * size
    parts.append(unit(0.55 * common + 0.835 * sphere(n_noise)))
    labels += [-1] * n_noise
    order = rng.permutation(n)
    return np.vstack(parts).astype(np.float32)[order], np.array(labels)[order]
