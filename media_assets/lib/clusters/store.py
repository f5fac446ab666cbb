"""Clusters in PostgreSQL: full runs (ids kept by member overlap), incremental assignment of
new vectors, labels and hierarchies, and what the commands show."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from media_assets.lib.clusters.method import central_order, centroid, match_ids
from media_assets.lib.db.vectors import from_pgvector, to_pgvector

REPRESENTATIVES = 5
# A new vector joins a cluster when it is at least as similar to the centroid as this
# share of the cluster's own members are (the 10th percentile of their similarities).
RADIUS_PERCENTILE = 10
MIN_JACCARD = 0.5


@dataclass
class Vectors:
    keys: list[str]
    frames: np.ndarray  # frame_ms per row, -1 for an image
    x: np.ndarray  # (rows, 512), unit

    @property
    def files(self) -> int:
        return len(set(self.keys))


def load_vectors(engine: sa.Engine, model_ref: str) -> Vectors:
    """Every image and video frame vector of one CLIP space, in a stable order."""
    keys, frames, rows = [], [], []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(sa.text(
            "SELECT key, frame_ms, embedding::text AS e FROM image_embeddings "
            "WHERE model_id = :m ORDER BY key, frame_ms"), {"m": model_ref})
        for r in result:
            keys.append(r.key)
            frames.append(r.frame_ms)
            rows.append(from_pgvector(r.e))
    x = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, 512), np.float32)
    return Vectors(keys, np.asarray(frames, dtype=np.int64), x)


@dataclass
class FoundCluster:
    members: dict[str, tuple[int, float]]  # key -> (frame nearest the centroid, similarity)
    centroid: np.ndarray
    radius: float
    representatives: list[tuple[str, int]]  # (key, frame), most central first


def summarise(v: Vectors, labels: np.ndarray) -> list[FoundCluster]:
    """Per label: members (a video once, by its frame nearest the centroid), centroid,
    joining radius and the most central distinct files."""
    out = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        rows = np.flatnonzero(labels == label)
        if not len(rows):
            continue
        order, sims = central_order(v.x[rows])
        members: dict[str, tuple[int, float]] = {}
        reps: list[tuple[str, int]] = []
        for i in order:
            key, frame = v.keys[rows[i]], int(v.frames[rows[i]])
            if key not in members:
                members[key] = (frame, float(sims[i]))
                if len(reps) < REPRESENTATIVES:
                    reps.append((key, frame))
        out.append(FoundCluster(members, centroid(v.x[rows]),
                                float(np.percentile(sims, RADIUS_PERCENTILE)), reps))
    return out


@dataclass
class RunSummary:
    clusters: int
    kept_ids: int
    new_ids: int
    dropped_ids: int
    unsorted: int
    files: int
    vectors: int


def save_full_run(engine: sa.Engine, model_ref: str, v: Vectors, labels: np.ndarray,
                  method: str, seconds: float, params: dict) -> RunSummary:
    """Replace the model's clusters with this run's, in one transaction. A new cluster that
    shares at least half its members (Jaccard) with an old one takes the old id; clusters
    of another CLIP model are dropped (their space is gone)."""
    found = summarise(v, labels)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM clusters WHERE model_id <> :m"), {"m": model_ref})
        old: dict[int, set] = {}  # every old cluster, with its members (maybe none left)
        for cid, key in conn.execute(sa.text(
                "SELECT c.id, m.key FROM clusters c LEFT JOIN cluster_members m "
                "ON m.cluster_id = c.id WHERE c.model_id = :m"), {"m": model_ref}):
            members = old.setdefault(cid, set())
            if key is not None:
                members.add(key)
        kept = match_ids(old, [set(c.members) for c in found], MIN_JACCARD)
        dropped = [cid for cid in old if cid not in kept.values()]
        if dropped:
            conn.execute(sa.text("DELETE FROM clusters WHERE id = ANY(:ids)"), {"ids": dropped})
        if kept:
            conn.execute(sa.text("DELETE FROM cluster_members WHERE cluster_id = ANY(:ids)"),
                         {"ids": list(kept.values())})
        for j, c in enumerate(found):
            values = {"m": model_ref, "size": len(c.members), "c": to_pgvector(c.centroid),
                      "r": c.radius, "reps": [k for k, _ in c.representatives],
                      "rf": [f for _, f in c.representatives]}
            if j in kept:
                cid = kept[j]
                conn.execute(sa.text(
                    "UPDATE clusters SET size = :size, centroid = CAST(:c AS vector), "
                    "radius = :r, representatives = :reps, rep_frames = :rf, updated_at = now() "
                    "WHERE id = :id"), {**values, "id": cid})
            else:
                cid = conn.execute(sa.text(
                    "INSERT INTO clusters (model_id, size, centroid, radius, representatives, "
                    "rep_frames) VALUES (:m, :size, CAST(:c AS vector), :r, :reps, :rf) "
                    "RETURNING id"), values).scalar_one()
            conn.execute(sa.text(
                "INSERT INTO cluster_members (cluster_id, key, frame_ms, similarity) "
                "VALUES (:id, :k, :f, :s)"),
                [{"id": cid, "k": k, "f": f, "s": s} for k, (f, s) in c.members.items()])
        clustered = {k for c in found for k in c.members}
        summary = RunSummary(len(found), len(kept), len(found) - len(kept), len(dropped),
                             len(set(v.keys) - clustered), v.files, len(v.keys))
        conn.execute(sa.text(
            "INSERT INTO cluster_runs (model_id, vectors, files, clusters, unsorted, kept_ids, "
            "method, seconds, params) VALUES (:m, :v, :f, :c, :u, :k, :me, :s, "
            "CAST(:p AS jsonb))"),
            {"m": model_ref, "v": summary.vectors, "f": summary.files, "c": summary.clusters,
             "u": summary.unsorted, "k": summary.kept_ids, "me": method, "s": seconds,
             "p": json.dumps(params)})
    return summary


def assign_new(engine: sa.Engine, model_ref: str, keys: list[str]) -> int:
    """The cheap step between full runs: each of these files that is in no cluster yet
    joins the cluster whose centroid its nearest vector is most similar to, when that
    similarity reaches the cluster's radius; otherwise it stays unsorted. Returns how many
    joined."""
    if not keys:
        return 0
    with engine.begin() as conn:
        cents = conn.execute(sa.text(
            "SELECT id, centroid::text AS c, radius FROM clusters WHERE model_id = :m"),
            {"m": model_ref}).all()
        if not cents:
            return 0
        rows = conn.execute(sa.text(
            "SELECT e.key, e.frame_ms, e.embedding::text AS e FROM image_embeddings e "
            "WHERE e.model_id = :m AND e.key = ANY(:k) AND NOT EXISTS ("
            "  SELECT 1 FROM cluster_members cm JOIN clusters c ON c.id = cm.cluster_id "
            "  WHERE cm.key = e.key AND c.model_id = :m)"),
            {"m": model_ref, "k": list(keys)}).all()
        if not rows:
            return 0
        ids = [c.id for c in cents]
        c = np.vstack([from_pgvector(r.c) for r in cents])
        radius = np.array([r.radius for r in cents])
        sims = np.vstack([from_pgvector(r.e) for r in rows]) @ c.T
        best: dict[str, tuple[float, int, int]] = {}  # key -> (sim, cluster index, frame)
        for i, r in enumerate(rows):
            j = int(np.argmax(sims[i]))
            if sims[i, j] >= radius[j] and sims[i, j] > best.get(r.key, (-2.0,))[0]:
                best[r.key] = (float(sims[i, j]), j, r.frame_ms)
        for key, (sim, j, frame) in best.items():
            conn.execute(sa.text(
                "INSERT INTO cluster_members (cluster_id, key, frame_ms, similarity, assigned) "
                "VALUES (:id, :k, :f, :s, 'incremental') ON CONFLICT DO NOTHING"),
                {"id": ids[j], "k": key, "f": frame, "s": sim})
            conn.execute(sa.text("UPDATE clusters SET size = size + 1 WHERE id = :id"),
                         {"id": ids[j]})
    return len(best)


def changes_since_last_run(engine: sa.Engine, model_ref: str) -> tuple[int, int]:
    """(files embedded since the last full run, files that run clustered): what the
    re-cluster sensor weighs. Before any run: (files embedded, 0)."""
    with engine.connect() as conn:
        last = conn.execute(sa.text(
            "SELECT created_at, files FROM cluster_runs WHERE model_id = :m "
            "ORDER BY id DESC LIMIT 1"), {"m": model_ref}).first()
        new = conn.execute(sa.text(
            "SELECT count(DISTINCT key) FROM image_embeddings WHERE model_id = :m "
            "AND (CAST(:t AS timestamptz) IS NULL OR created_at > :t)"),
            {"m": model_ref, "t": last.created_at if last else None}).scalar_one()
    return int(new), int(last.files) if last else 0


@dataclass
class ClusterRow:
    id: int
    size: int
    centroid: np.ndarray
    representatives: list[tuple[str, int]]


def clusters_of(engine: sa.Engine, model_ref: str, ids: list[int] | None = None,
                ) -> list[ClusterRow]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, size, centroid::text AS c, representatives, rep_frames FROM clusters "
            "WHERE model_id = :m AND (CAST(:ids AS integer[]) IS NULL OR id = ANY(:ids)) "
            "ORDER BY size DESC, id"), {"m": model_ref, "ids": ids}).all()
    return [ClusterRow(r.id, r.size, from_pgvector(r.c),
                       list(zip(r.representatives, r.rep_frames))) for r in rows]


def cluster_count(engine: sa.Engine, model_ref: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM clusters WHERE model_id = :m"),
                                {"m": model_ref}).scalar_one())


def clusters_to_label(engine: sa.Engine, model_ref: str) -> list[int]:
    """Clusters without a label, or whose representatives changed since it was made."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT c.id FROM clusters c LEFT JOIN cluster_labels l ON l.cluster_id = c.id "
            "WHERE c.model_id = :m AND (l.cluster_id IS NULL OR "
            "      NOT (l.labelled_from @> c.representatives "
            "           AND l.labelled_from <@ c.representatives)) "
            "ORDER BY c.size DESC, c.id"), {"m": model_ref}).scalars())


