"""Per-file results of the per-file assets: done, skipped or failed, at which version.

Every per-file asset writes one row per file of its kinds (defs/per_file.py does it for
all of them), so what is left to do after a crash, a missing model or a model change is a
query, not a hand-kept list: files of the asset's kinds with no row at the current version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class FileResult:
    key: str
    status: str  # ok, skipped, failed
    error: str | None = None
    seconds: float | None = None


def record_results(engine: sa.Engine, asset: str, version: str,
                   results: Iterable[FileResult]) -> None:
    rows = [{"k": r.key, "a": asset, "v": version, "s": r.status, "e": r.error,
             "t": r.seconds} for r in results]
    if not rows:
        return
    with engine.begin() as conn:
        # A file deleted from the catalogue meanwhile has no row to point at: skip it.
        conn.execute(sa.text(
            "INSERT INTO file_asset_results (key, asset, version, status, error, seconds) "
            "SELECT :k, :a, :v, :s, :e, :t WHERE EXISTS (SELECT 1 FROM media_files WHERE key = :k) "
            "ON CONFLICT (key, asset) DO UPDATE SET version = EXCLUDED.version, "
            " status = EXCLUDED.status, error = EXCLUDED.error, seconds = EXCLUDED.seconds, "
            " updated_at = now()"), rows)


def left_to_do(engine: sa.Engine, asset: str, kinds: Sequence[str],
               version: str | None) -> list[str]:
    """Catalogued files (status ok) of `kinds` that `asset` has no result for at `version`
    (None: at any version), oldest first; content whose every path is gone from disk waits until it is back."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT f.key FROM media_files f WHERE f.status = 'ok' AND f.kind = ANY(:kinds) "
            "AND EXISTS (SELECT 1 FROM media_paths p WHERE p.key = f.key "
            "  AND p.status = 'registered') "
            "AND NOT EXISTS (SELECT 1 FROM file_asset_results r WHERE r.key = f.key "
            "  AND r.asset = :a AND (CAST(:v AS text) IS NULL OR r.version = :v)) "
            "ORDER BY f.first_seen_at, f.key"),
            {"kinds": list(kinds), "a": asset, "v": version}).scalars())


def results_of(engine: sa.Engine, key: str) -> dict[str, dict]:
    """asset -> {status, error, version, updated_at} for one file."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT asset, status, error, version, updated_at FROM file_asset_results "
            "WHERE key = :k ORDER BY asset"), {"k": key}).all()
    return {r.asset: {"status": r.status, "error": r.error, "version": r.version,
                      "updated_at": r.updated_at} for r in rows}


def asset_failures(engine: sa.Engine, limit: int = 1000,
                   paths: Sequence[str] | None = None) -> list[dict]:
    """Files an asset could not process, with the reason (for `status`); only the content
    of `paths` when given (for `ingest`'s summary of what it saw)."""
    from media_assets.lib.files.store import display_path

    only = ("AND r.key IN (SELECT key FROM media_paths WHERE path = ANY(:p)) "
            if paths is not None else "")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.asset, f.primary_path AS path, r.key, r.error FROM file_asset_results r "
            f"JOIN media_files f USING (key) WHERE r.status = 'failed' {only}"
            "ORDER BY r.asset, f.primary_path LIMIT :lim"),
            {"lim": limit, "p": [display_path(p) for p in paths or []]}).all()
    return [dict(r._mapping) for r in rows]
