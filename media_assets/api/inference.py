"""Model work off the event loop, one inference at a time per model, in bounded queues.

Before, one process-wide lock was taken for every model call and for the whole of `/search`
(SQL included), and the waiting happened in the server's shared thread pool: one 10-hour
`/transcribe` made `/search` time out, and under 32 concurrent requests every search queued
behind every other. Now:

- `OneAtATime` wraps the model manager: `use(role)` holds that model's own lock while the
  model runs, so Whisper transcribing never stops CLIP embedding a query, and no model runs
  two inferences at once (their memory is budgeted for one). Query embeddings of
  concurrent searches are batched (`batching.py`).
- `Lanes.run(lane, fn)` admits a request to a lane (`speech`, `vision`, `llm`, `search`,
  `pictures`) only while fewer than its depth are waiting or running there; beyond that it
  raises `QueueFull` (503 with `Retry-After`, estimated from the lane's recent durations).
  Admitted work runs in the lane's own worker threads, never on the event loop, so
  `/health` and the catalogue's reads answer while a lane is busy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Callable

import anyio
import anyio.to_thread

from media_assets.api.batching import BatchedClip, BatchedText, Batcher


class QueueFull(Exception):
    """A lane already holds as many requests as it may: come back later."""

    def __init__(self, lane: str, depth: int, retry_after: int):
        super().__init__(
            f"the {lane} queue is full ({depth} requests waiting or running; "
            f"MEDIA_ASSETS_API_QUEUE): retry in about {retry_after} s")
        self.lane, self.retry_after = lane, retry_after


class OneAtATime:
    """The model manager, with one inference at a time per model. Every other attribute is
    the manager's, so `lib/` functions take it in the manager's place. The text model and
    CLIP take their lock per call, not per `with`, and batch concurrent query embeddings
    (`batching.py`) instead of making them wait for each other."""

    BATCHED = {"text": BatchedText, "clip": BatchedClip}

    def __init__(self, manager):
        self._manager = manager
        self._locks: dict[str, threading.RLock] = defaultdict(threading.RLock)
        self._guard = threading.Lock()
        self._batchers: dict[str, Batcher] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def _lock(self, role: str) -> threading.RLock:
        with self._guard:
            return self._locks[str(role)]

    @contextmanager
    def use(self, role: str):
        role = str(role)
        if role in self.BATCHED:
            lock = self._lock(role)
            with self._guard:
                batcher = self._batchers.setdefault(role, Batcher(lock))
            with self._manager.use(role) as model:
                yield self.BATCHED[role](model, batcher, lock)
            return
        with self._lock(role), self._manager.use(role) as model:
            yield model


class Lanes:
    """Bounded admission to named lanes; admitted work runs in worker threads."""

    def __init__(self, depths: dict[str, int], threads: dict[str, int]):
        self.depths = depths
        self._threads = threads
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self.pending: dict[str, int] = defaultdict(int)  # touched on the event loop only
        self._seconds: dict[str, float] = {}  # moving average of a request's duration

    def retry_after(self, lane: str) -> int:
        per = self._seconds.get(lane, 5.0)
        workers = self._threads.get(lane, 1)
        return max(1, min(3600, math.ceil(per * self.pending[lane] / workers)))

    async def run(self, lane: str, fn: Callable[..., Any], *args: Any) -> Any:
        depth = self.depths[lane]
        if self.pending[lane] >= depth:
            raise QueueFull(lane, depth, self.retry_after(lane))
        limiter = self._limiters.get(lane)
        if limiter is None:  # made on the event loop: anyio wants one running
            limiter = self._limiters[lane] = anyio.CapacityLimiter(self._threads[lane])
        self.pending[lane] += 1
        start = time.monotonic()
        try:
            # Not abandoned on cancel: `pending` counts work until its thread is done.
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
        finally:
            self.pending[lane] -= 1
            took = time.monotonic() - start
            prev = self._seconds.get(lane)
            self._seconds[lane] = took if prev is None else 0.7 * prev + 0.3 * took