def store_label(engine: sa.Engine, cluster_id: int, label, labelled_from: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO cluster_labels (cluster_id, cluster_name, description, tags, "
            "primary_category, confidence, clip_terms, captions, degraded, degraded_reason, "
            "model_id, labelled_from) VALUES (:id, :n, :d, :t, :p, :c, :ct, :cap, :deg, :why, "
            ":model, :lf) ON CONFLICT (cluster_id) DO UPDATE SET cluster_name = EXCLUDED."
            "cluster_name, description = EXCLUDED.description, tags = EXCLUDED.tags, "
            "primary_category = EXCLUDED.primary_category, confidence = EXCLUDED.confidence, "
            "clip_terms = EXCLUDED.clip_terms, captions = EXCLUDED.captions, degraded = "
            "EXCLUDED.degraded, degraded_reason = EXCLUDED.degraded_reason, model_id = "
            "EXCLUDED.model_id, labelled_from = EXCLUDED.labelled_from, labelled_at = now()"),
            {"id": cluster_id, "n": label.cluster_name, "d": label.description,
             "t": label.tags, "p": label.primary_category, "c": label.confidence,
             "ct": label.clip_terms, "cap": label.captions, "deg": label.degraded,
             "why": label.degraded_reason, "model": label.model_id, "lf": labelled_from})


