"""Search queries from concurrent requests, embedded together.

Every `/search` embeds its query twice (the text model for meaning, CLIP for pictures).
One model runs one inference at a time, so 32 concurrent searches waited for 32 calls in a
row: search p95 was 3.9 s under the load test. A batch of short queries costs little more
than one (the weights are read once per call), so here the queries that arrive while a
call runs wait for the next call together, one call at a time. Recent queries' vectors are
kept, as a page asks the same query again with other filters.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any


class Batcher:
    """Items (key, payload) from many threads, computed by as few `call(payloads)` as the
    arrivals allow, one call at a time under the model's lock; results remembered by key."""

    def __init__(self, lock: threading.RLock, max_batch: int = 64, remember: int = 2048):
        self._lock, self.max_batch, self.remember = lock, max_batch, remember
        self._guard = threading.Lock()
        self._pending: list[tuple[Hashable, Any, Future]] = []
        self._leading = False
        self._known: OrderedDict[Hashable, Any] = OrderedDict()

    def run(self, items: Sequence[tuple[Hashable, Any]],
            call: Callable[[list[Any]], Sequence[Any]]) -> list[Any]:
        futures = []
        with self._guard:
            for key, payload in items:
                fut: Future = Future()
                if key in self._known:
                    self._known.move_to_end(key)
                    fut.set_result(self._known[key])
                else:
                    self._pending.append((key, payload, fut))
                futures.append(fut)
            lead = bool(self._pending) and not self._leading
            self._leading = self._leading or lead
        if lead:  # this thread computes batches until none is waiting
            self._drain(call)
        return [f.result() for f in futures]

    def _drain(self, call: Callable[[list[Any]], Sequence[Any]]) -> None:
        while True:
            with self._guard:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                if not batch:
                    self._leading = False
                    return
            try:
                with self._lock:
                    results = list(call([payload for _, payload, _ in batch]))
            except BaseException as exc:  # every waiter hears it, and the next batch runs
                for _, _, fut in batch:
                    fut.set_exception(exc)
                continue
            with self._guard:
                for (key, _, fut), result in zip(batch, results):
                    self._known[key] = result
                    fut.set_result(result)
                while len(self._known) > self.remember:
                    self._known.popitem(last=False)


class BatchedText:
    """The text model as `lib/` sees it; `query` goes through the batcher, everything
    else runs under the model's lock."""

    def __init__(self, model, batcher: Batcher, lock: threading.RLock):
        self._model, self._batcher, self._lock = model, batcher, lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def query(self, texts: list[str]):
        import numpy as np

        ref = getattr(self._model, "model_ref", "")
        rows = self._batcher.run([((ref, t), t) for t in texts], self._model.query)
        return np.stack(rows) if rows else self._model.query([])

    def passage(self, texts: list[str], *args, **kwargs):
        with self._lock:
            return self._model.passage(texts, *args, **kwargs)


class _ClipNet:
    """CLIP's network: `encode_text` batched by token rows, the rest under the lock."""

    def __init__(self, net, batcher: Batcher, lock: threading.RLock, ref: str):
        self._net, self._batcher, self._lock, self._ref = net, batcher, lock, ref

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._net, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return locked

    def encode_text(self, tokens, *args, **kwargs):
        import torch

        if args or kwargs:
            with self._lock:
                return self._net.encode_text(tokens, *args, **kwargs)
        rows = list(tokens)
        out = self._batcher.run(
            [((self._ref, r.cpu().numpy().tobytes()), r) for r in rows],
            lambda batch: list(self._net.encode_text(torch.stack(batch))))
        return torch.stack(out) if out else self._net.encode_text(tokens)


class BatchedClip:
    """The CLIP bundle as `lib/` sees it, its network wrapped by `_ClipNet`."""

    def __init__(self, bundle, batcher: Batcher, lock: threading.RLock):
        self._bundle = bundle
        self.model = _ClipNet(bundle.model, batcher, lock, getattr(bundle, "model_ref", ""))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bundle, name)
