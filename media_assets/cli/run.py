"""The one in-process Dagster runner: `ingest` and `clusters --refresh` run `media_job` and
`clusters_job` here (`execute_in_process`), in this process, on the persistent instance
that `media-assets dev` shows; the runs are the named jobs', so the UI can re-execute them."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import warnings

import click

from media_assets.lib import stop
from media_assets.lib.settings import Settings

# Exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


# One ASSET_MATERIALIZATION_PLANNED event per asset for a ranged run instead of one per
# partition and asset: creating a 256-file run took 38 s, now 2.6 s (bench/bench_runs.py).
# The cost Dagster names: a failed run does not mark its partitions failed; here a file's
# failure is its own `file_ok` check, and dead runs are found from the catalogue.
# Dagster settings for runs over many partitions, in this process and (through `dev`) the
# daemon's and the UI's: one planned event per asset instead of one per partition
# (bench_runs), and a ranged run's per-partition materialisations written in batches of
# INSERTs instead of one at a time (Dagster's own batch path, off by default in OSS):
# about 7 ms less per file and asset (bench_ingest: 120 photos, media_file 1.77 -> 0.86 s).
FAST_PLANNING = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
                 "DAGSTER_EVENT_BATCH_SIZE": "256"}


def instance_for(settings: Settings, catalog):
    """The persistent Dagster instance on the catalog's server, shared with `dev`."""
    for name, value in FAST_PLANNING.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module="dagster")
    import dagster as dg

    from media_assets.lib.db.dagster_home import prepare_dagster_home

    prepare_dagster_home(settings.dagster_home, catalog.dagster_url)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    # The storages already keep a connection open (defs/dagster_storage.py); this gives them
    # the webserver's bounds on top (at most 4 more at once, recycled hourly);
    # statement_timeout 0 is PostgreSQL's default (no limit).
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and storage.get_concurrency_info(
            "gpu").slot_count != 1:
        storage.set_concurrency_slots("gpu", 1)
    return instance


