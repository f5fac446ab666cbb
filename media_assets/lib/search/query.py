"""One query, every leg, fused by relevance: what `media-assets search` and the SQL users get.

Fusion (README "Search"): each leg's hit contributes by how relevant it is on that leg's
own scale, never merely by being the leg's best:

- visual: the cosine similarity `s` of the query to an image or frame is compared with the
  query's similarity to the corpus (mean `mu`, spread `sigma`, from a sample of this model's
  vectors): `z = (s - mu) / sigma`. Below `z = 2` the hit contributes nothing; it rises
  linearly to a full 1.0 at `z = 5`. A random model, or a query about nothing in the
  library, gives no z that high, so unrelated nearest neighbours cannot outrank words.
- meaning: the query's sentence vector (the multilingual text model) against the text
  units (transcript moments, captions, answers, notes, JSON), calibrated per query too:
  E5's similarities sit high everywhere (related 0.85, unrelated 0.74), so a unit counts
  by its z against the query's similarity to ~65 everyday texts in many languages that
  stand for "unrelated" (`background.py`), from `z = 2` (nothing; about the 97th
  percentile of those texts) to `z = 3.5` (full). Not against a sample of the catalogue,
  as the visual leg does: in a library of ten memos the memo searched for is a tenth of
  that sample and hides itself. A query about nothing in the library lifts nothing.
  The clusters' names and descriptions are embedded too: their members count at half.
- lexical (speech, caption, answer, content, name, cluster): a match of all the words contributes at least
  0.6, and up to 1.0 for the leg's strongest (`ts_rank_cd` relative to the leg's best),
  times the leg's weight (speech 1.0, caption 0.9, name 0.8, answer 0.6, cluster 0.5: the
  hierarchy, tags and description of the file's cluster); a match of only
  some of the words (a transcript that misheard one) counts by the share of the query's
  words it has, at most half, but only when the meaning leg is off: with it on, the
  meaning of the whole query is the better judge, and one shared word ("tomorrow" in
  "withdraw cash tomorrow") put the wrong memo first in 2 of 6 cross-language queries
  (bench_search_quality: fused nDCG@10 0.911 -> 0.924, meaning alone 0.911). Such a
  hit still fills the list after the relevant ones.

A file, or a 5-second moment of a video, counts once per leg (the max over its frames or
segments, never the sum) and adds its legs. Meaning and visual hits that contribute
nothing still fill the list after every relevant hit: nearest in meaning (by z) first,
then nearest images.
"""

from __future__ import annotations

import unicodedata

from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from media_assets.lib.search import legs
from media_assets.lib.search.background import background_vectors
from media_assets.lib.search.filters import Filters

# A cluster match is evidence about the file's neighbourhood, not the file: it counts less.
WEIGHTS = {"visual": 1.0, "meaning": 1.0, "speech": 1.0, "content": 1.0, "caption": 0.9,
           "name": 0.8, "answer": 0.6, "cluster": 0.5,
           "text_in_picture": 0.9}  # OCR: what is written, as strong as a caption
# The order a hit's legs are listed in; the first one gives the hit its moment and text.
LEGS = ("speech", "content", "text_in_picture", "caption", "answer", "name", "cluster",
        "meaning", "visual")
Z_FLOOR, Z_FULL = 2.0, 5.0  # visual: no contribution below, full contribution above
MEANING_Z_FLOOR, MEANING_Z_FULL = 2.0, 3.5
CLUSTER_SHARE = 0.5  # a cluster's meaning counts as the cluster leg does against speech
LEXICAL_FLOOR = 0.6  # any word match counts at least this much
MOMENT_MS = 5000
MAX_QUERY_CHARS = 1000  # a longer "query" is a document; PostgreSQL would plan it for long


class QueryError(ValueError):
    """A query that cannot be searched: the message says why."""


