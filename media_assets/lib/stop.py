"""A request to stop the work in progress, shared by the command that runs it and the loops
inside it.

`media-assets ingest` asks for it on the first Ctrl-C. The per-file loop
(`defs/per_file.FileBatch`), the registration loop and the run loop look at it between
files and between runs, so every file is either done (its results committed) or untouched,
and the next `ingest` does what is left. Plain Python: no Dagster, no signals here.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask the work in progress to stop after its current file."""
    _requested.set()


def requested() -> bool:
    """Whether a stop was asked for; loops check it between files."""
    return _requested.is_set()


def clear() -> None:
    """Forget a stop request (a new command starts afresh)."""
    _requested.clear()


class Stopped(Exception):
    """Raised by a loop that noticed a stop request, to leave the work cleanly."""