def label_digest(row) -> str:
    """What a hierarchy is made from; a change re-enriches the cluster."""
    return hashlib.sha256(json.dumps(
        [row.cluster_name, row.description, list(row.tags), row.primary_category,
         list(row.clip_terms)]).encode()).hexdigest()[:16]


def labels_of(engine: sa.Engine, model_ref: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT l.*, c.size, c.centroid::text AS centroid_text, h.label_digest, "
            "h.llm_ref AS hierarchy_llm_ref "
            "FROM cluster_labels l JOIN clusters c ON c.id = l.cluster_id "
            "LEFT JOIN cluster_hierarchies h ON h.cluster_id = l.cluster_id "
            "WHERE c.model_id = :m ORDER BY c.size DESC, c.id"), {"m": model_ref}).all()


def store_hierarchy(engine: sa.Engine, cluster_id: int, e, digest: str) -> None:
    text = " ".join([*e.hierarchy, *e.extended_tags, e.search_description])
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO cluster_hierarchies (cluster_id, hierarchy, folder_path, extended_tags, "
            "relationships, search_description, source, source_reason, model_id, label_digest, "
            "llm_ref, llm_seconds, search_tsv) VALUES (:id, :h, :f, :t, CAST(:r AS jsonb), :s, "
            ":src, :why, :model, :dg, :lr, :lsec, "
            "to_tsvector('english', :txt) || to_tsvector('simple', :txt)) "
            "ON CONFLICT (cluster_id) DO UPDATE SET hierarchy = EXCLUDED.hierarchy, "
            "folder_path = EXCLUDED.folder_path, extended_tags = EXCLUDED.extended_tags, "
            "relationships = EXCLUDED.relationships, search_description = "
            "EXCLUDED.search_description, source = EXCLUDED.source, source_reason = "
            "EXCLUDED.source_reason, model_id = EXCLUDED.model_id, label_digest = "
            "EXCLUDED.label_digest, llm_ref = EXCLUDED.llm_ref, llm_seconds = "
            "EXCLUDED.llm_seconds, search_tsv = EXCLUDED.search_tsv, enriched_at = now()"),
            {"id": cluster_id, "h": e.hierarchy, "f": e.folder_path, "t": e.extended_tags,
             "r": json.dumps(e.relationships), "s": e.search_description, "src": e.source,
             "why": e.source_reason, "model": e.model_id, "dg": digest, "txt": text,
             "lr": getattr(e, "llm_ref", None), "lsec": getattr(e, "llm_seconds", None)})


