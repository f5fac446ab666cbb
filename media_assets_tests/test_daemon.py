"""The daemon, the run queue and the `gpu` pool together: a real `dagster-daemon` on a
PostgreSQL-backed instance, fed by the inbox sensor. Runs with model assets never hold the
pool at once (from the recorded events), and a run whose worker is `kill -9`'d is marked
failed, frees the pool, and its files are asked for again and catalogued."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from media_assets.lib.samples import photo_groups
from media_assets.lib.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow  # a whole scenario per test: the full suite runs it

GPU_STEPS = {"image_embeddings", "image_analysis", "image_duplicates"}


def _wait(what, predicate, timeout: float = 900):  # generous: a loaded 2-core run took 4.5 min
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _gpu_window(instance, run_id) -> tuple[float, float] | None:
    times = [r.event_log_entry.timestamp for r in instance.get_records_for_run(run_id).records
             if r.event_log_entry.dagster_event
             and r.event_log_entry.dagster_event.event_type_value in ("STEP_START",
                                                                      "STEP_SUCCESS")
             and r.event_log_entry.step_key in GPU_STEPS]
    return (min(times), max(times)) if times else None


def test_daemon_queue_and_pool_and_a_killed_run(settings, catalog, tiny_models, monkeypatch):
    from media_assets.cli import _instance

    env = {"MEDIA_ASSETS_MODEL_DIR": str(tiny_models), "MEDIA_ASSETS_BATCH_SIZE": "2",
           "MEDIA_ASSETS_SENSOR_INTERVAL_S": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    instance = _instance(settings, catalog)  # DAGSTER_HOME on PostgreSQL, gpu pool = 1
    home = Path(os.environ["DAGSTER_HOME"])
    # Slots of a run that ended without freeing them are freed after 1 s here (30 s in the
    # shipped dagster.yaml), to keep the test short.
    config = (home / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(config.replace(
        "free_slots_after_run_end_seconds: 30", "free_slots_after_run_end_seconds: 1"))
    # Four photos in batches of 2: two runs, queued together. The `gpu` pool (granularity
    # `run`) lets the second start only when the first has ended; the second is killed with
    # -9 while it works, and Dagster's run retries finish its files.
    photo_groups(settings.inbox / "a", per_group=2, sources=("coffee", "rocket"))
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run",
                               "-w", str(PROJECT_ROOT / "workspace.yaml")],
                              cwd=PROJECT_ROOT, env=dict(os.environ), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def runs_of(*statuses):
            return instance.get_runs(filters=dg.RunsFilter(job_name="media_job",
                                                           statuses=list(statuses)))

        first = _wait("the first run to succeed", lambda: runs_of(
            dg.DagsterRunStatus.SUCCESS))[0]
        second = _wait("the second run to start", lambda: next(
            (r for r in runs_of(dg.DagsterRunStatus.STARTED) if r.run_id != first.run_id),
            None))
        start = _wait("the second run worker's pid", lambda: instance.get_records_for_run(
            second.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records)[0]
        # Queued together, started one after the other: the pool held the second back.
        first_window = _gpu_window(instance, first.run_id)
        assert first_window is not None and first_window[1] <= start.event_log_entry.timestamp
        os.kill(start.event_log_entry.dagster_event.pid, signal.SIGKILL)
        _wait("the killed run to be marked failed", lambda: instance.get_run_by_id(
            second.run_id).status == dg.DagsterRunStatus.FAILURE)
        _wait("the pool to be free", lambda: not instance.event_log_storage
              .get_concurrency_info("gpu").claimed_slots)
        with catalog.engine.connect() as conn:
            _wait("the killed run's files to be catalogued by a retry", lambda: conn.execute(
                sa.text("SELECT count(*) FROM image_analysis")).scalar() == 4)
        # Retried by Dagster's run retries: linked to the killed run as a re-execution is.
        retry = instance.get_run_by_id(instance.get_run_by_id(second.run_id).tags[
            "dagster/auto_retry_run_id"])
        assert retry.parent_run_id == second.run_id and retry.root_run_id == second.run_id
        _wait("the retry to succeed", lambda: instance.get_run_by_id(
            retry.run_id).status == dg.DagsterRunStatus.SUCCESS)
        windows = sorted(w for w in (_gpu_window(instance, r) for r in (first.run_id,
                                                                         retry.run_id)) if w)
        assert len(windows) == 2
        assert windows[0][1] <= windows[1][0]  # the gpu pool: one run's model steps at a time
    finally:
        # The daemon and what it started (its code server, run workers), none left behind.
        import psutil

        family = [daemon.pid] + [c.pid for c in psutil.Process(daemon.pid).children(True)]
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        for pid in family[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        instance.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _location(url: str) -> dict:
    """The UI's view of the code location, as its status page asks for it."""
    import httpx

    from media_assets.cli.code_watch import LOCATIONS

    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        entries = httpx.post(f"{url}/graphql", json={"query": LOCATIONS}, timeout=30).json()[
            "data"]["workspaceOrError"]["locationEntries"]
        return next((e for e in entries if e["name"] == "media_assets"), {})
    return {}


