"""Density clustering of unit vectors that keeps noise as noise, fast enough for 50k x 512.

Chosen by measurement (bench/bench_clusters.py, 2 cores): HDBSCAN straight on 512-d takes
81 s for 10k vectors and over 5 min for 50k, because its space trees are useless that high.
PCA to 50-d first is fast, but it drops the directions in which unrelated photos differ, so
all the true noise collapses into one dense blob at the centre, which HDBSCAN calls a
cluster (noise kept: 0 %). Here HDBSCAN runs instead on a sparse graph of each vector's
exact 15 nearest neighbours, found by a blocked matrix product (BLAS, via torch) in the
space reduced only to 128-d. Noise points then stay far from everything, as they are.
HDBSCAN's condensed tree and excess-of-mass selection are the `hdbscan` package's, given the
sparse graph as a precomputed distance matrix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 15
REDUCE_TO = 128  # PCA dims, past REDUCE_ABOVE vectors
REDUCE_ABOVE = 20_000  # below this the k-NN in full 512-d takes a few seconds: no reduction
BLOCK_BYTES = 256 * 1024 * 1024  # similarity block size: bounded memory whatever n is


@dataclass
class Clustering:
    labels: np.ndarray  # one per row; -1 is noise ("unsorted")
    seconds: float
    method: str

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


def reduce(x: np.ndarray, dims: int = REDUCE_TO) -> np.ndarray:
    """PCA to `dims` (when that is a reduction), re-normalised."""
    if x.shape[1] <= dims or len(x) <= dims:
        return _unit(x)
    from sklearn.decomposition import PCA

    return _unit(PCA(dims, svd_solver="randomized", random_state=0).fit_transform(x))


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of unit vectors (self excluded): chord distances, indices."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n = len(t)
    dist = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    step = max(64, BLOCK_BYTES // (4 * n))
    with torch.inference_mode():
        for s in range(0, n, step):
            sims = t[s:s + step] @ t.T
            rows = torch.arange(s, min(s + step, n))
            sims[rows - s, rows] = -2.0  # never one's own neighbour (duplicates still are)
            v, i = torch.topk(sims, k, dim=1)
            dist[s:s + step] = torch.sqrt(torch.clamp(2 - 2 * v, min=0)).numpy()
            idx[s:s + step] = i.numpy()
    return dist, idx


def _graph(dist: np.ndarray, idx: np.ndarray):
    """The symmetric k-NN graph, made one component (HDBSCAN's sparse path needs one) by
    edges just longer than the longest real one. Not at the maximum distance (2.0): a
    component born that early would look so stable that excess-of-mass selection keeps it
    whole (measured: 2 clusters instead of 20)."""
    from scipy import sparse
    from scipy.sparse import csgraph

    n, k = dist.shape
    # A zero distance (an exact duplicate) would vanish from a sparse matrix.
    data = np.maximum(dist.ravel(), 1e-6)
    g = sparse.csr_matrix((data, (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    g = g.maximum(g.T).tocsr()
    count, comp = csgraph.connected_components(g, directed=False)
    if count > 1:
        first = np.unique(comp, return_index=True)[1]
        bridge = sparse.csr_matrix((np.full(count - 1, float(data.max()) * 1.01), (first[:-1], first[1:])),
                                   shape=(n, n))
        g = (g + bridge + bridge.T).tocsr()
    return g


def cluster_vectors(x: np.ndarray, min_cluster_size: int = 5, min_samples: int | None = None,
                    neighbours: int = NEIGHBOURS, reduce_to: int = REDUCE_TO) -> Clustering:
    """Labels for rows of `x` (any scale; rows are normalised). Fewer rows than two
    clusters' worth are all noise: nothing to find."""

    start = time.perf_counter()
    n = len(x)
    min_samples = min_samples or min_cluster_size
    if n < max(2 * min_cluster_size, min_samples + 2, 3):
        return Clustering(np.full(n, -1), time.perf_counter() - start, "too few vectors")
    # Reduction costs some noise (unrelated points look alike in fewer dimensions: 80 % of
    # the noise kept at 10k in 128-d against 97 % in 512-d), so only when n needs speed.
    z = (reduce(np.asarray(x, dtype=np.float32), reduce_to) if n > REDUCE_ABOVE
         else _unit(np.asarray(x, dtype=np.float32)))
    k = min(max(neighbours, min_samples), n - 1)
    dist, idx = knn(z, k)
    labels = _hdbscan_on_graph(dist, idx, min_cluster_size, min(min_samples, k))
    return Clustering(labels, time.perf_counter() - start,
                      f"hdbscan on a {k}-NN graph, {z.shape[1]}-d")


def _hdbscan_on_graph(dist: np.ndarray, idx: np.ndarray, min_cluster_size: int,
                      min_samples: int) -> np.ndarray:
    """HDBSCAN (excess of mass) over the k-NN graph. Mutual reachability and the spanning
    tree are computed here with numpy and scipy, vectorised: the `hdbscan` package's sparse
    path does the same per element in Python (10 s of 25 at 50k). The tree is handed to
    its labelling, condensing and selection (`label`, `_tree_to_labels`: private in
    hdbscan 0.8.44, pinned; bench and tests would catch a change)."""
    from hdbscan._hdbscan_linkage import label
    from hdbscan.hdbscan_ import _tree_to_labels
    from scipy.sparse import csgraph

    g = _graph(dist, idx)
    # Exact k-NN rows are sorted, so the core distance is the min_samples-th neighbour's
    # (a reverse edge shorter than that would have been among the k nearest).
    core = dist[:, min_samples - 1].astype(np.float64)
    rows = np.repeat(np.arange(g.shape[0]), np.diff(g.indptr))
    g.data = np.maximum(np.maximum(core[rows], core[g.indices]), g.data)
    mst = csgraph.minimum_spanning_tree(g).tocoo()
    edges = np.column_stack([mst.row, mst.col, mst.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    labels = _tree_to_labels(None, label(edges), min_cluster_size)[0]
    return np.asarray(labels)


def direct_hdbscan(x: np.ndarray, min_cluster_size: int = 5,
                   min_samples: int | None = None) -> Clustering:
    """The baseline the bench compares with: HDBSCAN on the raw vectors."""
    import hdbscan

    start = time.perf_counter()
    labels = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size,
                             min_samples=min_samples or min_cluster_size,
                             core_dist_n_jobs=-1).fit_predict(_unit(x))
    return Clustering(np.asarray(labels), time.perf_counter() - start, "hdbscan direct")


def centroid(x: np.ndarray) -> np.ndarray:
    c = np.asarray(x, dtype=np.float32).mean(axis=0)
    return c / (np.linalg.norm(c) or 1.0)


def central_order(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row order, most central first; each row's cosine similarity to the centroid)."""
    sims = _unit(x) @ centroid(x)
    return np.argsort(-sims, kind="stable"), sims


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def match_ids(old: dict[int, set], new: list[set], min_jaccard: float = 0.5) -> dict[int, int]:
    """new index -> old id, for pairs whose member overlap (Jaccard) is at least
    `min_jaccard`, best pairs first, each side used once. A cluster that mostly kept its
    members keeps its id (and its labels); a split keeps it for the larger part."""
    owner: dict = {}
    for oid, members in old.items():
        for m in members:
            owner[m] = oid
    pairs = []
    for j, members in enumerate(new):
        candidates = {owner[m] for m in members if m in owner}
        for oid in candidates:
            score = jaccard(old[oid], members)
            if score >= min_jaccard:
                pairs.append((score, j, oid))
    out, used = {}, set()
    for score, j, oid in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if j not in out and oid not in used:
            out[j] = oid
            used.add(oid)
    return out
