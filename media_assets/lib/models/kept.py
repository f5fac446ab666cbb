"""Models kept loaded across the runs of one command.

`ingest` materialises its files in runs of `MEDIA_ASSETS_BATCH_SIZE` (64) one after another
in one process. Each run's end unloaded every model, so a 1,000-file ingest loaded CLIP,
the captioner, Whisper, the text model and OCR 16 times each. Inside `kept_between_runs()`
the runs of this process share one model manager (and its ledger lease, so other processes
still see what is held), and its models are unloaded once, when the block ends. Outside it
(the daemon's run workers, the UI) each run still frees its models at its end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
# key -> (manager, close): close() ends what the manager holds besides its models (a ledger)
_shared: dict[str, tuple[Any, Callable[[], None] | None]] = {}


@contextmanager
def kept_between_runs() -> Iterator[None]:
    """Share one manager per model configuration among the runs started inside."""
    global _depth
    with _lock:
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            done = list(_shared.values()) if _depth == 0 else []
            if _depth == 0:
                _shared.clear()
        for manager, close in done:
            manager.unload_all()
            if close is not None:
                close()


def shared_manager(key: str, build: Callable[[], tuple[Any, Callable[[], None] | None]]):
    """The manager kept for `key` (built by `build()` the first time), or None when no
    `kept_between_runs()` block is open: the caller then builds and frees its own."""
    with _lock:
        if _depth == 0:
            return None
        if key not in _shared:
            _shared[key] = build()
        return _shared[key][0]
