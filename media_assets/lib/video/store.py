"""A video's frame timeline and summary in the catalog."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa


def store_frames(engine: sa.Engine, key: str, frames: Sequence[dict],
                 conn: sa.Connection | None = None) -> None:
    """Replace a video's frame rows; with `conn`, inside the caller's transaction."""
    if conn is None:
        with engine.begin() as own:
            return store_frames(engine, key, frames, own)
    conn.execute(sa.text("DELETE FROM video_frames WHERE key = :k"), {"k": key})
    if frames:
        conn.execute(sa.text(
            "INSERT INTO video_frames (key, frame_ms, reason, caption, scene_type, objects) "
            "VALUES (:key, :frame_ms, :reason, :caption, :scene_type, CAST(:objects AS jsonb))"),
            [{**f, "key": key, "objects": json.dumps(f.get("objects", []))} for f in frames])
    return None


def frames_of(engine: sa.Engine, key: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT frame_ms, reason, caption, scene_type, objects FROM video_frames "
            "WHERE key = :k ORDER BY frame_ms"), {"k": key})]


def store_summary(engine: sa.Engine, key: str, summary: str, timeline: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO video_summaries (key, summary, timeline) VALUES (:k, :s, "
            "CAST(:t AS jsonb)) ON CONFLICT (key) DO UPDATE SET summary = EXCLUDED.summary, "
            "timeline = EXCLUDED.timeline, created_at = now()"),
            {"k": key, "s": summary, "t": json.dumps(timeline)})