def test_dev_reloads_its_code_location_after_the_code_server_dies(settings, catalog,
                                                                   tiny_models, monkeypatch):
    """Issue 20 item 6: `media-assets dev` with its code server killed (as the kernel's OOM
    killer would): the location is reloaded without anyone clicking Reload, and files dropped
    afterwards are catalogued by the sensor, which runs in that code server. Before, the
    location stayed failed and the inbox was never read again."""
    import psutil

    env = {"MEDIA_ASSETS_MODEL_DIR": str(tiny_models), "MEDIA_ASSETS_SENSOR_INTERVAL_S": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Started as a shell's background job starts it: with SIGINT ignored (then `dagster dev`,
    # which takes SIGTERM for SIGINT, ignored SIGTERM too and never stopped).
    dev = subprocess.Popen([str(Path(sys.executable).with_name("media-assets")), "dev",
                            "-p", str(port)], env=dict(os.environ), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(dev.stderr), daemon=True)
    reader.start()

    def code_server():
        # `dagster dev` -> proxy (`dagster code-server start`) -> `dagster api grpc`: the
        # process that imports the project and runs its sensor.
        with contextlib.suppress(psutil.Error):
            return next((p for p in psutil.Process(dev.pid).children(recursive=True)
                         if "grpc" in p.cmdline() and "api" in p.cmdline()), None)

    try:
        _wait("the code location to load", lambda: _location(url).get(
            "locationOrLoadError", {}).get("__typename") == "RepositoryLocation", 300)
        first = _wait("the code server", code_server, 60)
        first.kill()
        _wait("the UI to see the location unreachable", lambda: _location(url).get(
            "locationOrLoadError", {}).get("__typename") == "PythonError", 120)
        # A note: the cheapest file to catalogue (no model but the text embedder).
        (settings.inbox / "after.txt").write_text("dropped after the crash: milk, eggs")
        with catalog.engine.connect() as conn:
            _wait("the note dropped after the crash to be catalogued", lambda: conn.execute(
                sa.text("SELECT count(*) FROM file_asset_results WHERE asset = "
                        "'text_embeddings' AND status = 'ok'")).scalar() == 1, 300)
        second = code_server()
        assert second is not None and second.pid != first.pid
        assert _location(url)["locationOrLoadError"]["__typename"] == "RepositoryLocation"
        ours = [line for line in log if " - media-assets dev - " in line]
        assert any("unreachable" in line for line in ours), ours
        _wait("the watchdog to see it back", lambda: any(
            "'media_assets' is loaded again" in line for line in log), 30)
        # SIGTERM stops `dev` and everything `dagster dev` started.
        family = [psutil.Process(dev.pid), *psutil.Process(dev.pid).children(True)]
        dev.terminate()
        _, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
    finally:  # whatever is left after a failure, at once
        with contextlib.suppress(psutil.Error):
            for proc in [psutil.Process(dev.pid), *psutil.Process(dev.pid).children(True)]:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        dev.wait(30)


def test_the_watchdog_reloads_an_unreachable_location_only_and_not_in_a_loop():
    """`dev`'s watchdog against the UI's GraphQL answers (a transport that plays the UI:
    the states are what make the watchdog act, and a dead server is the case the test
    above makes for real). A location that fails to import (a syntax error being edited)
    is never reloaded: every reload would fail again, each one a new process. An
    unreachable one is reloaded once, not again within MIN_GAP_S, and its return is
    logged."""
    import httpx

    from media_assets.cli.code_watch import CodeWatch

    states = {"media_assets": ("PythonError", "DagsterUserCodeProcessError")}
    reloads: list[str] = []

    def ui(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["query"].lstrip().startswith("mutation"):
            reloads.append(body["variables"]["name"])
            return httpx.Response(200, json={"data": {"reloadRepositoryLocation": {
                "__typename": "WorkspaceLocationEntry"}}})
        entries = [{"name": name, "loadStatus": "LOADED", "locationOrLoadError": {
            "__typename": kind, **({"message": "x", "className": cls} if cls else {})}}
            for name, (kind, cls) in states.items()]
        return httpx.Response(200, json={"data": {"workspaceOrError": {
            "__typename": "Workspace", "locationEntries": entries}}})

    said: list[str] = []
    watch = CodeWatch("http://127.0.0.1:1", log=said.append)
    with httpx.Client(transport=httpx.MockTransport(ui)) as client:
        assert watch.check(client) == [] and not reloads  # a code error: left to the user
        states["media_assets"] = ("PythonError", "DagsterUserCodeUnreachableError")
        assert watch.check(client) == ["media_assets"] and reloads == ["media_assets"]
        assert watch.check(client) == [] and reloads == ["media_assets"]  # not in a loop
        states["media_assets"] = ("RepositoryLocation", None)
        watch.check(client)
    assert said[0].startswith("code location 'media_assets' is unreachable")
    assert said[-1] == "code location 'media_assets' is loaded again"
