"""Text units and their sentence vectors in the catalogue (`text_units`), and the cluster
texts' vectors (`cluster_text_vectors`).

A unit is re-embedded only when it is stale: its text changed (digest) or the text model
changed (model id @ weights fingerprint). A file's units are replaced in one transaction;
vectors of unchanged texts are carried over, not recomputed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from media_assets.lib.db.vectors import from_pgvector, to_pgvector
from media_assets.lib.search.units import Unit


@dataclass
class Embedded:
    units: int
    embedded: int  # texts sent to the model (the others were current)
    seconds: float  # in the model


def _existing(conn, key: str, model_ref: str) -> dict[str, str]:
    """digest -> vector (pgvector's `Vector`, sent back as it came) of this file's units
    already embedded by this model."""
    return {r.digest: r.embedding for r in conn.execute(sa.text(
        "SELECT DISTINCT ON (digest) digest, embedding FROM text_units "
        "WHERE key = :k AND model_id = :m AND embedding IS NOT NULL"),
        {"k": key, "m": model_ref})}


def store_units(engine: sa.Engine, key: str, units: Sequence[Unit], embedder) -> Embedded:
    """Replace the file's units; embed those whose text or model is new."""
    model_ref = embedder.model_ref
    with engine.connect() as conn:
        have = _existing(conn, key, model_ref)
    todo = list(dict.fromkeys(u.text for u in units if u.digest not in have))
    start = time.perf_counter()
    fresh = dict(zip(todo, embedder.passage(todo))) if todo else {}
    seconds = time.perf_counter() - start
    rows = []
    for i, u in enumerate(units):
        vec = have.get(u.digest) or to_pgvector(fresh[u.text])
        rows.append({"k": key, "i": i, "s": u.source, "a": u.at_ms, "cs": u.start,
                     "ce": u.end, "t": u.text.replace("\x00", " "), "d": u.digest,
                     "m": model_ref, "e": vec})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM text_units WHERE key = :k"), {"k": key})
        if rows:
            conn.execute(sa.text(
                "INSERT INTO text_units (key, idx, source, at_ms, char_start, char_end, text, "
                " digest, model_id, embedding) VALUES (:k, :i, :s, :a, :cs, :ce, :t, :d, :m, "
                " CAST(:e AS vector))"), rows)
    return Embedded(len(units), len(todo), seconds)


def current_keys(engine: sa.Engine, keys: Sequence[str], model_ref: str) -> set[str]:
    """Files whose units were all embedded by this model (nothing stale)."""
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT key FROM text_units WHERE key = ANY(:k) GROUP BY key "
            "HAVING bool_and(model_id IS NOT DISTINCT FROM :m)"),
            {"k": list(keys), "m": model_ref}).scalars())


def cluster_texts(engine: sa.Engine) -> dict[int, str]:
    """cluster id -> what it is called and about: name, description, hierarchy, tags and
    search description."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.id, l.cluster_name, l.description, h.hierarchy, h.extended_tags, "
            "       h.search_description "
            "FROM clusters c JOIN cluster_labels l ON l.cluster_id = c.id "
            "LEFT JOIN cluster_hierarchies h ON h.cluster_id = c.id")).all()
    out = {}
    for r in rows:
        parts = [r.cluster_name, r.description or "",
                 " › ".join(r.hierarchy or []), ", ".join(r.extended_tags or []),
                 r.search_description or ""]
        out[int(r.id)] = ". ".join(p for p in parts if p)[:1000]
    return out


def embed_clusters(engine: sa.Engine, embedder) -> int:
    """Embed the clusters whose text or model changed; returns how many were embedded."""
    texts = cluster_texts(engine)
    digests = {cid: hashlib.sha256(t.encode()).hexdigest()[:24] for cid, t in texts.items()}
    with engine.connect() as conn:
        have = {(r.cluster_id, r.digest) for r in conn.execute(sa.text(
            "SELECT cluster_id, digest FROM cluster_text_vectors WHERE model_id = :m"),
            {"m": embedder.model_ref})}
    todo = [cid for cid in texts if (cid, digests[cid]) not in have]
    vectors = embedder.passage([texts[c] for c in todo]) if todo else []
    with engine.begin() as conn:
        if todo:
            conn.execute(sa.text(
                "INSERT INTO cluster_text_vectors (cluster_id, text, digest, model_id, embedding)"
                " VALUES (:c, :t, :d, :m, CAST(:e AS vector)) ON CONFLICT (cluster_id) DO "
                "UPDATE SET text = EXCLUDED.text, digest = EXCLUDED.digest, "
                "model_id = EXCLUDED.model_id, embedding = EXCLUDED.embedding"),
                [{"c": c, "t": texts[c], "d": digests[c], "m": embedder.model_ref,
                  "e": to_pgvector(v)} for c, v in zip(todo, vectors)])
    return len(todo)


def vectors_of(engine: sa.Engine, key: str) -> list[tuple[str, np.ndarray]]:
    """(text, vector) of a file's units, in order (tests, tools)."""
    with engine.connect() as conn:
        return [(r.text, from_pgvector(r.embedding)) for r in conn.execute(sa.text(
            "SELECT text, embedding::text AS embedding FROM text_units WHERE key = :k "
            "AND embedding IS NOT NULL ORDER BY idx"), {"k": key})]
