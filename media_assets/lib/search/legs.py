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

from dataclasses import dataclass

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


def share(tsv: str) -> str:
    return (f"(SELECT count(*) FROM unnest({QUERY_WORDS}) w_(lex) "
            f" WHERE {tsv} @@ CAST(quote_literal(w_.lex) AS tsquery))::float8 "
            f"/ greatest(cardinality({QUERY_WORDS}), 1)")


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


def visual(engine: sa.Engine, query: np.ndarray, model_ref: str, k: int,
           filters: Filters = Filters(), calibrate: bool = True,
           ) -> tuple[list[LegHit], tuple[float, float]]:
    """The k nearest images and frames, and (mean, std) of the query's similarity to this
    model's corpus (a sample of it): what "unrelated" looks like for this query."""
    params = {"q": to_pgvector(query), "m": model_ref, "k": k, **filters.params()}
    with engine.begin() as conn:
        tune_hnsw(conn)
        rows = conn.execute(sa.text(
            "SELECT s.key, s.frame_ms, s.path, s.distance, f.kind, "
            "       coalesce(a.caption, v.caption) AS caption "
            "FROM search_media(CAST(:q AS vector), :m, :k, :f_kind, :f_after, :f_before, "
            "                  :f_under, :f_min, :f_max, :f_lang) s "
            "JOIN media_files f ON f.key = s.key "
            "LEFT JOIN image_analysis a ON a.key = s.key AND s.frame_ms = -1 "
            "LEFT JOIN video_frames v ON v.key = s.key AND v.frame_ms = s.frame_ms "
            # The index scan applies the filters it knows; the rest (a speaker) here.
            "WHERE true" + Filters.sql("f") + " ORDER BY s.distance"), params).all()
        if not calibrate:
            mean = std = 0.0
        else:
            mean, std = conn.execute(sa.text(
                "SELECT avg(1 - (embedding <=> CAST(:q AS vector))), "
                "       stddev_samp(1 - (embedding <=> CAST(:q AS vector))) "
                "FROM (SELECT embedding FROM image_embeddings WHERE model_id = :m "
                "      LIMIT 1000) s"), params).one()
    hits = [LegHit("visual", r.key, r.path, r.kind, r.frame_ms, 1.0 - float(r.distance),
                   r.caption) for r in rows]
    return hits, (float(mean or 0.0), float(std or 0.0))


def _lexical(engine: sa.Engine, leg: str, table: str, tsv: str, select: str, text: str,
             k: int, filters: Filters, weight: str = "1") -> list[LegHit]:
    """Rows of `table` whose `tsv` has all the words (or, partial, any of them), best
    first; `select` gives key, path, kind, frame_ms and text; `weight` scales the rank."""
    sql = (f"SELECT {select}, {tsv} @@ {TSQUERY} AS full_match, {share(tsv)} AS share, "
           f"       ts_rank_cd({tsv}, {ANY_WORD} || {TSQUERY}) * {weight} AS rank "
           f"FROM {table} WHERE ({tsv} @@ {TSQUERY} OR {tsv} @@ {ANY_WORD})"
           + Filters.sql("f") + " ORDER BY full_match DESC, rank DESC, key, frame_ms LIMIT :k")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"q": text, "k": k, **filters.params()}).all()
    return [LegHit(leg, r.key, r.path, r.kind, r.frame_ms, float(r.rank), r.text,
                   partial=not r.full_match, share=_half_at_most(r.share)) for r in rows]


def _half_at_most(value) -> float:
    """A partial match counts its share of the words, and never more than half."""
    return min(PARTIAL, float(value or 0.0)) or PARTIAL / 2


