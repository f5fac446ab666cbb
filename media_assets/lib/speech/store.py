"""Transcripts in the catalog (searched by lib/search/legs.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from media_assets.lib.speech.transcribe import Transcript

# Whisper language codes -> PostgreSQL text search configurations shipped with PostgreSQL.
PG_TS_CONFIG = {"ar": "arabic", "ca": "catalan", "da": "danish", "de": "german",
                "el": "greek", "en": "english", "es": "spanish", "eu": "basque",
                "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi",
                "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian",
                "lt": "lithuanian", "ne": "nepali", "nl": "dutch", "no": "norwegian",
                "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
                "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish"}


def store_transcript(engine: sa.Engine, key: str, t: Transcript, model_id: str,
                     word_timestamps: bool) -> None:
    """Replace the transcript and its segments atomically."""
    config = PG_TS_CONFIG.get(t.language or "", "simple")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM transcripts WHERE key = :k"), {"k": key})
        conn.execute(sa.text(
            "INSERT INTO transcripts (key, model_id, language, language_probability, text, "
            " duration_s, processing_time_ms, word_timestamps, language_candidates) VALUES "
            " (:k, :m, :l, :p, :t, :d, :ms, :w, CAST(:c AS jsonb))"),
            {"k": key, "m": model_id, "l": t.language, "p": t.language_probability,
             "t": t.text, "d": t.duration_s, "ms": t.processing_time_ms, "w": word_timestamps,
             "c": json.dumps(t.language_candidates) if t.language_candidates else None})
        if t.segments:
            conn.execute(sa.text(
                "INSERT INTO transcript_segments (key, idx, start_s, end_s, text, words, "
                " ts_config) VALUES (:k, :i, :s, :e, :t, CAST(:w AS jsonb), "
                " CAST(:c AS regconfig))"),
                [{"k": key, "i": i, "s": s.start, "e": max(s.end, s.start), "t": s.text,
                  "w": json.dumps(s.words) if s.words is not None else None, "c": config}
                 for i, s in enumerate(t.segments)])


def transcript_of(engine: sa.Engine, key: str) -> dict | None:
    """The transcribe response (docs/contracts.md), read back from the catalog."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM transcripts WHERE key = :k"),
                           {"k": key}).mappings().first()
        if row is None:
            return None
        segs = conn.execute(sa.text(
            "SELECT start_s, end_s, text, words FROM transcript_segments WHERE key = :k "
            "ORDER BY idx"), {"k": key}).all()
    return {"text": row["text"], "language": row["language"],
            "language_probability": row["language_probability"],
            "language_candidates": row["language_candidates"],
            "segments": [{"start": s.start_s, "end": s.end_s, "text": s.text,
                          **({"words": s.words} if s.words is not None else {})} for s in segs],
            "processing_time_ms": row["processing_time_ms"]}


def timestamps_beyond_duration(engine: sa.Engine, keys: Sequence[str],
                               slack_s: float = 1.0) -> list[str]:
    """Keys with a segment that ends after the audio does (a decoder or model fault)."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT DISTINCT s.key FROM transcript_segments s JOIN transcripts t USING (key) "
            "WHERE s.key = ANY(:k) AND t.duration_s > 0 AND s.end_s > t.duration_s + :slack"),
            {"k": list(keys), "slack": slack_s}).scalars())