def check_query(text: str) -> str:
    """The query with its white space made single, or QueryError. Invisible characters
    (direction marks, soft hyphens: Unicode's format characters; a zero-width space
    separates words) and U+FFFD (what a
    byte that was not UTF-8 became) say nothing, so a query of only those is empty; a lone
    surrogate is a terminal's byte that was not UTF-8 (Python's surrogateescape)."""
    if any("\ud800" <= ch <= "\udfff" for ch in text) or (
            "\ufffd" in text and not text.replace("\ufffd", "").strip()):
        raise QueryError("the query is not valid UTF-8 text: set the terminal (or the "
                         "client) to UTF-8 and type it again")
    text = " ".join("".join(
        " " if ch == "\u200b" else ch for ch in text if ch != "\ufffd" and (
            ch in "\u200b\u200c\u200d" or unicodedata.category(ch) != "Cf")).split())
    if not text:
        raise QueryError("empty query: say what to look for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query of {len(text)} characters; at most {MAX_QUERY_CHARS}")
    return text


@dataclass(frozen=True)
class Hit:
    key: str
    path: str
    kind: str
    distance: float  # cosine distance of the best visual match (2.0: no visual match)
    frame_ms: int = -1
    caption: str | None = None  # what matched: the segment, caption, answer or name
    source: str = "visual"  # the legs that found it, joined by "+"
    fused: float | None = None
    why: dict = field(default_factory=dict)  # leg -> {"score", "text", "at_s"}

    @property
    def score(self) -> float:
        return self.fused if self.fused is not None else 1.0 - self.distance


