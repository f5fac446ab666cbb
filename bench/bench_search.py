"""Search latency (p50/p95) and recall@10 against an exact scan, on clustered unit vectors.

    python bench/bench_search.py [--n 100000] [--queries 200]

Uses the project's own table, index and query (`lib.search.nearest`) on a scratch database
of the embedded server under ./.bench_home. Random (unclustered) vectors are pathological
for HNSW (recall ~0.05), so the data is 1000 Gaussian clusters, as image embeddings are.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from media_assets.lib.db import open_catalog
from media_assets.lib.search.query import nearest
from media_assets.lib.settings import Settings

MODEL = "bench/clustered@0"


def clustered(n: int, dim: int = 512, clusters: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + 1.0 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def load(engine, vectors: np.ndarray) -> float:
    start = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("TRUNCATE media_files CASCADE")
        buf = io.StringIO()
        for i in range(len(vectors)):
            buf.write(f"{i:016x}\t{i:064x}\t1\tbench\n")
        with cur.copy("COPY media_files (key, sha256, size_bytes, primary_path) FROM STDIN") as cp:
            cp.write(buf.getvalue())
        cur.execute("DROP INDEX IF EXISTS image_embeddings_hnsw")
        with cur.copy("COPY image_embeddings (key, model_id, embedding) FROM STDIN") as cp:
            for i, v in enumerate(vectors):
                cp.write(f"{i:016x}\t{MODEL}\t[{','.join(f'{x:.6f}' for x in v)}]\n")
        raw.commit()
        t = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("CREATE INDEX image_embeddings_hnsw ON image_embeddings USING hnsw "
                    "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        cur.execute("ANALYZE image_embeddings")
        raw.commit()
        print(f"loaded {len(vectors)} vectors in {t - start:.1f} s, HNSW built in "
              f"{time.perf_counter() - t:.1f} s")
    finally:
        raw.close()
    return time.perf_counter() - start


def exact(engine, q: np.ndarray, k: int) -> list[str]:
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_indexscan = off"))
        return list(conn.execute(sa.text(
            "SELECT key FROM image_embeddings WHERE model_id = :m "
            "ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"),
            {"m": MODEL, "q": "[" + ",".join(map(str, q.tolist())) + "]", "k": k}).scalars())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    settings = Settings(home=Path(".bench_home").resolve())
    catalog = open_catalog(settings)
    data = clustered(args.n + args.queries)
    base, queries = data[: args.n], data[args.n:]
    load(catalog.engine, base)
    import media_assets.lib.db.vectors as vectors

    truth = [exact(catalog.engine, q, 10) for q in queries]
    t = time.perf_counter()
    [exact(catalog.engine, q, 10) for q in queries[:20]]
    exact_ms = (time.perf_counter() - t) / 20 * 1000
    print(f"exact scan: {exact_ms:.1f} ms per query")
    for ef in (40, 100):
        vectors.EF_SEARCH = ef
        lat, recalls = [], []
        for q, want in zip(queries, truth):
            t = time.perf_counter()
            hits = nearest(catalog.engine, q, MODEL, k=10)
            lat.append((time.perf_counter() - t) * 1000)
            recalls.append(len({h.key for h in hits} & set(want)) / 10)
        lat_a = np.array(lat)
        print(f"HNSW ef_search={ef:<4} p50 {np.percentile(lat_a, 50):.1f} ms  "
              f"p95 {np.percentile(lat_a, 95):.1f} ms  recall@10 {np.mean(recalls):.3f}  "
              f"(queries with recall 0: {sum(r == 0 for r in recalls)})  "
              f"speed-up vs exact {exact_ms / np.percentile(lat_a, 50):.1f}x")
    fused_latency(catalog.engine)
    catalog.dispose()


def fused_latency(engine, queries: int = 60) -> None:
    """`media-assets search` end to end in one warm process: CLIP ViT-B-32 text encoding
    (random weights: the real model's compute), the visual leg with its calibration, the
    four lexical legs, and the fusion."""
    import open_clip

    from media_assets.lib.models.loaders import ClipBundle
    from media_assets.lib.models.manager import ModelManager, ModelSpec
    from media_assets.lib.search.query import search

    def load():
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
        model.eval()
        return ClipBundle(model, preprocess, open_clip.get_tokenizer("ViT-B-32"), "cpu", MODEL)

    manager = ModelManager(4000, "cpu")
    manager.register(ModelSpec("clip", load, 600))
    words = ["cat", "beach at sunset", "a red car", "birthday party", "mountains in snow",
             "plate of food", "dog running", "city at night", "old bridge", "tomatoes"]
    search(engine, manager, "warm up", 10)  # the model stays loaded between queries
    lat = []
    for i in range(queries):
        t = time.perf_counter()
        search(engine, manager, f"{words[i % len(words)]} {i}", 10)
        lat.append((time.perf_counter() - t) * 1000)
    lat_a = np.array(lat)
    print(f"fused search incl. CLIP text encoding, warm: p50 {np.percentile(lat_a, 50):.1f} ms  "
          f"p95 {np.percentile(lat_a, 95):.1f} ms over {queries} queries")


if __name__ == "__main__":
    main()
