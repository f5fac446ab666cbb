"""The one ingestion path: walk → settle → register → ranged batches → resume.

`inbox_sensor` and `media-assets ingest` are thin wrappers over these functions: the sensor
remembers files still being written in its cursor between ticks, the CLI looks once more
after a pause; both register the same way and cut runs the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from media_assets.lib.files.inbox import Candidate, is_settled, register, walk
from media_assets.lib.files.results import left_to_do
from media_assets.lib.files.store import FileStore, Registration

# Files seen changing, remembered for the next look (the sensor keeps them in its cursor).
MAX_CHANGING = 10_000


def find_ready(roots: Iterable, previous: dict[str, list[int]], settle_s: float,
               ) -> tuple[list[Candidate], dict[str, list[int]]]:
    """Candidates that stopped changing, and path -> [size, mtime_ns] of those still written."""
    ready, changing = [], {}
    for c in walk(roots):
        if is_settled(c, previous, settle_s):
            ready.append(c)
        elif len(changing) < MAX_CHANGING:
            changing[c.path] = [c.size, c.mtime_ns]
    return ready, changing


def settle_now(roots: Sequence, settle_s: float) -> tuple[list[Candidate], dict[str, list[int]]]:
    """For a one-shot command: a file modified in the last moment may still be written, so
    look once more after `settle_s`; what still changes then is left out."""
    ready, changing = find_ready(roots, {}, settle_s)
    if changing:
        time.sleep(settle_s)
        ready, changing = find_ready(roots, changing, settle_s)
    return ready, changing


def register_ready(engine: sa.Engine, ready: Sequence[Candidate], max_new: int | None = None,
                   on_file: Callable[[Candidate], None] | None = None,
                   ) -> tuple[Registration, list[Candidate]]:
    return register(FileStore(engine), ready, max_new=max_new, on_file=on_file)


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
    version: str  # the current model space ('' when results do not depend on one)
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