def _moment(h: legs.LegHit) -> tuple[str, int]:
    return h.key, (h.frame_ms // MOMENT_MS if h.frame_ms >= 0 else -1)


def visual_contribution(similarity: float, mean: float, std: float,
                        floor: float = Z_FLOOR, full: float = Z_FULL) -> float:
    if std <= 1e-6:
        return 0.0  # one vector, or all alike: no way to tell relevant from not
    z = (similarity - mean) / std
    return min(1.0, max(0.0, (z - floor) / (full - floor)))


def meaning_contribution(similarity: float, mean: float, std: float) -> float:
    return visual_contribution(similarity, mean, std, MEANING_Z_FLOOR, MEANING_Z_FULL)


def fuse(found: dict[str, list[legs.LegHit]], calibration: tuple[float, float],
         k: int, meaning_calibration: tuple[float, float] = (0.0, 0.0)) -> list[Hit]:
    """Fuse the legs' hits as the module docstring says; the best `k`."""
    moments: dict[tuple[str, int], dict] = {}
    meaning_on = meaning_calibration[1] > 1e-6  # the text model ran and is calibrated
    for leg, hits in found.items():
        best = max((h.strength for h in hits), default=0.0)
        for h in hits:
            if leg == "visual":
                c = visual_contribution(h.strength, *calibration)
            elif leg == "meaning":
                c = meaning_contribution(h.strength, *meaning_calibration)
                if (h.where or {}).get("source") == "cluster":
                    c *= CLUSTER_SHARE  # about the file's neighbourhood, not the file
            else:
                c = LEXICAL_FLOOR + (1 - LEXICAL_FLOOR) * (h.strength / best if best else 0)
                if h.partial:
                    c *= 0.0 if meaning_on else h.share
            m = moments.setdefault(_moment(h), {"hits": {}, "sim": None, "z": None})
            prev = m["hits"].get(leg)
            if prev is None or c > prev[0] or (c == prev[0] and h.strength > prev[1].strength):
                m["hits"][leg] = (c, h)  # the max over a moment's frames or segments
            if leg == "visual":
                m["sim"] = h.strength if m["sim"] is None else max(m["sim"], h.strength)
            if leg == "meaning" and meaning_calibration[1] > 1e-6:
                z = (h.strength - meaning_calibration[0]) / meaning_calibration[1]
                m["z"] = z if m["z"] is None else max(m["z"], z)
    out = []
    for m in moments.values():
        chosen = m["hits"]
        score = sum(WEIGHTS[leg] * c for leg, (c, _) in chosen.items())
        order = [leg for leg in LEGS if leg in chosen]
        lead = chosen[order[0]][1]
        why = {leg: {"score": round(WEIGHTS[leg] * c, 4), "text": h.text,
                     "at_s": h.frame_ms / 1000 if h.frame_ms >= 0 else None,
                     **(h.where or {})}
               for leg, (c, h) in chosen.items()}
        sim = m["sim"] if m["sim"] is not None else -1.0  # cosine similarity is >= -1
        # What fills the list after the relevant hits: nearest meaning, then nearest image.
        near = m["z"] if m["z"] is not None else float("-inf")
        out.append((score, (near, sim), Hit(
            lead.key, lead.path, lead.kind, 1.0 - sim if m["sim"] is not None else 2.0,
            lead.frame_ms, lead.text,
            "+".join(sorted(chosen, key=LEGS.index)),
            round(score, 6), why)))
    out.sort(key=lambda x: (-x[0], -x[1][0], -x[1][1], x[2].path, x[2].frame_ms))
    return [h for _, _, h in out[:k]]


def nearest(engine: sa.Engine, query: np.ndarray, model_ref: str, k: int = 10,
            kind: str | None = None, filters: Filters | None = None) -> list[Hit]:
    """The k nearest images and frames of this model's space (HNSW), nearest first."""
    hits, _ = legs.visual(engine, query, model_ref, k, filters or Filters(kind=kind),
                          calibrate=False)
    return [Hit(h.key, h.path, h.kind, 1.0 - h.strength, h.frame_ms, h.text) for h in hits]


@dataclass
class SearchResult:
    hits: list[Hit]
    model_ref: str  # the CLIP space searched, or "none"
    notes: list[str]  # why a leg was off


def search(engine: sa.Engine, manager, text: str, k: int = 10,
           kind: str | None = None, filters: Filters | None = None) -> SearchResult:
    """Every leg for one query, fused. Only CLIP and the text model are loaded for a query
    (and kept, so the next query does not load them again), never the captioner."""
    from media_assets.lib.models.clip import embed_texts
    from media_assets.lib.models.roles import Role

    text = check_query(text)
    filters = filters or Filters(kind=kind)
    found: dict[str, list[legs.LegHit]] = {}
    calibration, model_ref, notes = (0.0, 0.0), "none", []
    meaning_calibration = (0.0, 0.0)
    # A leg whose model is missing is off, and the result says why (the inventory's
    # message, with how to get the weights); the other legs answer.
    inventory = getattr(manager, "inventory", None)  # a bare manager (benchmarks): try

    def why_not(role: Role) -> str | None:
        return inventory.why_missing(role) if inventory is not None else None

    # The queries' vectors first, then every leg's SQL on one connection: a connection is
    # never held while a model works.
    meaning_query = visual_query = unrelated = None
    if (why := why_not(Role.TEXT)) is None:
        with manager.use(Role.TEXT) as embedder:
            meaning_query = embedder.query([text])[0]
            text_ref = embedder.model_ref
            unrelated = background_vectors(embedder)
    else:
        notes.append(f"search by meaning off: {why}")
    if filters.wants_pictures:
        if (why := why_not(Role.CLIP)) is None:
            with manager.use(Role.CLIP) as clip:
                visual_query = embed_texts(clip, [text])[0]
                model_ref = clip.model_ref
        else:
            notes.append(f"visual search off: {why}")
    # Read only, so no transaction: psycopg's BEGIN and the COMMIT are two round trips of
    # a search's six, each waiting for a busy core under load. The legs may then read
    # through a commit landing between them, which a ranking does not mind.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if meaning_query is not None:
            found["meaning"], meaning_calibration = legs.meaning(
                conn, meaning_query, text_ref, k * 4, filters, background=unrelated)
        if visual_query is not None:
            found["visual"], calibration = legs.visual(conn, visual_query, model_ref, k * 2,
                                                       filters)
        found.update(legs.lexical(conn, text, k * 2, filters))
    return SearchResult(fuse(found, calibration, k, meaning_calibration), model_ref, notes)


__all__ = ["Filters", "Hit", "QueryError", "SearchResult", "fuse", "nearest", "search"]
