"""pgvector helpers shared by every domain that stores or searches CLIP vectors."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

# recall@10 on 100k clustered 512-d vectors: 0.93 at pgvector's default of 40, 0.98 at 100,
# at the same p50 (bench/bench_search.py; README "Benchmarks").
EF_SEARCH = 100


def to_pgvector(vec: np.ndarray) -> str:
    """pgvector's text form; `CAST(:v AS vector)` reads it back."""
    return "[" + ",".join(f"{x:.7g}" for x in vec.tolist()) + "]"


def from_pgvector(raw: str) -> np.ndarray:
    return np.array(raw.strip("[]").split(","), dtype=np.float32)


def tune_hnsw(conn) -> None:
    """Per-transaction HNSW settings for recall: ef_search for the candidate list, and
    iterative scans so a filter (model, kind) still yields k rows."""
    conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
    conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
