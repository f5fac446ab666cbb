"""Search: the visual leg (CLIP vectors through HNSW), and fusing it with the spoken leg."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import sqlalchemy as sa

from media_assets.lib.db.vectors import to_pgvector, tune_hnsw

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)


@dataclass(frozen=True)
class Hit:
    key: str
    path: str
    kind: str
    distance: float
    frame_ms: int = -1
    caption: str | None = None
    source: str = "visual"  # "visual" (CLIP) or "speech" (full-text over transcripts)
    fused: float | None = None

    @property
    def score(self) -> float:
        return self.fused if self.fused is not None else 1.0 - self.distance


def fuse(visual: Sequence[Hit], speech: Sequence[Hit], k: int) -> list[Hit]:
    """Merge two ranked lists by reciprocal rank fusion: score = sum of 1/(60 + rank).

    Cosine similarities and ts_rank values live on different scales; ranks do not. A file
    found by both (same file, timestamps within 5 s, or a still image) adds both terms.
    """
    scored: dict[tuple, tuple[float, Hit]] = {}
    for hits in (visual, speech):
        for rank, h in enumerate(hits, 1):
            bucket = (h.key, h.frame_ms // 5000 if h.frame_ms >= 0 else -1)
            prev = scored.get(bucket)
            total = (prev[0] if prev else 0.0) + 1.0 / (RRF_K + rank)
            keep = prev[1] if prev else h
            if prev and keep.source != h.source:
                # Found by both: show the spoken segment (its time and words matched).
                spoken = h if h.source == "speech" else keep
                keep = replace(spoken, source="visual+speech")
            scored[bucket] = (total, keep)
    # On a tie, words actually spoken beat a visual likeness.
    ranked = sorted(scored.values(), key=lambda x: (-x[0], "speech" not in x[1].source))[:k]
    return [replace(h, fused=round(score, 6)) for score, h in ranked]


def nearest(engine: sa.Engine, query: np.ndarray, model_ref: str, k: int = 10,
            kind: str | None = None) -> list[Hit]:
    """The k nearest vectors of this model's space, through the HNSW index."""
    with engine.begin() as conn:
        tune_hnsw(conn)
        rows = conn.execute(sa.text(
            "SELECT s.key, s.frame_ms, s.path, s.distance, f.kind, a.caption "
            "FROM search_images(CAST(:q AS vector), :m, :lim) s "
            "JOIN media_files f ON f.key = s.key "
            "LEFT JOIN image_analysis a ON a.key = s.key AND s.frame_ms = -1 "
            "WHERE CAST(:kind AS text) IS NULL OR f.kind = :kind "
            "ORDER BY s.distance LIMIT :k"),
            {"q": to_pgvector(query), "m": model_ref, "k": k, "kind": kind,
             "lim": k if kind is None else k * 4}).all()
    return [Hit(r.key, r.path, r.kind, float(r.distance), r.frame_ms, r.caption) for r in rows]


MAX_QUERY_CHARS = 1000  # a longer "query" is a document; PostgreSQL would plan it for long


class QueryError(ValueError):
    """A query that cannot be searched: the message says why."""


def check_query(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise QueryError("empty query: say what to look for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query of {len(text)} characters; at most {MAX_QUERY_CHARS}")
    return text


@dataclass
class SearchResult:
    hits: list[Hit]
    model_ref: str  # the CLIP space searched, or "none"
    notes: list[str]  # why a leg was off


def search(engine: sa.Engine, manager, config, text: str, k: int = 10,
           kind: str | None = None) -> SearchResult:
    """Both legs for one query, fused: the text's CLIP vector against images and frames,
    and full-text over transcripts. Only CLIP is loaded for a query, never the captioner."""
    from media_assets.lib.models.clip import embed_texts
    from media_assets.lib.models.locate import ModelNotFound
    from media_assets.lib.models.roles import Role
    from media_assets.lib.speech.store import search_speech

    text = check_query(text)
    visual, model_ref, notes = [], "none", []
    if kind != "audio":
        try:
            with manager.use(Role.CLIP) as clip:
                query = embed_texts(clip, [text])[0]
                model_ref = clip.model_ref
            visual = nearest(engine, query, model_ref, k=k * 2, kind=kind)
        except ModelNotFound as exc:
            notes.append(f"visual search off: {exc}")
    speech = [Hit(h.key, h.path, h.kind, 0.0, int(h.start_s * 1000), h.text, "speech")
              for h in search_speech(engine, text, k=k * 2, kind=kind)]
    return SearchResult(fuse(visual, speech, k), model_ref, notes)
