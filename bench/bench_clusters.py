"""Clustering time, ARI and noise kept, for our method against HDBSCAN on the raw vectors.

    python bench/bench_clusters.py [--sizes 10000 50000] [--direct-max 10000] [--mcs 10]

On a synthetic CLIP-like corpus with known clusters and 10 % unrelated one-offs
(`lib/clusters/synthetic.py`). Direct HDBSCAN on 512-d takes over 5 minutes at 50k on two
cores; it runs only up to --direct-max vectors (give 50000 to measure it there too), and
the ratio is printed wherever both ran. Also prints PCA-50 + HDBSCAN, the usual shortcut,
to show why it is not used (the noise collapses into a cluster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from media_assets.lib.clusters.method import cluster_vectors, direct_hdbscan, reduce
from media_assets.lib.clusters.synthetic import corpus


def score(name: str, n: int, truth: np.ndarray, labels: np.ndarray, seconds: float) -> float:
    noise = truth == -1
    print(f"{n:>7} {name:<34} {seconds:8.1f}s  ARI {adjusted_rand_score(truth, labels):.3f}  "
          f"noise kept {(labels[noise] == -1).mean():6.1%}  clusters {labels.max() + 1:4d} "
          f"(true {truth.max() + 1})", flush=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    ap.add_argument("--direct-max", type=int, default=10000)
    ap.add_argument("--mcs", type=int, default=10)
    args = ap.parse_args()
    import torch

    print(f"torch threads {torch.get_num_threads()}; min_cluster_size {args.mcs}")
    for n in args.sizes:
        x, truth = corpus(n)
        ours = cluster_vectors(x, args.mcs)
        t_ours = score("ours: hdbscan on exact k-NN graph", n, truth, ours.labels, ours.seconds)
        start = time.perf_counter()
        import hdbscan

        z = reduce(x, 50)
        pca = hdbscan.HDBSCAN(min_cluster_size=args.mcs, core_dist_n_jobs=-1).fit_predict(z)
        score("PCA-50 + hdbscan", n, truth, pca, time.perf_counter() - start)
        if n <= args.direct_max:
            direct = direct_hdbscan(x, args.mcs)
            t_direct = score("hdbscan direct on 512-d", n, truth, direct.labels, direct.seconds)
            print(f"{n:>7} speed-up over direct: {t_direct / t_ours:.1f}x", flush=True)


if __name__ == "__main__":
    main()
