"""CLIP vectors of images and video frames in pgvector: one row per (file, frame, model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from media_assets.lib.db.vectors import from_pgvector, to_pgvector


def embedded_keys(engine: sa.Engine, keys: Sequence[str], model_ref: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT DISTINCT key FROM image_embeddings WHERE key = ANY(:k) AND model_id = :m"),
            {"k": list(keys), "m": model_ref}).scalars())


def store_embeddings(engine: sa.Engine, keys: Sequence[str], vectors: np.ndarray,
                     model_ref: str, frame_ms: Sequence[int] | None = None,
                     conn: sa.Connection | None = None) -> int:
    """Upsert one row per (key, frame, model): re-running writes nothing twice. With `conn`,
    inside the caller's transaction (a video's vectors and frames commit together)."""
    frames = list(frame_ms) if frame_ms is not None else [-1] * len(keys)
    rows = [{"k": k, "f": f, "m": model_ref, "e": to_pgvector(v)}
            for k, f, v in zip(keys, frames, vectors)]
    if not rows:
        return 0
    sql = sa.text(
        "INSERT INTO image_embeddings (key, frame_ms, model_id, embedding) "
        "VALUES (:k, :f, :m, CAST(:e AS vector)) ON CONFLICT (key, frame_ms, model_id) "
        "DO UPDATE SET embedding = EXCLUDED.embedding, created_at = now()")
    if conn is not None:
        conn.execute(sql, rows)
    else:
        with engine.begin() as own:
            own.execute(sql, rows)
    return len(rows)


def stored_vector(engine: sa.Engine, key: str, model_ref: str) -> np.ndarray | None:
    with engine.connect() as conn:
        raw = conn.execute(sa.text(
            "SELECT embedding::text FROM image_embeddings WHERE key = :k AND model_id = :m "
            "AND frame_ms = -1"), {"k": key, "m": model_ref}).scalar()
    return None if raw is None else from_pgvector(raw)


def bad_vectors(engine: sa.Engine, keys: Sequence[str], model_ref: str) -> list[str]:
    """Keys whose stored vectors are not 512-d and L2-normalised (what search assumes)."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT DISTINCT key FROM image_embeddings WHERE key = ANY(:k) AND model_id = :m "
            "AND (vector_dims(embedding) <> 512 OR abs(vector_norm(embedding) - 1) > 1e-3)"),
            {"k": list(keys), "m": model_ref}).scalars())
