"""One owner for every loaded model, inside a memory budget.

`with manager.use("clip") as model:` loads on first use and keeps the model while the budget
allows (`resident`), or unloads it right after (`on_demand`, the LLM). To make room it evicts
least-recently-used idle models; a model in use is never evicted. A request that can never
fit fails at once. Loads are serialised; after each load the real footprint is measured
(CUDA allocated bytes, or RSS on CPU) and replaces the estimate for the next time.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

Strategy = Literal["resident", "on_demand"]


class ModelBudgetError(RuntimeError):
    """A model that can never fit in the budget, or that waited too long for room."""


@dataclass
class ModelSpec:
    name: str
    loader: Callable[[], Any]
    estimate_mb: float
    strategy: Strategy = "resident"
    model_id: str = ""  # what the user configured (hub id or path), for reports
    fixed: bool = False  # the estimate is the footprint: a measurement does not replace it


@dataclass
class LoadStats:
    load_seconds: float = 0.0
    measured_mb: float = 0.0
    loads: int = 0
    unloads: int = 0


@dataclass
class _Entry:
    model: Any = None
    charged_mb: float = 0.0
    in_use: int = 0
    loading: bool = False
    last_used: float = 0.0  # time.monotonic() when last released
    stats: LoadStats = field(default_factory=LoadStats)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def cuda_allocated_mb() -> float:
    import torch

    return torch.cuda.memory_allocated() / 2**20


def release_memory(device: str) -> None:
    """Give freed memory back: the garbage collector, CUDA's cache, glibc's heap."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
    try:  # glibc keeps freed heap pages; without a trim RSS never comes down on CPU
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


log = logging.getLogger(__name__)
WAIT_REPORT_S = 10.0  # a wait for memory says who holds what this often


def _footprint_key(spec: ModelSpec) -> str:
    return f"{spec.name}:{spec.model_id}"


_frozen = False