def overview(engine: sa.Engine, model_ref: str | None = None) -> dict:
    """Every cluster with its name, size, folder, representatives (paths), and the unsorted
    files: what `media-assets clusters` and the HTTP API show."""
    with engine.connect() as conn:
        if model_ref is None:
            model_ref = conn.execute(sa.text(
                "SELECT model_id FROM cluster_runs ORDER BY id DESC LIMIT 1")).scalar()
        rows = conn.execute(sa.text(
            "SELECT c.id, c.size, c.representatives, c.rep_frames, l.cluster_name, "
            "l.description, l.tags, l.primary_category, l.confidence, l.degraded, "
            "l.degraded_reason, h.hierarchy, h.folder_path, h.extended_tags, h.relationships, "
            "h.search_description, h.source, "
            "(SELECT array_agg(f.primary_path ORDER BY array_position(c.representatives, f.key)) "
            " FROM media_files f WHERE f.key = ANY(c.representatives)) AS rep_paths "
            "FROM clusters c LEFT JOIN cluster_labels l ON l.cluster_id = c.id "
            "LEFT JOIN cluster_hierarchies h ON h.cluster_id = c.id "
            "WHERE c.model_id = :m ORDER BY c.size DESC, c.id"), {"m": model_ref}).all()
        unsorted = conn.execute(sa.text(
            "SELECT count(DISTINCT e.key) FROM image_embeddings e WHERE e.model_id = :m AND "
            "NOT EXISTS (SELECT 1 FROM cluster_members cm JOIN clusters c ON "
            "c.id = cm.cluster_id WHERE cm.key = e.key AND c.model_id = :m)"),
            {"m": model_ref}).scalar_one()
        last = conn.execute(sa.text(
            "SELECT created_at, method, seconds, files, clusters FROM cluster_runs "
            "WHERE model_id = :m ORDER BY id DESC LIMIT 1"), {"m": model_ref}).first()
    clusters = [{
        "id": r.id, "name": r.cluster_name, "size": r.size, "folder_path": r.folder_path,
        "hierarchy": r.hierarchy, "description": r.description, "tags": r.tags,
        "primary_category": r.primary_category, "confidence": r.confidence,
        "degraded": r.degraded, "degraded_reason": r.degraded_reason,
        "extended_tags": r.extended_tags, "relationships": r.relationships,
        "search_description": r.search_description, "hierarchy_source": r.source,
        "representatives": [{"key": k, "frame_ms": f, "path": p} for k, f, p in
                             zip(r.representatives, r.rep_frames, r.rep_paths or [])],
    } for r in rows]
    return {"model": model_ref, "clusters": clusters, "unsorted": int(unsorted),
            "last_run": None if last is None else {
                "at": last.created_at.isoformat(), "method": last.method,
                "seconds": round(last.seconds, 2), "files": last.files,
                "clusters": last.clusters}}


