"""ModelManager with fake loaders of declared sizes: budget, LRU, in-use, on-demand, threads."""

import threading
import time

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from media_assets.lib.models.manager import ModelBudgetError, ModelManager, ModelSpec


class FakeMemory:
    """Plays the device: loaders allocate their declared size, unloads free it."""

    def __init__(self):
        self.mb = 0.0
        self.live: dict[str, float] = {}

    def loader(self, name: str, size: float, real_size: float | None = None):
        def load():
            self.mb += real_size if real_size is not None else size
            obj = {"name": name}
            self.live[name] = real_size if real_size is not None else size
            return obj
        return load

    def release(self, device):
        pass


def _manager(budget, sizes, on_demand=(), real=None, mem=None, wait=2.0):
    mem = mem or FakeMemory()
    m = ModelManager(budget, measure=lambda: mem.mb, release=mem.release, wait_timeout_s=wait)
    for name, size in sizes.items():
        m.register(ModelSpec(name, mem.loader(name, size, (real or {}).get(name)), size,
                             "on_demand" if name in on_demand else "resident"))
    return m, mem


SIZES = {"clip": 400, "captioner": 1500, "whisper": 1000, "llm": 2500}


@hsettings(max_examples=200, deadline=None)
@given(budget=st.integers(2500, 6000),
       ops=st.lists(st.tuples(st.sampled_from(sorted(SIZES)), st.booleans()), max_size=40))
def test_no_sequence_of_uses_exceeds_the_budget(budget, ops):
    # One thread holding models cannot wait for itself: no waiting, refuse at once.
    m, _ = _manager(budget, SIZES, on_demand={"llm"}, wait=0)
    held = []
    for name, nest in ops:
        if nest and len(held) < 2:
            ctx = m.use(name)
            try:
                ctx.__enter__()
                held.append(ctx)
            except ModelBudgetError:
                pass  # the models held leave no room: refused, never overcommitted
        else:
            try:
                with m.use(name):
                    assert m.used_mb <= budget
            except ModelBudgetError:
                assert held  # only models held open can stand in the way
        assert m.used_mb <= budget and m.peak_mb <= budget
        assert sum(m.loaded().values()) == pytest.approx(m.used_mb)
    for ctx in held:
        ctx.__exit__(None, None, None)
    assert m.peak_mb <= budget


def test_lru_order_evicts_the_least_recently_used():
    m, _ = _manager(1000, {"a": 400, "b": 400, "c": 400})
    with m.use("a"):
        pass
    with m.use("b"):
        pass
    with m.use("a"):  # a is now the most recent
        pass
    with m.use("c"):
        pass
    assert list(m.loaded()) == ["a", "c"]
    assert m.stats("b").unloads == 1


def test_model_in_use_is_never_evicted():
    m, _ = _manager(1000, {"a": 600, "b": 600}, )
    m._wait_timeout_s = 0.2
    with m.use("a") as a:
        with pytest.raises(ModelBudgetError, match="models in use: \\['a'\\]"):
            with m.use("b"):
                pass
        assert a == {"name": "a"} and "a" in m.loaded()


def test_on_demand_is_unloaded_after_use():
    m, _ = _manager(6000, {"clip": 400, "llm": 2500}, on_demand={"llm"})
    with m.use("clip"):
        pass
    with m.use("llm") as llm:
        assert llm["name"] == "llm" and "llm" in m.loaded()
    assert list(m.loaded()) == ["clip"]


def test_impossible_request_fails_at_once_naming_budget_and_size():
    m, _ = _manager(2000, {"llm": 2500})
    start = time.monotonic()
    with pytest.raises(ModelBudgetError, match=r"needs about 2500 MB but the memory budget is 2000 MB"):
        with m.use("llm"):
            pass
    assert time.monotonic() - start < 0.5


def test_measured_footprint_corrects_the_estimate():
    m, _ = _manager(3000, {"clip": 400}, real={"clip": 700})
    with m.use("clip"):
        pass
    assert m.loaded() == {"clip": 700}
    assert m.spec("clip").estimate_mb == 700
    assert m.stats("clip").measured_mb == 700


def test_concurrent_use_from_threads_loads_once_and_stays_in_budget():
    loads = []
    mem = FakeMemory()
    m = ModelManager(1500, measure=lambda: mem.mb, release=mem.release, wait_timeout_s=10)

    def slow_loader(name, size):
        def load():
            loads.append(name)
            time.sleep(0.02)
            mem.mb += size
            return name
        return load
    for name, size in {"a": 700, "b": 700, "c": 700}.items():
        m.register(ModelSpec(name, slow_loader(name, size), size))
    errors, peak = [], []

    def worker(i):
        try:
            for j in range(10):
                with m.use("abc"[(i + j) % 3]) as model:
                    peak.append(m.used_mb)
                    assert model in "abc"
                    time.sleep(0.001)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert max(peak) <= 1500 and m.peak_mb <= 1500


def test_failed_load_releases_its_reservation():
    m = ModelManager(1000, measure=lambda: 0.0, release=lambda d: None)

    def broken():
        raise FileNotFoundError("weights missing")
    m.register(ModelSpec("x", broken, 800))
    with pytest.raises(FileNotFoundError):
        with m.use("x"):
            pass
    assert m.used_mb == 0 and m.loaded() == {}