def _freeze_imports() -> None:
    """Before this process's first model load, move every object alive so far (the
    imported modules of torch, transformers, Dagster: millions of objects) out of the
    collector's sight with `gc.freeze()`. Each unload's `gc.collect()` then scans only what
    came after, in milliseconds instead of about a second. Frozen objects are still freed
    by reference counting; only cycles among them would stay, and imports live for the
    process anyway."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


class ModelManager:
    """Thread-safe registry of models sharing one memory budget (MB)."""

    def __init__(self, budget_mb: float, device: str = "cpu",
                 measure: Callable[[], float] | None = None,
                 release: Callable[[str], None] = release_memory, wait_timeout_s: float = 600):
        self.budget_mb = float(budget_mb)
        self.device = device
        self._measure = measure or (cuda_allocated_mb if device.startswith("cuda") else rss_mb)
        self._release = release
        self._wait_timeout_s = wait_timeout_s
        self._specs: dict[str, ModelSpec] = {}
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # LRU order: oldest first
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._used_mb = 0.0
        self.peak_mb = 0.0
        # Optional: a machine-wide ledger (lib/db/ledger.py) that other processes' models
        # count in too: reserve(name, mb, budget) -> bool, update(name, mb), release(name).
        self.ledger = None
        # The models on this machine (inventory.py) the loaders locate through; set by
        # `registry.build_manager`, so whoever holds the manager asks the same inventory.
        self.inventory = None

    # -- registry ---------------------------------------------------------------------
    def register(self, spec: ModelSpec) -> None:
        with self._cond:
            self._specs[spec.name] = spec

    def spec(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"no model named {name!r}; registered: {sorted(self._specs)}") from None

    # -- state ------------------------------------------------------------------------
    @property
    def used_mb(self) -> float:
        return self._used_mb

    def loaded(self) -> dict[str, float]:
        """name -> MB charged, for the models in memory now (LRU order)."""
        with self._cond:
            return {n: e.charged_mb for n, e in self._entries.items() if e.model is not None}

    def stats(self, name: str) -> LoadStats:
        with self._cond:
            entry = self._entries.get(name)
            return entry.stats if entry else LoadStats()

    def load_counts(self) -> dict[str, int]:
        """name -> how many times this manager has loaded it."""
        with self._cond:
            return {n: e.stats.loads for n, e in self._entries.items()}

    def _charge(self, mb: float) -> None:
        self._used_mb += mb
        self.peak_mb = max(self.peak_mb, self._used_mb)

    # -- use --------------------------------------------------------------------------
    @contextmanager
    def use(self, name: str) -> Iterator[Any]:
        spec = self.spec(name)
        entry = self._acquire(spec)
        try:
            if entry.model is None:
                self._load(spec, entry)
            yield entry.model
        finally:
            with self._cond:
                entry.in_use -= 1
                entry.last_used = time.monotonic()
                if spec.strategy == "on_demand" and entry.in_use == 0 and entry.model is not None:
                    self._unload_locked(name)
                self._cond.notify_all()

    def _need_mb(self, spec: ModelSpec) -> float:
        """What a load reserves before it starts: the larger of the estimate and what this
        model last measured on this device in any process (the ledger keeps it), so a
        first guess of a few MB cannot let two processes past the budget together."""
        if self.ledger is None or spec.fixed:
            return spec.estimate_mb
        try:
            return max(spec.estimate_mb, self.ledger.footprint(_footprint_key(spec)))
        except Exception:  # noqa: BLE001 - a catalogue without the table: the estimate
            return spec.estimate_mb

    def _acquire(self, spec: ModelSpec) -> _Entry:
        with self._cond:  # loaded already: shared at once (no footprint to look up)
            entry = self._entries.get(spec.name)
            if entry is not None and entry.model is not None and not entry.loading:
                entry.in_use += 1
                self._entries.move_to_end(spec.name)
                return entry
        need = self._need_mb(spec)
        if need > self.budget_mb:
            raise ModelBudgetError(
                f"model {spec.name!r} ({spec.model_id or 'no id'}) needs about "
                f"{need:.0f} MB but the memory budget is {self.budget_mb:.0f} MB "
                f"on {self.device}: raise the budget or configure a smaller model")
        start = time.monotonic()
        deadline, next_report = start + self._wait_timeout_s, start + WAIT_REPORT_S
        with self._cond:
            while True:
                entry = self._entries.get(spec.name)
                if entry is not None and entry.loading:
                    pass  # another thread is loading it: wait, then share it
                elif entry is not None and entry.model is not None:
                    entry.in_use += 1
                    self._entries.move_to_end(spec.name)
                    return entry
                elif self._make_room(need) and self._lease(spec, need):
                    entry = self._entries.setdefault(spec.name, _Entry())
                    entry.loading, entry.in_use = True, entry.in_use + 1
                    entry.charged_mb = need  # reserved until measured
                    self._charge(need)
                    self._entries.move_to_end(spec.name)
                    return entry
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    raise ModelBudgetError(
                        f"waited {self._wait_timeout_s:.0f} s for {need:.0f} MB for "
                        f"{spec.name!r}; {self._holders_text()} "
                        f"(budget {self.budget_mb:.0f} MB)")
                if now >= next_report:  # a wait is never silent
                    next_report = now + WAIT_REPORT_S
                    log.warning("waiting %.0f s for %.0f MB of model memory for %r; %s "
                                "(budget %.0f MB on %s)", now - start, need, spec.name,
                                self._holders_text(), self.budget_mb, self.device)
                # Another process may hold the memory (ledger): poll, not only notifications.
                self._cond.wait(timeout=min(remaining, 0.5 if self.ledger else remaining,
                                            max(0.05, next_report - now)))

    def _holders_text(self) -> str:
        """Who holds what: this process's models, and every process's leases (ledger)."""
        if self.ledger is not None:
            try:
                held = self.ledger.holders()
                return "held: " + (", ".join(f"{who} {model} {mb:.0f} MB"
                                             for who, model, mb in held) or "nothing")
            except Exception:  # noqa: BLE001 - the report must not break the wait
                pass
        return (f"models in use: {self._in_use_names()}, "
                f"{self._used_mb:.0f} MB charged")

    def _lease(self, spec: ModelSpec, need: float) -> bool:
        """The ledger's consent (other processes' models count too). Refused: this
        process's idle models go (they may be what the other process waits for), and the
        caller waits."""
        if self.ledger is None or self.ledger.reserve(spec.name, need, self.budget_mb):
            return True
        idle = [n for n, e in self._entries.items()
                if e.model is not None and not e.in_use and not e.loading]
        for name in idle:
            self._unload_locked(name, release=False)
        if idle:
            self._release(self.device)
        return False

    def _in_use_names(self) -> list[str]:
        return [n for n, e in self._entries.items() if e.in_use or e.loading]

    def _make_room(self, need_mb: float) -> bool:
        """Evict idle models, least recently used first, until `need_mb` fits."""
        if self._used_mb + need_mb <= self.budget_mb:
            return True
        idle = [n for n, e in self._entries.items()
                if e.model is not None and not e.in_use and not e.loading]
        freeable = sum(self._entries[n].charged_mb for n in idle)
        if self._used_mb - freeable + need_mb > self.budget_mb:
            return False  # only models in use stand in the way: wait for them
        freed = False
        for name in idle:
            if self._used_mb + need_mb <= self.budget_mb:
                break
            self._unload_locked(name, release=False)
            freed = True
        if freed:
            self._release(self.device)
        return True

    def _load(self, spec: ModelSpec, entry: _Entry) -> None:
        _freeze_imports()
        with self._load_lock:
            before = self._measure()
            start = time.perf_counter()
            try:
                model = spec.loader()
            except BaseException:
                with self._cond:
                    if self.ledger is not None:
                        self.ledger.release(spec.name)
                    self._used_mb -= entry.charged_mb
                    entry.charged_mb, entry.loading = 0.0, False
                    self._cond.notify_all()
                raise
            seconds = time.perf_counter() - start
            measured = self._measure() - before
        with self._cond:
            entry.model, entry.loading = model, False
            entry.stats.load_seconds, entry.stats.measured_mb = seconds, measured
            entry.stats.loads += 1
            if measured > 0 and not spec.fixed:
                # The measurement is the truth from now on: correct the charge and the estimate.
                self._used_mb += measured - entry.charged_mb
                entry.charged_mb = measured
                spec.estimate_mb = measured
                if self.ledger is not None:
                    self.ledger.update(spec.name, measured, _footprint_key(spec))
                self.peak_mb = max(self.peak_mb, self._used_mb)
            if self._used_mb > self.budget_mb:  # bigger than estimated: evict others
                freed = False
                for name in [n for n, e in self._entries.items()
                             if e.model is not None and not e.in_use and n != spec.name]:
                    if self._used_mb <= self.budget_mb:
                        break
                    self._unload_locked(name, release=False)
                    freed = True
                if freed:
                    self._release(self.device)
            self._cond.notify_all()

    # -- unload -----------------------------------------------------------------------
    def _unload_locked(self, name: str, release: bool = True) -> None:
        """Drop one model. `release=False` when the caller drops several: it releases once
        after the last, as a full `gc.collect()` costs about a second in a process that has
        imported torch, transformers and Dagster."""
        entry = self._entries[name]
        entry.model = None
        self._used_mb -= entry.charged_mb
        entry.charged_mb = 0.0
        entry.stats.unloads += 1
        if self.ledger is not None:
            self.ledger.release(name)
        if release:
            self._release(self.device)

    def unload(self, name: str) -> bool:
        """Unload an idle model now; False if it is not loaded or in use."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None or entry.model is None or entry.in_use:
                return False
            self._unload_locked(name)
            self._cond.notify_all()
            return True

    def unload_idle(self, idle_s: float) -> list[str]:
        """Unload models nobody has used for `idle_s` seconds (the server's TTL)."""
        now, out = time.monotonic(), []
        with self._cond:
            for name, e in list(self._entries.items()):
                if (e.model is not None and not e.in_use and not e.loading
                        and now - e.last_used >= idle_s):
                    self._unload_locked(name, release=False)
                    out.append(name)
            self._cond.notify_all()
        if out:
            # Outside the lock: a full gc and a heap trim take tens of ms, and every
            # request of the server waits on this lock for its models.
            self._release(self.device)
        return out

    def unload_all(self) -> None:
        """Unload every idle model (a run's end), releasing memory once."""
        with self._cond:
            dropped = [n for n, e in self._entries.items()
                       if e.model is not None and not e.in_use]
            for name in dropped:
                self._unload_locked(name, release=False)
            if dropped:
                self._release(self.device)
            self._cond.notify_all()