def _in_worker(fn, *args, **kwargs):
    """`fn(...)` in a worker thread, waited for here. Dagster replaces the SIGINT and SIGTERM
    handlers while a run executes, but only on the main thread: off it, `Interrupts` keeps
    them, so Ctrl-C stops after the current file instead of failing the run.

    The main thread must do no model work of its own (torch, scikit-learn: OpenMP). Once
    it has, libgomp counts its idle team beside this thread's and, with more threads than
    cores, stops spinning between parallel regions: small ops (colour k-means, a tiny
    captioner's tokens) then took 1.3-5x as long here (bench_ingest's `make_models`)."""
    box: dict = {}

    def work():
        # A terminal's Ctrl-C goes to the whole foreground process group. The children a
        # run starts (Dagster's `tail -F` and its Python watcher, which mirror the run's
        # captured output to our stderr) inherit this thread's signal mask across exec, so
        # with SIGINT blocked here only this process hears it. Before, it killed the
        # mirror, so the "stopping after the current file" line went into the capture file
        # unseen, and the watcher printed KeyboardInterrupt tracebacks. The signal still
        # reaches this process: the main thread, which runs the handlers, takes it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread as it is
            box["error"] = exc

    worker = threading.Thread(target=work, name="media-assets-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)  # short waits: the main thread runs signal handlers between them
    if "error" in box:
        raise box["error"]
    return box["result"]


def _end_children() -> None:
    """Kill this process's children before a hard exit. Dagster mirrors a step's captured
    output with a `tail -F` child (and a watcher) writing to our stderr; `os._exit` skips
    the step's cleanup, so that tail would outlive us, printing to the terminal and holding
    its pipe open (a caller waiting for our output waited for ever: CI saw it once, a step
    starting its tail while the handler ran). So first our own stdout and stderr become
    /dev/null, so that a child started from here on holds no pipe of our caller's, then
    the children are killed."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
    except OSError:
        pass
    try:
        import psutil

        # Twice, at once: the second look finds a child forked while the first killed.
        # No waiting between: the run's thread goes on meanwhile and would finish steps
        # after its run was marked canceled.
        me = psutil.Process()
        for _ in range(2):
            for child in me.children(recursive=True):
                try:
                    child.kill()
                except psutil.Error:
                    pass
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


class Interrupts:
    """Ctrl-C and SIGTERM for a long command. The first Ctrl-C asks the work to stop after
    the current file (`lib/stop.py`); a second Ctrl-C, or SIGTERM, stops at once: this
    process's runs are marked canceled and it exits 130. Either way every file is done or
    untouched (each file's rows commit in one transaction), so the next run resumes."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._instance = None  # set once runs can start: a hard stop cancels them
        self._previous: dict = {}
        # The stop gate. From a hard stop on, the run's thread, which goes on until the
        # process exits, can neither write an event nor add a run: without it a run's
        # RUN_START written after our RUN_CANCELED left it STARTED (Dagster's run storage
        # takes the last status event as it comes), and a run added after the canceller
        # looked stayed NOT_STARTED, its files in flight for every planner. Re-entrant: a
        # write may make another on the same thread. Once stopping, every other thread
        # waits for good (an explicit flag, not the lock's owner: thread ids are reused).
        self._gate = threading.RLock()
        self._stopping = False
        self._canceller: threading.Thread | None = None
        self._hard_stop = False  # a second hard stop exits at once
        self._stderr: int | None = None  # the caller's stderr, kept from before any run

    @property
    def instance(self):
        return self._instance

    @instance.setter
    def instance(self, instance) -> None:
        """The instance this command's runs use; its event writes and its run storage's
        `add_run` (what `execute_in_process` creates runs with) pass the stop gate."""
        instance.handle_new_event = self._gated(instance.handle_new_event)
        storage = instance.run_storage
        storage.add_run = self._gated(storage.add_run)
        self._instance = instance

    def _gated(self, method):
        def gated(*args, **kwargs):
            me = threading.current_thread()
            # The canceller's own writes pass; so do the main thread's: the signal handler
            # runs there and never returns, so its writes cannot race the cancel.
            if me is self._canceller or me is threading.main_thread():
                return method(*args, **kwargs)
            if self._stopping:
                threading.Event().wait()  # until the process exits
            with self._gate:
                return method(*args, **kwargs)
        return gated

    def __enter__(self) -> Interrupts:
        stop.clear()
        # While a run executes, Dagster points fd 2 at its capture file and a `tail`
        # mirrors that to the terminal about once a second: a stop line written there
        # would show late, or never (a hard stop kills the tail). Ours go here.
        self._stderr = os.dup(2)
        if threading.current_thread() is threading.main_thread():
            for signo in (signal.SIGINT, signal.SIGTERM):
                self._previous[signo] = signal.signal(signo, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signo, handler in self._previous.items():
            signal.signal(signo, handler)
        stop.clear()
        if self._stderr is not None:
            os.close(self._stderr)
            self._stderr = None

    def _say(self, line: str) -> None:
        """`line` on the caller's stderr, in yellow on a terminal."""
        fd = self._stderr if self._stderr is not None else 2
        text = click.style(line, fg="yellow") if os.isatty(fd) else line
        try:
            os.write(fd, (text + "\n").encode("utf-8", "replace"))
        except OSError:  # a closed pipe: nobody to tell
            pass

    @property
    def stopped(self) -> bool:
        return stop.requested()

    def _handle(self, signo, frame) -> None:
        if signo == signal.SIGINT and not stop.requested():
            stop.request()
            self._say("\nstopping after the current file (Ctrl-C again to stop now)")
            return
        stop.request()
        if self._hard_stop:  # asked again while the first hard stop does its bookkeeping
            _end_children()
            os._exit(EXIT_INTERRUPTED)
        self._hard_stop = True
        why = "SIGTERM" if signo == signal.SIGTERM else "a second Ctrl-C"
        self._say(f"\nstopping now ({why}): run `media-assets ingest` again to finish")
        canceller = threading.Thread(target=self._cancel_runs, args=(why,), daemon=True)
        canceller.start()
        canceller.join(5)  # bookkeeping only: never let it hold the exit up
        _end_children()  # flushes our output first
        os._exit(EXIT_INTERRUPTED)

    def _cancel_runs(self, why: str) -> None:
        """Mark this process's unfinished runs canceled, so the UI does not show them
        running for ever (their files would look in flight to every planner)."""
        if self.instance is None:
            return
        # Waits for a write in flight, then keeps the run's thread out for good; our own
        # cancel events below pass. A write that holds on past 4 s: cancel anyway.
        held = self._gate.acquire(timeout=4)
        self._canceller = threading.current_thread()
        self._stopping = True
        if not held:
            self._say("a catalogue write is still under way; marking the runs canceled "
                      "beside it")
        try:
            import dagster as dg

            from media_assets.defs.planning import HOST_TAG, PID_TAG

            runs = self.instance.get_runs(dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                          dg.DagsterRunStatus.NOT_STARTED],
                tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}))
            for run in runs:
                self.instance.report_run_canceled(run, f"ingest stopped by {why}")
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


def job_named(name: str, resources: dict):
    """`media_job` or `clusters_job` as the code location defines it (media_assets.definitions:
    the same assets, jobs and executor), bound to this process's `resources`: an `ingest`
    run is a run of that named job, which the UI shows and can re-execute."""
    import dagster as dg

    from media_assets.definitions import defs

    # The code location's own resources are bound at resolution; a job resolved there
    # cannot take others (Dagster checks resources by identity), so resolve it again here.
    return dg.Definitions(assets=defs.assets, jobs=defs.jobs, executor=defs.executor,
                          resources=resources).resolve_job_def(name)