def members_of(engine: sa.Engine, model_ref: str) -> dict[str | None, list[tuple[str, str]]]:
    """folder_path (None: unsorted) -> [(key, path)] of image and video files, each under
    a path it still has on disk: the primary one while it is there, else another (a file
    renamed since it was catalogued is linked, and named, as it is now). Content no path
    on disk holds any more is left out, so `organize` removes its link instead of keeping
    a dead one. Clusters the labeller gave the same folder path keep folders of their own:
    the largest the path, the others `path (2)`, `path (3)` (they were merged into one)."""
    from media_assets.lib.clusters.hierarchy import sanitize_folder_path

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT DISTINCT f.key, p.path AS primary_path, c.id AS cluster_id, "
            "       CASE WHEN c.id IS NULL THEN NULL "
            "       ELSE coalesce(h.folder_path, 'Unnamed/cluster-' || c.id) END AS folder_path "
            "FROM (SELECT DISTINCT key FROM image_embeddings WHERE model_id = :m) e "
            "JOIN media_files f ON f.key = e.key "
            "JOIN LATERAL (SELECT mp.path FROM media_paths mp WHERE mp.key = f.key "
            "              AND mp.status = 'registered' "
            "              ORDER BY mp.path = f.primary_path DESC, mp.path LIMIT 1) p ON true "
            "LEFT JOIN (cluster_members cm JOIN clusters c ON c.id = cm.cluster_id AND "
            "           c.model_id = :m) ON cm.key = e.key "
            "LEFT JOIN cluster_hierarchies h ON h.cluster_id = c.id "
            "ORDER BY f.key"), {"m": model_ref}).all()
    groups: dict[tuple[str | None, int | None], list[tuple[str, str]]] = {}
    for r in rows:
        groups.setdefault((r.folder_path, r.cluster_id), []).append((r.key, r.primary_path))
    # Same folder name (any case: a case-insensitive disk) -> its clusters, largest first.
    sharing: dict[str, list[tuple[int, int, str, list]]] = {}
    out: dict[str | None, list[tuple[str, str]]] = {}
    for (folder, cid), files in groups.items():
        if folder is None:
            out.setdefault(None, []).extend(files)
        else:
            clean = sanitize_folder_path(folder)
            sharing.setdefault(clean.lower(), []).append((-len(files), cid, clean, files))
    for clusters in sharing.values():
        for rank, (_, _, clean, files) in enumerate(sorted(clusters, key=lambda c: c[:2])):
            out.setdefault(clean + (f" ({rank + 1})" if rank else ""), []).extend(files)
    return out


def similar_clusters(engine: sa.Engine, model_ref: str, cluster_id: int, n: int = 3) -> list:
    """The `n` clusters whose centroids are nearest this one's: (id, name, similarity)."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT o.id, l.cluster_name AS name, 1 - (o.centroid <=> c.centroid) AS similarity "
            "FROM clusters c JOIN clusters o ON o.model_id = c.model_id AND o.id <> c.id "
            "LEFT JOIN cluster_labels l ON l.cluster_id = o.id "
            "WHERE c.id = :id AND c.model_id = :m ORDER BY o.centroid <=> c.centroid LIMIT :n"),
            {"id": cluster_id, "m": model_ref, "n": n}).all()


def unfinished_clusters(engine: sa.Engine, model_ref: str) -> int:
    """Clusters still waiting for a label or a hierarchy (a run that stopped half way)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM clusters c LEFT JOIN cluster_hierarchies h "
            "ON h.cluster_id = c.id WHERE c.model_id = :m AND h.cluster_id IS NULL"),
            {"m": model_ref}).scalar_one())


def clusters_of_file(engine: sa.Engine, key: str) -> list[dict]:
    """The clusters a file belongs to: id, name, folder path and its similarity."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.id, l.cluster_name AS name, h.folder_path, m.similarity "
            "FROM cluster_members m JOIN clusters c ON c.id = m.cluster_id "
            "LEFT JOIN cluster_labels l ON l.cluster_id = c.id "
            "LEFT JOIN cluster_hierarchies h ON h.cluster_id = c.id WHERE m.key = :k "
            "ORDER BY c.id"), {"k": key}).all()
    return [dict(r._mapping) for r in rows]
