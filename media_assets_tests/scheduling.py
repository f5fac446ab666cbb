"""How the suite spreads over pytest-xdist workers (`pytest -n 2`, set in pyproject.toml), so it
ends soonest on 2 cores without building an expensive fixture twice.

- Tests that share an expensive fixture run on one worker, as one `xdist_group`: everything
  that uses the session's `api_library`, and each module that defines a module- or
  session-scoped fixture of its own (pytest would otherwise build it on both workers, and again
  each time a worker comes back to the module). `SPLIT` modules are cut into a few groups
  instead: their fixture is cheap next to their cases.
- The longest work goes out first (longest-processing-time-first): each group's weight is the
  sum of its tests' measured seconds in `durations.json`. Refresh that file with
  `pytest --store-durations` after adding slow tests.
- Workers (`-n auto`, at most 4 by `--maxprocesses`): one more than the cores. Tests wait
  on subprocesses, servers, the daemon's timers and a sensor's interval, and a core sits
  idle meanwhile; a third worker on 2 cores fills it. Measured on 2 idle cores on
  2026-12-04, one run after the other: the full suite 9:53 with 2 workers and 8:54 with 3
  (the cores then 96 % busy); the `not slow` lane 3:05-3:16 with 2 and 2:41 with 3 (86 % and
  96 % busy). (On 2026-12-03, before OCR stopped enlarging small pictures, the lane had
  measured 3:29 with 2 and 4:46 with 3.) xdist's own `pytest_xdist_auto_num_workers`
  answers with the core count unless this plugin's (`tryfirst`) answers before it;
  `PYTEST_XDIST_AUTO_NUM_WORKERS` still overrides both.
- Each worker's OpenMP/BLAS pool gets its share of the cores (at least one thread), so the
  workers do not fight over the cores: set when this plugin loads (`-p` in pyproject.toml), before conftest.py
  imports torch or numpy, and inherited by the CLI subprocesses and the daemon tests start.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
DEFAULT_S = 2.0  # a test not yet measured
# Module -> groups: cases that each run a whole scenario; the module fixture is built once
# per group.
SPLIT: dict[str, int] = {}


def worker_threads() -> int | None:
    """Threads for one xdist worker's numeric libraries; None outside xdist."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 1:
        return None
    return max(1, (os.cpu_count() or 2) // workers)


if (_threads := worker_threads()) is not None:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, str(_threads))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config) -> int | None:
    """Workers for `-n auto`: one more than the cores."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return cores + 1


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each test's seconds (setup + call + teardown) to "
                          f"{DURATIONS.name}, which orders the work across xdist workers")


def _base(nodeid: str) -> str:
    return nodeid.split("@", 1)[0]  # xdist appends @<group> to grouped tests' ids


def _own_fixture_scope(item) -> bool:
    """Whether the test uses a module- or session-scoped fixture defined in its own module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    module_id = item.nodeid.split("::", 1)[0]
    for defs in info.name2fixturedefs.values():
        for fixturedef in defs:
            if fixturedef.scope in ("module", "session") and fixturedef.baseid == module_id:
                return True
    return False


def _group_of(item, position: dict[str, int]) -> str | None:
    module = item.nodeid.split("::", 1)[0]
    name = Path(module).name
    if "api_library" in getattr(item, "fixturenames", ()):
        return "api_library"
    if name in SPLIT:
        position[module] = position.get(module, -1) + 1
        return f"{name}#{position[module] % SPLIT[name]}"
    if _own_fixture_scope(item):
        return name
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it appends them to the ids)
def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: file order, as written
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    units: dict[str, list] = defaultdict(list)
    position: dict[str, int] = {}
    for item in items:
        group = _group_of(item, position)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        units[group or item.nodeid].append(item)
    weight = {unit: sum(seconds.get(_base(i.nodeid), DEFAULT_S) for i in members)
              for unit, members in units.items()}
    items[:] = [i for unit in sorted(units, key=lambda u: -weight[u]) for i in units[unit]]


def _still_there(nodeid: str) -> bool:
    """Whether the test's module still defines its function (params aside)."""
    module, _, name = nodeid.partition("::")
    path = DURATIONS.parent.parent / module
    name = name.split("[", 1)[0].split("::")[-1]
    return path.is_file() and f"def {name}(" in path.read_text(encoding="utf-8")


class _Recorder:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report):
        self.seconds[_base(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session):
        old = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        old = {k: v for k, v in old.items() if _still_there(k)}  # renamed or removed: gone
        old.update({k: round(v, 2) for k, v in self.seconds.items()})
        DURATIONS.write_text(json.dumps(dict(sorted(old.items())), indent=0) + "\n")


def pytest_configure(config):
    # On the controller (or a run without xdist): it sees every worker's reports.
    if config.getoption("--store-durations") and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(_Recorder(), "media-assets-durations")


def pytest_collection_finish(session):
    """Fail loudly if pytest-xdist ignored the groups (it marks a grouped test by appending
    `@<group>` to its id): with pytest 9.2 it silently did, and every worker built the shared
    catalogue again."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not session.config.getvalue("loadgroup"):
        return
    lost = [i.nodeid for i in session.items
            if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(lost)} tests (e.g. {lost[0]}): use the pytest "
            "and pytest-xdist versions pyproject.toml pins")