def run_batches(settings: Settings, catalog, quiet: bool,
                interrupts: Interrupts | None = None) -> tuple[list[str], int]:
    """Materialise pending files (every available asset) and unfinished work (the assets
    left to do and what depends on them), in ranged runs; returns failed run ids and how
    many already-catalogued files were completed. A stop request ends it after the
    current file (no new run starts)."""
    from tqdm import tqdm

    from media_assets.lib.models.kept import kept_between_runs

    instance = instance_for(settings, catalog)
    if interrupts is not None:
        interrupts.instance = instance
    from media_assets.defs.partitions import media_files, range_tags
    from media_assets.defs.planning import (HOST_TAG, PID_TAG, in_flight, plan_runs,
                                            reap_dead_runs, retired)
    from media_assets.defs.resources import resources_from_settings
    from media_assets.lib.files.store import FileStore

    host = socket.gethostname()  # the dead-run check looks at pids on this host
    files = FileStore(catalog.engine)
    pending = files.pending_keys()
    # A run of an `ingest` killed with -9 stays STARTED: marked failed here, or its files
    # would look in flight for good.
    reap_dead_runs(instance)
    known = instance.get_dynamic_partitions(media_files.name)
    # Partitions first: a catalogue made by another Dagster instance, or before one existed.
    everything = files.all_keys()
    missing_parts = [k for k in everything if k not in set(known)]
    if missing_parts:
        instance.add_dynamic_partitions(media_files.name, missing_parts)
    order = instance.get_dynamic_partitions(media_files.name)
    busy = in_flight(instance, order)
    for key in retired(order, set(everything), busy):  # content no file holds any more
        instance.delete_dynamic_partition(media_files.name, key)
    order = instance.get_dynamic_partitions(media_files.name)
    plan = plan_runs(catalog.engine, order, settings.models, settings.batch_size, pending,
                     busy=busy)
    runs, stale = plan.runs, plan.completed
    for name, why in plan.left_out.items():
        click.secho(f"skipping {name}: {why} (see `media-assets doctor`)", fg="yellow", err=True)
    if plan.busy and not quiet:
        click.secho(f"{len(set(plan.busy))} files left to runs already queued or running "
                    "(see `media-assets dev`, Runs)", fg="yellow", err=True)
    failed_runs = []
    resources = resources_from_settings(settings)
    job = job_named("media_job", resources) if runs else None
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    # One model manager for all of this command's runs: each model loads once, not once per
    # batch (lib/models/kept.py), and is unloaded when the last run ends.
    def execute(run) -> None:
        # A run of the named `media_job` (the UI lists it and can re-execute it), with
        # this process's resources and only the planned assets. No retry tag: a failed
        # `ingest` run is reported here, and the next `ingest` finishes it.
        result = _in_worker(job.execute_in_process, instance=instance,
                            tags={**range_tags(run.keys), HOST_TAG: host,
                                  PID_TAG: str(os.getpid())},
                            run_config=quiet_logs, raise_on_error=False,
                            asset_selection=run.selection)
        if not result.success:
            failed_runs.append(result.run_id)
            for event in result.all_events:
                if event.is_step_failure:
                    err = event.step_failure_data.error
                    click.secho(f"\n{event.step_key} failed: "
                                f"{(err.cause or err).message.strip()}", fg="red", err=True)

    with kept_between_runs(), tqdm(total=len(pending) + len(stale), desc="processing",
                                   unit="file", disable=quiet, file=sys.stderr) as bar:
        for run in runs:
            if stop.requested():
                break
            execute(run)
            bar.update(len(run.keys))
        # New files' runs start only the assets their names allow (lib/files/kinds.py); a
        # name that misled (a `.jpg` holding JSON) left work undone, planned again here.
        if runs and pending and not stop.requested() and not failed_runs:
            for run in plan_runs(catalog.engine, order, settings.models, settings.batch_size,
                                 [], only=set(pending), busy=busy).runs:
                if stop.requested():
                    break
                execute(run)
    return failed_runs, len(stale)


def run_clusters(settings: Settings, catalog, quiet: bool, force: bool = False,
                 interrupts: Interrupts | None = None) -> list[str]:
    """Re-cluster, name and place clusters (clusters_job's assets) when files were embedded
    since the last full run or a cluster still lacks its label or hierarchy; failed run
    ids."""
    from media_assets.defs.resources import resources_from_settings
    from media_assets.lib.clusters.store import changes_since_last_run, unfinished_clusters
    from media_assets.lib.models.registry import clip_ref_or_none

    model_ref = clip_ref_or_none(settings.models)
    if model_ref is None:
        return []
    new, _ = changes_since_last_run(catalog.engine, model_ref)
    if not (force or new or unfinished_clusters(catalog.engine, model_ref)):
        return []
    if not quiet:
        click.echo("clustering...", err=True)
    from media_assets.defs.planning import HOST_TAG, PID_TAG

    job = job_named("clusters_job", resources_from_settings(settings))
    instance = instance_for(settings, catalog)
    if interrupts is not None:
        interrupts.instance = instance
    result = _in_worker(job.execute_in_process, instance=instance,
                        tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
                        raise_on_error=False,
                        run_config={"loggers": {"console": {"config": {
                            "log_level": "WARNING"}}}})
    if result.success:
        return []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            click.secho(f"{event.step_key} failed: {(err.cause or err).message.strip()}",
                        fg="red", err=True)
    return [result.run_id]

