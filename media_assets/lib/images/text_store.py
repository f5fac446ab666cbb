"""Text read in pictures, in the catalog (searched by the `text_in_picture` leg)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from media_assets.lib.images.ocr import TS_CONFIG, PictureText


def store_picture_text(engine: sa.Engine, key: str, model_id: str,
                       reads: Sequence[tuple[int, int | None, PictureText]],
                       frames_read: int = 1, note: str | None = None,
                       built_on_it: Sequence[str] = ()) -> None:
    """Replace a file's text atomically. `reads`: (frame_ms, until_ms, text) with frame_ms
    -1 for an image; only reads with text get a row; the file's summary row always. When
    the text changed, the file's results of the assets `built_on_it` (the search by
    meaning's vectors) are dropped, so the planner runs them for it again."""
    with_text = [(ms, until, t) for ms, until, t in reads if t.lines]
    chars = sum(len(t.text) for _, _, t in with_text)
    is_document = any(t.is_document for _, _, t in with_text)
    area = max((t.text_area for _, _, t in with_text), default=0.0)
    notes = [n for n in [note, *(t.note for _, _, t in reads if len(reads) == 1)] if n]
    if not with_text and not any("no text" in n for n in notes):
        notes.append("no text found")
    with engine.begin() as conn:
        before = conn.execute(sa.text(
            "SELECT frame_ms, text FROM picture_texts WHERE key = :k ORDER BY frame_ms"),
            {"k": key}).all() if built_on_it else []
        if built_on_it and [tuple(r) for r in before] != sorted(
                (ms, t.text) for ms, _, t in with_text):
            conn.execute(sa.text("DELETE FROM file_asset_results WHERE key = :k "
                                 "AND asset = ANY(:a)"), {"k": key, "a": list(built_on_it)})
        conn.execute(sa.text("DELETE FROM picture_texts WHERE key = :k"), {"k": key})
        conn.execute(sa.text("DELETE FROM picture_text_files WHERE key = :k"), {"k": key})
        conn.execute(sa.text(
            "INSERT INTO picture_text_files (key, model_id, is_document, text_area, chars, "
            " frames_read, note) VALUES (:k, :m, :d, :a, :c, :f, :n)"),
            {"k": key, "m": model_id, "d": is_document, "a": round(area, 4), "c": chars,
             "f": frames_read, "n": "; ".join(notes) or None})
        if with_text:
            conn.execute(sa.text(
                "INSERT INTO picture_texts (key, frame_ms, until_ms, text, lines, language, "
                " ts_config) VALUES (:k, :ms, :u, :t, CAST(:l AS jsonb), :lang, "
                " CAST(:c AS regconfig))"),
                [{"k": key, "ms": ms, "u": until, "t": t.text,
                  "l": json.dumps([line.as_dict() for line in t.lines]), "lang": t.language,
                  "c": TS_CONFIG.get(t.language or "", "simple")} for ms, until, t in with_text])


def picture_text_of(engine: sa.Engine, key: str) -> dict | None:
    """A file's text: document flag, note, and each read (frame, text, lines, language);
    None when `image_text` has not run for it."""
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT * FROM picture_text_files WHERE key = :k"),
                            {"k": key}).mappings().first()
        if head is None:
            return None
        rows = conn.execute(sa.text(
            "SELECT frame_ms, until_ms, text, lines, language FROM picture_texts "
            "WHERE key = :k ORDER BY frame_ms"), {"k": key}).mappings().all()
    return {"is_document": head["is_document"], "text_area": head["text_area"],
            "chars": head["chars"], "frames_read": head["frames_read"], "note": head["note"],
            "model_id": head["model_id"],
            "texts": [{"frame_ms": r["frame_ms"] if r["frame_ms"] >= 0 else None,
                       "until_ms": r["until_ms"], "text": r["text"], "language": r["language"],
                       "lines": r["lines"]} for r in rows]}


def documents(engine: sa.Engine, limit: int = 100) -> list[dict]:
    """Files recognised as documents or screenshots, the most text first."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT p.key, f.primary_path AS path, p.chars, p.text_area FROM picture_text_files p "
            "JOIN media_files f ON f.key = p.key WHERE p.is_document "
            "ORDER BY p.chars DESC LIMIT :n"), {"n": limit}).mappings()]
