"""The legs of a search: each finds candidates its own way and says why.

Visual: the query's CLIP vector against images and video frames (HNSW, filters inside the
index scan). Meaning: the query's sentence vector (the multilingual text model) against
every text unit (transcript moments, captions, answers, text-file chunks, JSON tables and
records), in any language. Lexical: PostgreSQL full-text search over what was said
(transcript segments), what was seen (image and frame captions), what was answered (visual
Q&A), what text files and JSON documents contain, and what the file is called (file and
folder names, tokenised).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sqlalchemy as sa

from media_assets.lib.db.vectors import to_pgvector, tune_hnsw
from media_assets.lib.search.filters import Filters

# All the words, stemmed (english) or as written (simple: names, other languages)...
TSQUERY = ("(websearch_to_tsquery('simple', :q) || websearch_to_tsquery('english', :q))")
# ...or, at half strength, any of them (stop words left out): a transcript that misheard
# one word of two is still found.
ANY_WORD = "CAST(replace(plainto_tsquery('english', :q)::text, '&', '|') AS tsquery)"
PARTIAL = 0.5
# The share of the query's words (English stems, stop words left out) a row's tsvector has:
# "withdraw cash tomorrow" matching only "tomorrow" is a third of a match, not a half.
QUERY_WORDS = "tsvector_to_array(to_tsvector('english', :q))"


# The query parsed once per statement, for every source of it to read (as `q_`).
QUERY_CTE = (f"WITH q_ AS MATERIALIZED (SELECT {TSQUERY} AS all_words, {ANY_WORD} AS any_word, "
             f"{QUERY_WORDS} AS words) ")


def share(tsv: str) -> str:
    return ("(SELECT count(*) FROM unnest(q_.words) w_(lex) "
            f" WHERE {tsv} @@ CAST(quote_literal(w_.lex) AS tsquery))::float8 "
            "/ greatest(cardinality(q_.words), 1)")


Db = sa.Engine | sa.Connection


@lru_cache(maxsize=64)
def _statement(sql: str) -> sa.TextClause:
    """One TextClause per SQL text: building it parses the text for its parameters (a
    tenth of a search's Python time under load, for the long lexical statement)."""
    return sa.text(sql)


@contextmanager
def _connection(db: Db) -> Iterator[sa.Connection]:
    """`db` as a connection: an Engine gives one of its own for this leg; a Connection is
    used as it is, so the legs of one search share one checkout and one transaction (each
    checkout costs the pool's ping and a reset: two round trips per leg, under load a third
    of a search's time)."""
    if isinstance(db, sa.Connection):
        yield db
    else:
        with db.begin() as conn:
            yield conn


@dataclass(frozen=True)
class LegHit:
    leg: str  # visual, speech, caption, answer, name
    key: str
    path: str
    kind: str
    frame_ms: int  # -1: the whole file
    strength: float  # cosine similarity (visual) or ts_rank_cd (lexical)
    text: str | None = None  # the segment, caption, answer or name that matched
    partial: bool = False  # lexical: some of the query's words, not all
    where: dict | None = None  # text units: their source, offsets or record numbers
    share: float = 0.5  # partial: the share of the query's words it has


def visual(db: Db, query: np.ndarray, model_ref: str, k: int,
           filters: Filters = Filters(), calibrate: bool = True,
           ) -> tuple[list[LegHit], tuple[float, float]]:
    """The k nearest images and frames, and (mean, std) of the query's similarity to this
    model's corpus (a sample of it): what "unrelated" looks like for this query."""
    params = {"q": to_pgvector(query), "m": model_ref, "k": k, **filters.params()}
    with _connection(db) as conn:
        tune_hnsw(conn)
        rows = conn.execute(_statement(
            "SELECT s.key, s.frame_ms, s.path, s.distance, f.kind, "
            "       coalesce(a.caption, v.caption) AS caption "
            "FROM search_media(CAST(:q AS vector), :m, :k, :f_visual_kind, :f_after, :f_before, "
            "                  :f_under, :f_min, :f_max, :f_lang) s "
            "JOIN media_files f ON f.key = s.key "
            "LEFT JOIN image_analysis a ON a.key = s.key AND s.frame_ms = -1 "
            "LEFT JOIN video_frames v ON v.key = s.key AND v.frame_ms = s.frame_ms "
            # The index scan applies the filters it knows; the rest (a speaker) here.
            "WHERE true" + filters.sql("f") + " ORDER BY s.distance"), params).all()
        calibration = _calibration(conn, query, params) if calibrate else (0.0, 0.0)
    hits = [LegHit("visual", r.key, r.path, r.kind, r.frame_ms, 1.0 - float(r.distance),
                   r.caption) for r in rows]
    return hits, calibration


SAMPLE_ROWS, SAMPLE_TTL_S = 1000, 60.0
_samples: dict[tuple[str, str], tuple[float, np.ndarray]] = {}


def _calibration(conn: sa.Connection, query: np.ndarray, params: dict) -> tuple[float, float]:
    """(mean, std) of the query's cosine similarity to up to 1000 of this model's image and
    frame vectors. A full sample is kept for a minute per database and model and compared
    here (a statistic of the corpus: reading 1000 vectors, 2 MB, for every search cost
    the server more than the search); a smaller one is compared on the server."""
    key = (conn.engine.url.render_as_string(), params["m"])
    kept = _samples.get(key)
    if kept is None or time.monotonic() - kept[0] >= SAMPLE_TTL_S:
        mean, std, n = conn.execute(_statement(
            "SELECT avg(1 - (embedding <=> CAST(:q AS vector))), "
            "       stddev_samp(1 - (embedding <=> CAST(:q AS vector))), count(*) "
            "FROM (SELECT embedding FROM image_embeddings WHERE model_id = :m "
            "      LIMIT :n) s"), {**params, "n": SAMPLE_ROWS}).one()
        if n < SAMPLE_ROWS:
            _samples.pop(key, None)
            return float(mean or 0.0), float(std or 0.0)
        rows = conn.execute(_statement(
            "SELECT embedding::text FROM image_embeddings WHERE model_id = :m LIMIT :n"),
            {"m": params["m"], "n": SAMPLE_ROWS}).scalars().all()
        sample = np.stack([np.fromstring(r[1:-1], dtype=np.float32, sep=",") for r in rows])
        sample /= np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
        _samples[key] = kept = (time.monotonic(), sample)
    sims = kept[1] @ (query / max(float(np.linalg.norm(query)), 1e-12))
    return float(sims.mean()), float(sims.std(ddof=1))


@dataclass(frozen=True)
class _Source:
    """Where one lexical leg looks: `table` (with `media_files f` joined), its tsvector,
    and the SELECT list giving key, path, kind, frame_ms, text, source, char_start and
    char_end; `weight` scales the rank, `where` narrows the rows."""

    leg: str
    table: str
    tsv: str
    select: str
    weight: str = "1"
    where: str = ""
    order: str = "key, frame_ms"


_NO_WHERE = "NULL::text AS source, NULL::int AS char_start, NULL::int AS char_end"
SOURCES = (
    # What was said: transcript segments; the moment is the segment start.
    _Source("speech", "transcript_segments s JOIN media_files f ON f.key = s.key", "s.tsv",
            "s.key, f.primary_path AS path, f.kind, (s.start_s * 1000)::int AS frame_ms, "
            f"s.text, {_NO_WHERE}"),
    # What was seen: image captions, and video frame captions.
    _Source("caption", "image_analysis a JOIN media_files f ON f.key = a.key",
            "a.caption_tsv", "a.key, f.primary_path AS path, f.kind, -1 AS frame_ms, "
            f"a.caption AS text, {_NO_WHERE}"),
    _Source("caption", "video_frames v JOIN media_files f ON f.key = v.key",
            "v.caption_tsv", "v.key, f.primary_path AS path, f.kind, v.frame_ms, "
            f"v.caption AS text, {_NO_WHERE}"),
    # What was answered: the visual questions.
    _Source("answer", "image_analysis a JOIN media_files f ON f.key = a.key",
            "a.answers_tsv", "a.key, f.primary_path AS path, f.kind, -1 AS frame_ms, "
            f"a.answers::text AS text, {_NO_WHERE}"),
    # What text files and JSON documents contain; the hit says where.
    _Source("content", "text_units u JOIN media_files f ON f.key = u.key", "u.tsv",
            "u.key, f.primary_path AS path, f.kind, u.at_ms AS frame_ms, u.text, "
            "u.source, u.char_start, u.char_end",
            where="u.source IN ('text', 'json_table', 'json_records')", order="u.key, u.idx"),
    # What the file is called: folders and name, split at every non-alphanumeric.
    _Source("name", "media_files f", "f.name_tsv",
            "f.key, f.primary_path AS path, f.kind, -1 AS frame_ms, "
            f"f.primary_path AS text, {_NO_WHERE}"),
    # The clusters whose hierarchy, tags or search description match ("pets" finds the
    # cat cluster): their members, the most central first.
    _Source("cluster", "cluster_hierarchies h JOIN cluster_members cm ON "
            "cm.cluster_id = h.cluster_id JOIN media_files f ON f.key = cm.key",
            "h.search_tsv", "cm.key, f.primary_path AS path, f.kind, cm.frame_ms, "
            f"array_to_string(h.hierarchy, ' › ') AS text, {_NO_WHERE}",
            weight="greatest(cm.similarity, 0)"),
    # What is written in the picture (OCR); for a video, the moment the text appears.
    _Source("text_in_picture", "picture_texts p JOIN media_files f ON f.key = p.key", "p.tsv",
            "p.key, f.primary_path AS path, f.kind, p.frame_ms, "
            f"replace(p.text, E'\\n', ' / ') AS text, {_NO_WHERE}"),
)


def _source_sql(src: _Source, n: int, filters: Filters) -> str:
    """One source's rows with all the words (or, partial, any of them), best first, at
    most :k; `n` numbers it in a UNION."""
    tsv = src.tsv
    where = f"{src.where} AND " if src.where else ""
    return (f"(SELECT {n} AS source_no, {src.select}, {tsv} @@ q_.all_words AS full_match, "
            f"{share(tsv)} AS share, "
            f"(ts_rank_cd({tsv}, q_.any_word || q_.all_words) * {src.weight})::float8 AS rank "
            f"FROM q_, {src.table} "
            f"WHERE {where}({tsv} @@ q_.all_words OR {tsv} @@ q_.any_word)"
            + filters.sql("f") + f" ORDER BY full_match DESC, rank DESC, {src.order} "
            "LIMIT :k)")


def _hit(leg: str, r) -> LegHit:
    text = r.text
    if leg == "text_in_picture":
        text = f"written in the picture: {text}"
    where = _where(r) if r.source is not None else None
    return LegHit(leg, r.key, r.path, r.kind, r.frame_ms, float(r.rank), text,
                  partial=not r.full_match, where=where, share=_half_at_most(r.share))


def lexical(db: Db, text: str, k: int, filters: Filters = Filters(),
            legs: tuple[str, ...] | None = None) -> dict[str, list[LegHit]]:
    """Every lexical leg (or those named), at most `k` hits each, best first, in one SQL
    statement (one round trip instead of eight per search)."""
    chosen = [(n, s) for n, s in enumerate(SOURCES) if legs is None or s.leg in legs]
    found: dict[str, list[LegHit]] = {s.leg: [] for _, s in chosen}
    if not chosen:
        return found
    sql = QUERY_CTE + " UNION ALL ".join(_source_sql(s, n, filters) for n, s in chosen)
    with _connection(db) as conn:
        rows = conn.execute(_statement(sql), {"q": text, "k": k, **filters.params()}).all()
    for r in rows:
        leg = SOURCES[r.source_no].leg
        found[leg].append(_hit(leg, r))
    # A leg with two sources (captions of images and of frames): full matches first, then
    # the strongest, at most k.
    return {leg: sorted(hits, key=lambda h: (h.partial, -h.strength))[:k]
            for leg, hits in found.items()}


def _half_at_most(value) -> float:
    """A partial match counts its share of the words, and never more than half."""
    return min(PARTIAL, float(value or 0.0)) or PARTIAL / 2


def _one(leg: str):
    def run(db: Db, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
        return lexical(db, text, k, filters, legs=(leg,))[leg]

    run.__name__ = leg
    run.__doc__ = f"The {leg} leg alone (`lexical`)."
    return run


speech, captions, answers, content, names, clusters, text_in_picture = (
    _one(leg) for leg in ("speech", "caption", "answer", "content", "name", "cluster",
                          "text_in_picture"))


UNIT_COLUMNS = ("u.key, f.primary_path AS path, f.kind, u.at_ms AS frame_ms, u.text, "
                "u.source, u.char_start, u.char_end")


def _where(r) -> dict:
    out: dict = {"source": r.source}
    if r.source == "text":
        out["offset"] = [r.char_start, r.char_end]
    elif r.source == "json_records":
        out["records"] = [r.char_start, r.char_end]
    return out


def meaning(db: Db, query: np.ndarray, model_ref: str, k: int,
            filters: Filters = Filters(), background: np.ndarray | None = None,
            ) -> tuple[list[LegHit], tuple[float, float]]:
    """The k text units nearest the query's sentence vector (HNSW on the dimension's
    index), and (mean, std) of the query's similarity to the `background` texts
    (lib/search/background.py): what "unrelated" looks like for this query."""
    dim = int(len(query))  # an int: safe in the SQL text; each dimension has its own index
    vec = f"CAST(:q AS vector({dim}))"
    params = {"q": to_pgvector(query), "m": model_ref, "k": k, **filters.params()}
    with _connection(db) as conn:
        tune_hnsw(conn)
        rows = conn.execute(_statement(
            f"SELECT {UNIT_COLUMNS}, (u.embedding::vector({dim})) <=> {vec} AS distance "
            "FROM text_units u JOIN media_files f ON f.key = u.key "
            f"WHERE u.model_id = :m AND vector_dims(u.embedding) = {dim}" + filters.sql("f")
            + f" ORDER BY (u.embedding::vector({dim})) <=> {vec} LIMIT :k"), params).all()
        # The members of the clusters whose name and descriptions mean the same (fewer
        # than a thousand clusters: an exact scan), the most central members first.
        rows += conn.execute(_statement(
            "SELECT cm.key, f.primary_path AS path, f.kind, cm.frame_ms, c.text, "
            "       'cluster' AS source, NULL AS char_start, NULL AS char_end, "
            f"      (c.embedding::vector({dim})) <=> {vec} AS distance "
            "FROM cluster_text_vectors c JOIN cluster_members cm USING (cluster_id) "
            "JOIN media_files f ON f.key = cm.key "
            f"WHERE c.model_id = :m AND vector_dims(c.embedding) = {dim}" + filters.sql("f")
            + f" ORDER BY (c.embedding::vector({dim})) <=> {vec}, cm.similarity DESC "
            "LIMIT :k"), params).all()
    hits = [LegHit("meaning", r.key, r.path, r.kind, r.frame_ms, 1.0 - float(r.distance),
                   r.text, where=_where(r)) for r in rows]
    if background is None or len(background) < 2:
        return hits, (0.0, 0.0)
    sims = background @ query
    return hits, (float(sims.mean()), float(sims.std(ddof=1)))


LEXICAL = {"speech": speech, "caption": captions, "answer": answers, "content": content,
           "name": names, "cluster": clusters, "text_in_picture": text_in_picture}
