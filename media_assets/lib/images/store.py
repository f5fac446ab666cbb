"""Image analysis rows and near-duplicate pairs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from media_assets.lib.images.analysis import Analysis
from media_assets.lib.db.vectors import tune_hnsw

DUPLICATE_DISTANCE = 0.01  # cosine distance, as Immich's default


def store_analysis(engine: sa.Engine, rows: Sequence[tuple[str, Analysis]]) -> int:
    params = []
    for key, a in rows:
        d = asdict(a)
        params.append({**d, "key": key, "answers": json.dumps(d["answers"]),
                       "objects": json.dumps(d["objects"]),
                       "dominant_colors": json.dumps(d["dominant_colors"])})
    if not params:
        return 0
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO image_analysis (key, caption, answers, objects, scene_type, "
            " scene_confidence, dominant_colors, captioner_model, clip_model, degraded, "
            " degraded_reason, processing_time_ms) VALUES (:key, :caption, "
            " CAST(:answers AS jsonb), CAST(:objects AS jsonb), :scene_type, :scene_confidence,"
            " CAST(:dominant_colors AS jsonb), :captioner_model, :clip_model, :degraded, "
            " :degraded_reason, :processing_time_ms) "
            "ON CONFLICT (key) DO UPDATE SET caption = EXCLUDED.caption, "
            " answers = EXCLUDED.answers, objects = EXCLUDED.objects, "
            " scene_type = EXCLUDED.scene_type, scene_confidence = EXCLUDED.scene_confidence, "
            " dominant_colors = EXCLUDED.dominant_colors, "
            " captioner_model = EXCLUDED.captioner_model, clip_model = EXCLUDED.clip_model, "
            " degraded = EXCLUDED.degraded, degraded_reason = EXCLUDED.degraded_reason, "
            " processing_time_ms = EXCLUDED.processing_time_ms, analysed_at = now()"), params)
    return len(params)


def analysis_of(engine: sa.Engine, keys: Sequence[str]) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT key, caption, answers, objects, scene_type, dominant_colors, degraded, "
            "degraded_reason, processing_time_ms FROM image_analysis WHERE key = ANY(:k)"),
            {"k": list(keys)}).all()
    return {r.key: dict(r._mapping) for r in rows}


def record_near_duplicates(engine: sa.Engine, keys: Sequence[str], model_ref: str,
                           max_distance: float = DUPLICATE_DISTANCE, k: int = 20) -> int:
    """For each key, its neighbours within `max_distance` (through the HNSW index)."""
    with engine.begin() as conn:
        tune_hnsw(conn)
        found = conn.execute(sa.text(
            "INSERT INTO near_duplicates (key_a, key_b, model_id, distance) "
            # a->b and b->a are one pair: keep it once
            "SELECT least(q.key, n.key), greatest(q.key, n.key), :m, min(n.distance) "
            "FROM image_embeddings q CROSS JOIN LATERAL ("
            "  SELECT e.key, e.embedding <=> q.embedding AS distance FROM image_embeddings e"
            "  WHERE e.model_id = :m AND e.frame_ms = -1"
            "  ORDER BY e.embedding <=> q.embedding LIMIT :k) n "
            "WHERE q.key = ANY(:keys) AND q.model_id = :m AND q.frame_ms = -1 "
            "  AND n.key <> q.key AND n.distance <= :d "
            "GROUP BY 1, 2 "
            "ON CONFLICT (key_a, key_b, model_id) DO UPDATE SET distance = EXCLUDED.distance "
            "RETURNING 1"),
            {"m": model_ref, "keys": list(keys), "k": k, "d": max_distance}).all()
    return len(found)


def near_duplicate_pairs(engine: sa.Engine, limit: int = 1000) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT d.key_a, d.key_b, d.distance, fa.primary_path AS path_a, "
            "fb.primary_path AS path_b, d.model_id FROM near_duplicates d "
            "JOIN media_files fa ON fa.key = d.key_a JOIN media_files fb ON fb.key = d.key_b "
            "ORDER BY d.distance, d.key_a LIMIT :lim"), {"lim": limit}).all()
    return [dict(r._mapping) for r in rows]
