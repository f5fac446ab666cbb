"""`inbox_sensor`: new files in the inbox become `media_files` partitions and batched runs."""

import hashlib
import json

import dagster as dg

from media_assets.defs.jobs import clusters_job, media_job, plan_runs
from media_assets.defs.partitions import RANGE_END, RANGE_START, media_files, range_tags
from media_assets.defs.resources import CatalogResource, GpuResource, InboxResource
from media_assets.lib.clusters.store import changes_since_last_run
from media_assets.lib.files.ingestion import (find_ready, note_missing, plan_batches,
                                              register_ready)
from media_assets.lib.files.store import FileStore, display_path
from media_assets.lib.models.registry import clip_ref_or_none
from media_assets.lib.settings import Settings


MAX_RETRIES = 3
HOST_TAG = "media_assets/host"  # where a CLI run's process lives (daemon runs: this host)
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
# A `kill -9`'d run is marked failed by run monitoring (dagster.yaml).
DEAD = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def keys_of_runs(instance: dg.DagsterInstance, order: list[str],
                 statuses: list[dg.DagsterRunStatus], limit: int = 500,
                 runs: list[dg.DagsterRun] | None = None) -> set[str]:
    """Partitions covered by `runs`, or by the latest runs in these states."""
    index = {k: i for i, k in enumerate(order)}
    keys: set[str] = set()
    if runs is None:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=statuses), limit=limit)
    for run in runs:
        tags = run.tags
        start, end = tags.get(RANGE_START), tags.get(RANGE_END)
        if start in index and end in index:
            keys.update(order[index[start]:index[end] + 1])
        elif tags.get("dagster/partition") in index:
            keys.add(tags["dagster/partition"])
    return keys


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs whose worker process is gone from this machine (`kill -9`, an
    OOM kill): Dagster's default launcher cannot check a run worker's health, so such a
    run would stay STARTED for good and hold the `gpu` pool slot. Only for the default
    (same-machine) launcher; the k8s and Docker launchers check health themselves."""
    import socket

    import psutil
    from dagster._core.launcher import DefaultRunLauncher

    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    reaped, here = [], socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTED]), limit=100):
        if run.tags.get(HOST_TAG, here) != here:
            continue  # `ingest` on another machine: its pid means nothing here
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
        pid = records[0].event_log_entry.dagster_event.pid if records else None
        if pid is None or psutil.pid_exists(pid):
            continue
        instance.report_run_failed(run, f"the run's worker process (pid {pid}) is gone: "
                                        "killed or crashed; its files will be asked for again")
        reaped.append(run.run_id)
    return reaped


@dg.sensor(job=media_job, minimum_interval_seconds=Settings.from_env().sensor_interval_s,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the inbox folder: settled new files are hashed and registered, "
                       "each new content becomes a `media_files` partition, and batches of up "
                       "to `batch_size` partitions become `media_job` runs.")
def inbox_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource,
                 inbox: InboxResource, gpu: GpuResource) -> dg.SensorResult:
    """Watch the inbox (recursively): register settled files by content hash, add a partition
    per new content, and request one run per batch of up to `batch_size` new partitions."""
    state = json.loads(context.cursor) if context.cursor else {}
    for run_id in reap_dead_runs(context.instance):
        context.log.warning(f"run {run_id} lost its worker process: marked failed, so its "
                            "files are asked for again and the gpu pool is freed")
    engine = catalog.get().engine
    ready, changing = find_ready([inbox.inbox], state.get("changing", {}), inbox.settle_seconds)
    # Files deleted from the inbox leave search (marked missing), as `ingest` does.
    note_missing(engine, [inbox.inbox], ready)
    registration, left = register_ready(engine, ready, max_new=inbox.max_new_per_tick)

    existing = context.instance.get_dynamic_partitions(media_files.name)
    known = set(existing)
    pending = FileStore(engine).pending_keys()
    new_keys = [k for k in pending if k not in known]
    run_requests = []
    for batch in plan_batches(existing + new_keys, set(new_keys), inbox.batch_size):
        digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
        run_requests.append(dg.RunRequest(run_key=f"media:{digest}", tags=range_tags(batch)))
    # Files of runs that died (terminated, killed, failed) since the last tick are asked
    # for again, with the assets they still need (pending files: all of them; catalogued
    # ones: what is left), when no run for them is in flight, a few times per batch.
    retries, seen = state.get("retries", {}), state.get("dead_seen", [])
    known_dead = set(seen)
    died = [r for r in context.instance.get_runs(filters=dg.RunsFilter(statuses=DEAD),
                                                 limit=500) if r.run_id not in known_dead]
    seen = (seen + [r.run_id for r in died])[-1000:]
    dead = (keys_of_runs(context.instance, existing, DEAD, runs=died)
            - keys_of_runs(context.instance, existing, ACTIVE)) if died else set()
    if dead:
        again, _, _ = plan_runs(engine, existing, gpu.config(), inbox.batch_size,
                                [k for k in pending if k in dead], only=dead)
        for run in again:
            digest = hashlib.sha256(",".join(run.keys + [str(a) for a in run.selection])
                                    .encode()).hexdigest()[:16]
            attempt = retries.get(digest, 0) + 1
            if attempt <= MAX_RETRIES:
                retries[digest] = attempt
                run_requests.append(dg.RunRequest(
                    run_key=f"media:{digest}:retry{attempt}", tags=range_tags(run.keys),
                    asset_selection=run.selection))
    for path, status, error in registration.problems:  # recorded once: named once
        context.log.warning(f"{status}: {display_path(path)}: {error}")
    cursor = json.dumps({"changing": changing, "retries": dict(list(retries.items())[-1000:]),
                         "dead_seen": seen})
    if not run_requests and not registration.problems:
        reason = (f"{len(changing)} files still being written" if changing
                  else f"no new files ({registration.unchanged} known)")
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    context.log.info(f"{len(new_keys)} new partitions, {len(registration.aliases)} aliases, "
                     f"{len(registration.problems)} refused or unreadable, "
                     f"{len(left)} left for the next tick")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[media_files.build_add_request(new_keys)] if new_keys else [],
        cursor=cursor,
    )


@dg.sensor(job=clusters_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Re-clusters when enough new files were embedded since the last full "
                       "run: at least MEDIA_ASSETS_RECLUSTER_MIN_NEW files and "
                       "MEDIA_ASSETS_RECLUSTER_FRACTION of the files that run clustered. "
                       "In between, new files join the nearest cluster in their own runs.")
def recluster_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource,
                     gpu: GpuResource):
    """A `clusters_job` run when the corpus grew enough, and none is in flight."""
    settings = Settings.from_env()
    model_ref = clip_ref_or_none(gpu.config())
    if model_ref is None:
        return dg.SkipReason("CLIP is not on this machine (see `media-assets doctor`)")
    new, last = changes_since_last_run(catalog.get().engine, model_ref)
    need = max(settings.recluster_min_new, int(settings.recluster_fraction * last))
    if new < need:
        return dg.SkipReason(f"{new} files embedded since the last full run; {need} needed")
    if context.instance.get_runs(filters=dg.RunsFilter(job_name=clusters_job.name,
                                                       statuses=ACTIVE), limit=1):
        return dg.SkipReason("a clusters_job run is in flight")
    return dg.RunRequest(run_key=f"recluster:{model_ref}:{last}:{new}")
