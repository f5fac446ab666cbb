"""Vectors as text vs in binary (pgvector's psycopg adapter), on the project's own paths.

    python bench/bench_vector_binary.py [--n 5000] [--queries 300] [--rounds 3] [--home DIR]

A scratch catalogue on the embedded server under ./.bench_home (or --home). Both forms run in the same
process on the same connections, interleaved round by round (the machine's load hits both
alike): storing N 512-d CLIP vectors with `store_embeddings`, and the visual nearest-
neighbour query (`nearest`, HNSW) for each of Q query vectors. "text" sends what
`to_pgvector` sent before (the `[x,...]` string `CAST(... AS vector)` parses); "binary"
sends pgvector's `Vector`, which the adapter writes in binary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

import media_assets.lib.db.vectors as vectors
import media_assets.lib.images.vectors as image_vectors
import media_assets.lib.search.legs as legs
from media_assets.lib.db import open_catalog
from media_assets.lib.settings import Settings

MODEL = "bench/binary@0"


def as_text(vec) -> str:  # the text form every vector travelled in before
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vec).tolist()) + "]"


def use(form: str) -> None:
    fn = as_text if form == "text" else vectors.to_pgvector
    for module in (image_vectors, legs):
        module.to_pgvector = fn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--home", default=".bench_home", help="where the scratch catalogue lives")
    args = ap.parse_args()
    catalog = open_catalog(Settings(home=Path(args.home).resolve()))
    engine = catalog.engine
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n + args.queries, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    base, queries = x[:args.n], x[args.n:]
    keys = [f"{i:016x}" for i in range(args.n)]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM media_files WHERE key = ANY(:k)"), {"k": keys})
        conn.execute(sa.text(
            "INSERT INTO media_files (key, sha256, size_bytes, primary_path) "
            "SELECT k, repeat(k, 4), 1, 'bench' FROM unnest(CAST(:k AS text[])) k"), {"k": keys})
    store_s: dict[str, list[float]] = {"text": [], "binary": []}
    query_ms: dict[str, list[float]] = {"text": [], "binary": []}
    for _ in range(args.rounds):
        for form in ("text", "binary"):
            use(form)
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM image_embeddings WHERE model_id = :m"),
                             {"m": MODEL})
            t = time.perf_counter()
            image_vectors.store_embeddings(engine, keys, base, MODEL)
            store_s[form].append(time.perf_counter() - t)
            from media_assets.lib.search.query import nearest
            for q in queries:
                t = time.perf_counter()
                nearest(engine, q, MODEL, k=10)
                query_ms[form].append((time.perf_counter() - t) * 1000)
    for form in ("text", "binary"):
        q = np.array(query_ms[form])
        print(f"{form:<6} store {args.n} vectors: median {np.median(store_s[form]):.2f} s "
              f"({args.rounds} rounds)   nearest(k=10): p50 {np.percentile(q, 50):.2f} ms "
              f"p95 {np.percentile(q, 95):.2f} ms over {len(q)} queries")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM media_files WHERE key = ANY(:k)"), {"k": keys})
    catalog.dispose()


if __name__ == "__main__":
    main()
