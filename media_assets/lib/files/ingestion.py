"""The one ingestion path: walk → settle → register → ranged batches → resume.

`inbox_sensor` and `media-assets ingest` are thin wrappers over these functions: the sensor
remembers files still being written in its cursor between ticks, the CLI looks once more
after a pause; both register the same way and cut runs the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from media_assets.lib.files.inbox import Candidate, is_settled, register, walk
from media_assets.lib.files.results import left_to_do
from media_assets.lib.files.store import FileStore, Registration, display_path

# Files seen changing, remembered for the next look (the sensor keeps them in its cursor).
MAX_CHANGING = 10_000


def find_ready(roots: Iterable, previous: dict[str, list[int]], settle_s: float,
               skipped: dict[str, str] | None = None,
               ) -> tuple[list[Candidate], dict[str, list[int]]]:
    """Candidates that stopped changing, and path -> [size, mtime_ns] of those still written
    (`skipped`: as `walk`'s)."""
    ready, changing = [], {}
    for c in walk(roots, skipped):
        if is_settled(c, previous, settle_s):
            ready.append(c)
        elif len(changing) < MAX_CHANGING:
            changing[c.path] = [c.size, c.mtime_ns]
    return ready, changing


def settle_now(roots: Sequence, settle_s: float, skipped: dict[str, str] | None = None,
               ) -> tuple[list[Candidate], dict[str, list[int]]]:
    """For a one-shot command: a file modified in the last moment may still be written, so
    look once more after `settle_s`; what still changes then is left out. `skipped`: as
    `walk`'s."""
    ready, changing = find_ready(roots, {}, settle_s, skipped)
    if changing:
        time.sleep(settle_s)
        ready, changing = find_ready(roots, changing, settle_s, skipped)
    return ready, changing


def register_ready(engine: sa.Engine, ready: Sequence[Candidate], max_new: int | None = None,
                   on_file: Callable[[Candidate], None] | None = None,
                   ) -> tuple[Registration, list[Candidate]]:
    return register(FileStore(engine), ready, max_new=max_new, on_file=on_file)


@dataclass
class Presence:
    """What a scan found of the paths already recorded under its roots."""

    gone: list[str] = field(default_factory=list)  # registered, now not on disk: missing
    back: list[str] = field(default_factory=list)  # missing, now back as they were


def note_missing(engine: sa.Engine, roots: Iterable, seen: Sequence[Candidate]) -> Presence:
    """Mark the registered paths under `roots` that are gone from disk as `missing`, and
    the missing ones found again unchanged (same size and modification time) as
    registered. Called with the candidates a full walk of `roots` found.

    A missing path keeps its content and results: search leaves out content no registered
    path holds, and a file that comes back (moved back, a disk mounted again) is not hashed
    or processed again. A missing path that comes back changed is hashed like a new file;
    its old content is retired then if no other path holds it."""
    seen_at = {display_path(c.path): c for c in seen}
    tops = [display_path(os.path.abspath(r)) for r in roots]
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT path, path_bytes, key, status, size_bytes, mtime_ns FROM media_paths "
            "WHERE status IN ('registered', 'missing') AND (path = ANY(:tops) OR EXISTS ("
            "  SELECT 1 FROM unnest(CAST(:dirs AS text[])) d WHERE starts_with(path, d)))"),
            {"tops": tops, "dirs": [t.rstrip("/") + "/" for t in tops]}).all()
    out, recheck = Presence(), []
    for r in rows:
        found = seen_at.get(r.path)
        if r.status == "registered" and found is None:
            on_disk = os.fsdecode(bytes(r.path_bytes)) if r.path_bytes is not None else r.path
            if not os.path.lexists(on_disk):  # there but not a candidate (a FIFO now): kept
                out.gone.append(r.path)
        elif r.status == "missing" and found is not None:
            if (r.key is not None and found.size == r.size_bytes
                    and found.mtime_ns == r.mtime_ns and not found.problem):
                out.back.append(r.path)
            else:  # changed meanwhile, or its content was retired: hashed again
                recheck.append(r.path)
    if not (out.gone or out.back or recheck):
        return out
    with engine.begin() as conn:
        for status, paths in (("missing", out.gone), ("registered", out.back)):
            if paths:
                conn.execute(sa.text(
                    "UPDATE media_paths SET status = :s, last_seen_at = now() "
                    "WHERE path = ANY(:p)"), {"s": status, "p": paths})
        if recheck:  # a different size or time than recorded makes `register` hash it
            conn.execute(sa.text("UPDATE media_paths SET mtime_ns = NULL WHERE path = ANY(:p)"),
                         {"p": recheck})
        # Search and the per-file assets show a content's primary path: one on disk.
        conn.execute(sa.text(
            "UPDATE media_files f SET primary_path = p.path FROM ("
            "  SELECT DISTINCT ON (key) key, path FROM media_paths WHERE status = 'registered'"
            "  AND key IN (SELECT key FROM media_paths WHERE path = ANY(:p))"
            "  ORDER BY key, first_seen_at) p "
            "WHERE f.key = p.key AND NOT EXISTS (SELECT 1 FROM media_paths q "
            "  WHERE q.path = f.primary_path AND q.status = 'registered')"),
            {"p": out.gone + out.back})
    return out


def missing_paths(engine: sa.Engine, limit: int = 1000) -> list[dict]:
    """Paths gone from disk at their folder's last scan (for `status`), newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT path, key, last_seen_at FROM media_paths WHERE status = 'missing' "
            "ORDER BY last_seen_at DESC, path LIMIT :lim"), {"lim": limit}).all()
    return [dict(r._mapping) for r in rows]


def plan_batches(order: Sequence[str], wanted: set[str], size: int) -> list[list[str]]:
    """Split `wanted` into runs of consecutive keys of the partition order, at most `size` long.

    A ranged run materialises every partition between its ends, so a batch must not span a
    key that was not asked for.
    """
    batches: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted and len(current) < size:
            current.append(key)
            continue
        if current:
            batches.append(current)
        current = [key] if key in wanted else []
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class PerFileAsset:
    """What the resume plan needs to know of a per-file asset, from the asset graph."""

    name: str
    kinds: tuple[str, ...]
    # The current model space ('' when results do not depend on one; None: any result
    # stands, as the LLM steps' heuristic results do while no LLM is here).
    version: str | None
    downstream: frozenset[str]  # per-file assets that read its output, transitively


def left_over(engine: sa.Engine, assets: Sequence[PerFileAsset],
              exclude: set[str] = frozenset()) -> dict[frozenset[str], list[str]]:
    """Catalogued files whose per-file work is unfinished (a crash, a model that was
    missing, a model change), grouped by the assets to run for them: the unfinished ones and
    everything downstream of those. Keys in `exclude` (about to run anyway) are left out."""
    need: dict[str, set[str]] = {}
    for a in assets:
        for key in left_to_do(engine, a.name, a.kinds, a.version):
            if key not in exclude:
                need.setdefault(key, set()).update({a.name, *a.downstream})
    available = {a.name for a in assets}
    groups: dict[frozenset[str], list[str]] = {}
    for key, names in need.items():
        groups.setdefault(frozenset(names & available), []).append(key)
    return groups