def speech(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Transcript segments whose words match, best first; the moment is the segment start."""
    return _lexical(engine, "speech",
                    "transcript_segments s JOIN media_files f ON f.key = s.key", "s.tsv",
                    "s.key, f.primary_path AS path, f.kind, "
                    "(s.start_s * 1000)::int AS frame_ms, s.text", text, k, filters)


def captions(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Image captions and video frame captions whose words match."""
    images = _lexical(engine, "caption", "image_analysis a JOIN media_files f ON f.key = a.key",
                      "a.caption_tsv", "a.key, f.primary_path AS path, f.kind, "
                      "-1 AS frame_ms, a.caption AS text", text, k, filters)
    frames = _lexical(engine, "caption", "video_frames v JOIN media_files f ON f.key = v.key",
                      "v.caption_tsv", "v.key, f.primary_path AS path, f.kind, v.frame_ms, "
                      "v.caption AS text", text, k, filters)
    return sorted(images + frames, key=lambda h: (h.partial, -h.strength))[:k]


def answers(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Images whose answers to the visual questions match."""
    return _lexical(engine, "answer", "image_analysis a JOIN media_files f ON f.key = a.key",
                    "a.answers_tsv", "a.key, f.primary_path AS path, f.kind, -1 AS frame_ms, "
                    "a.answers::text AS text", text, k, filters)


def names(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Files whose path (folders and name, split at every non-alphanumeric) matches."""
    return _lexical(engine, "name", "media_files f", "f.name_tsv",
                    "f.key, f.primary_path AS path, f.kind, -1 AS frame_ms, "
                    "f.primary_path AS text", text, k, filters)


def clusters(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Members of the clusters whose hierarchy, tags or search description match (a query
    for "pets" finds the cat cluster), the most central members first."""
    return _lexical(engine, "cluster",
                    "cluster_hierarchies h JOIN cluster_members cm ON cm.cluster_id = h.cluster_id "
                    "JOIN media_files f ON f.key = cm.key", "h.search_tsv",
                    "cm.key, f.primary_path AS path, f.kind, cm.frame_ms, "
                    "array_to_string(h.hierarchy, ' › ') AS text", text, k, filters,
                    weight="greatest(cm.similarity, 0)")


UNIT_COLUMNS = ("u.key, f.primary_path AS path, f.kind, u.at_ms AS frame_ms, u.text, "
                "u.source, u.char_start, u.char_end")


def _where(r) -> dict:
    out: dict = {"source": r.source}
    if r.source == "text":
        out["offset"] = [r.char_start, r.char_end]
    elif r.source == "json_records":
        out["records"] = [r.char_start, r.char_end]
    return out


def meaning(engine: sa.Engine, query: np.ndarray, model_ref: str, k: int,
            filters: Filters = Filters(), background: np.ndarray | None = None,
            ) -> tuple[list[LegHit], tuple[float, float]]:
    """The k text units nearest the query's sentence vector (HNSW on the dimension's
    index), and (mean, std) of the query's similarity to the `background` texts
    (lib/search/background.py): what "unrelated" looks like for this query."""
    dim = int(len(query))  # an int: safe in the SQL text; each dimension has its own index
    vec = f"CAST(:q AS vector({dim}))"
    params = {"q": to_pgvector(query), "m": model_ref, "k": k, **filters.params()}
    with engine.begin() as conn:
        tune_hnsw(conn)
        rows = conn.execute(sa.text(
            f"SELECT {UNIT_COLUMNS}, (u.embedding::vector({dim})) <=> {vec} AS distance "
            "FROM text_units u JOIN media_files f ON f.key = u.key "
            f"WHERE u.model_id = :m AND vector_dims(u.embedding) = {dim}" + Filters.sql("f")
            + f" ORDER BY (u.embedding::vector({dim})) <=> {vec} LIMIT :k"), params).all()
        # The members of the clusters whose name and descriptions mean the same (fewer
        # than a thousand clusters: an exact scan), the most central members first.
        rows += conn.execute(sa.text(
            "SELECT cm.key, f.primary_path AS path, f.kind, cm.frame_ms, c.text, "
            "       'cluster' AS source, NULL AS char_start, NULL AS char_end, "
            f"      (c.embedding::vector({dim})) <=> {vec} AS distance "
            "FROM cluster_text_vectors c JOIN cluster_members cm USING (cluster_id) "
            "JOIN media_files f ON f.key = cm.key "
            f"WHERE c.model_id = :m AND vector_dims(c.embedding) = {dim}" + Filters.sql("f")
            + f" ORDER BY (c.embedding::vector({dim})) <=> {vec}, cm.similarity DESC "
            "LIMIT :k"), params).all()
    hits = [LegHit("meaning", r.key, r.path, r.kind, r.frame_ms, 1.0 - float(r.distance),
                   r.text, where=_where(r)) for r in rows]
    if background is None or len(background) < 2:
        return hits, (0.0, 0.0)
    sims = background @ query
    return hits, (float(sims.mean()), float(sims.std(ddof=1)))


def content(engine: sa.Engine, text: str, k: int, filters: Filters = Filters()) -> list[LegHit]:
    """Chunks of text files, JSON records (their string values) and JSON table
    descriptions whose words match; the hit says where (offsets or record numbers)."""
    sql = (f"SELECT {UNIT_COLUMNS}, u.tsv @@ {TSQUERY} AS full_match, "
           f"       {share('u.tsv')} AS share, "
           f"       ts_rank_cd(u.tsv, {ANY_WORD} || {TSQUERY}) AS rank "
           "FROM text_units u JOIN media_files f ON f.key = u.key "
           "WHERE u.source IN ('text', 'json_table', 'json_records') "
           f"  AND (u.tsv @@ {TSQUERY} OR u.tsv @@ {ANY_WORD})" + Filters.sql("f")
           + " ORDER BY full_match DESC, rank DESC, u.key, u.idx LIMIT :k")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {"q": text, "k": k, **filters.params()}).all()
    return [LegHit("content", r.key, r.path, r.kind, r.frame_ms, float(r.rank), r.text,
                   partial=not r.full_match, where=_where(r),
                   share=_half_at_most(r.share)) for r in rows]


def text_in_picture(engine: sa.Engine, text: str, k: int,
                    filters: Filters = Filters()) -> list[LegHit]:
    """Images and video frames whose written text (OCR, `picture_texts`) matches; the hit
    says "written in the picture: ..." and, for a video, the moment the text appears."""
    hits = _lexical(engine, "text_in_picture",
                    "picture_texts p JOIN media_files f ON f.key = p.key", "p.tsv",
                    "p.key, f.primary_path AS path, f.kind, p.frame_ms, "
                    "replace(p.text, E'\\n', ' / ') AS text", text, k, filters)
    return [LegHit(h.leg, h.key, h.path, h.kind, h.frame_ms, h.strength,
                   f"written in the picture: {h.text}", h.partial) for h in hits]


LEXICAL = {"speech": speech, "caption": captions, "answer": answers, "content": content,
           "name": names, "cluster": clusters,
           "text_in_picture": text_in_picture}
