"""`inbox_sensor`: new files in the inbox become `media_files` partitions and batched runs;
`recluster_sensor`: a `clusters_job` run when the corpus grew enough.

Both are built from the settings when the definitions load (`defs` below), not when this
module is imported. The module-level `inbox_sensor` and `recluster_sensor` carry the
default settings, for tests and tools that evaluate a tick directly.
"""

import hashlib
import json

import dagster as dg
from dagster._core.storage.tags import WILL_RETRY_TAG

from media_assets.defs.file_failures import FAILED_IN_TAG
from media_assets.defs.jobs import clusters_job, media_job
from media_assets.defs.partitions import media_files
from media_assets.defs.planning import (IN_FLIGHT, in_flight, keys_of_run, plan_runs,
                                        reap_dead_runs, retired)
from media_assets.defs.resources import CatalogResource, GpuResource, InboxResource
from media_assets.lib.clusters.store import changes_since_last_run
from media_assets.lib.files.ingestion import find_ready, note_missing, register_ready
from media_assets.lib.files.store import FileStore, display_path
from media_assets.lib.models.registry import clip_ref_or_none
from media_assets.lib.settings import Settings


def inbox_tick(context: dg.SensorEvaluationContext, catalog: CatalogResource,
               inbox: InboxResource, gpu: GpuResource) -> dg.SensorResult:
    """Register settled files by content hash, add a partition per new content, and plan
    its runs (defs/planning.py) as the schedule and `ingest` do."""
    # The cursor holds only what Dagster cannot: files still being written. Retries are
    # Dagster's run retries (each request asks for them); runs in flight are read from the
    # instance.
    state = json.loads(context.cursor) if context.cursor else {}
    for run_id in reap_dead_runs(context.instance):
        context.log.warning(f"run {run_id} lost its worker process: marked failed, so Dagster "
                            "retries it and the gpu pool is freed")
    engine = catalog.get().engine
    ready, changing = find_ready([inbox.inbox], state.get("changing", {}), inbox.settle_seconds)
    # Files deleted from the inbox leave search (marked missing), as `ingest` does.
    note_missing(engine, [inbox.inbox], ready)
    registration, left = register_ready(engine, ready, max_new=inbox.max_new_per_tick)

    files = FileStore(engine)
    existing = context.instance.get_dynamic_partitions(media_files.name)
    known = set(existing)
    new_keys = [k for k in files.pending_keys() if k not in known]
    busy = in_flight(context.instance, existing)
    # New files only: unfinished work of catalogued files is the schedule's (and
    # `ingest`'s), so a tick stays cheap and a file a model skips is not asked for at
    # every tick.
    plan = plan_runs(engine, existing + new_keys, gpu.config(), inbox.batch_size, new_keys,
                     resume=False, busy=busy)
    run_requests = [run.request(
        "media:" + hashlib.sha256(",".join(run.keys).encode()).hexdigest()[:16])
        for run in plan.runs]
    gone = retired(existing, set(files.all_keys()), busy)
    partition_requests = ([media_files.build_add_request(new_keys)] if new_keys else []) + (
        [media_files.build_delete_request(gone)] if gone else [])
    for path, status, error in registration.problems:  # recorded once: named once
        context.log.warning(f"{status}: {display_path(path)}: {error}")
    cursor = json.dumps({"changing": changing})
    if not run_requests:
        reason = (f"{len(changing)} files still being written" if changing
                  else f"no new files ({registration.unchanged} known)")
        if registration.problems:
            reason += f"; {len(registration.problems)} refused or unreadable (logged)"
        if gone:
            reason += f"; {len(gone)} partitions of retired content deleted"
        return dg.SensorResult(skip_reason=reason, cursor=cursor,
                               dynamic_partitions_requests=partition_requests)
    left_out = "".join(f"; {name} left out: {why}" for name, why in plan.left_out.items())
    context.log.info(f"{len(new_keys)} new partitions, {len(registration.aliases)} aliases, "
                     f"{len(registration.problems)} refused or unreadable, "
                     f"{len(left)} left for the next tick, {len(gone)} retired{left_out}")
    return dg.SensorResult(run_requests=run_requests,
                           dynamic_partitions_requests=partition_requests, cursor=cursor)


def build_inbox_sensor(settings: Settings) -> dg.SensorDefinition:
    """`inbox_sensor`, ticking every `settings.sensor_interval_s`."""

    @dg.sensor(job=media_job, name="inbox_sensor",
               minimum_interval_seconds=settings.sensor_interval_s,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Watches the inbox folder: settled new files are hashed and "
                           "registered, each new content becomes a `media_files` partition, "
                           "and batches of up to `batch_size` partitions become `media_job` "
                           "runs of the assets this machine has models for. Failed runs are "
                           "retried by Dagster (dagster/max_retries); cancelled ones are not. "
                           "Partitions of content no file holds any more are deleted.")
    def inbox_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource,
                     inbox: InboxResource, gpu: GpuResource) -> dg.SensorResult:
        """Watch the inbox (recursively): register settled files by content hash, add a
        partition per new content, and request one run per batch of new partitions."""
        return inbox_tick(context, catalog, inbox, gpu)

    return inbox_sensor


def build_recluster_sensor(settings: Settings) -> dg.SensorDefinition:
    """`recluster_sensor`, with the thresholds of `settings`."""

    @dg.sensor(job=clusters_job, name="recluster_sensor", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Re-clusters when enough new files were embedded since the last "
                           "full run: at least MEDIA_ASSETS_RECLUSTER_MIN_NEW files and "
                           "MEDIA_ASSETS_RECLUSTER_FRACTION of the files that run clustered. "
                           "In between, new files join the nearest cluster in their own runs.")
    def recluster_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource,
                         gpu: GpuResource):
        """A `clusters_job` run when the corpus grew enough, and none is in flight."""
        model_ref = clip_ref_or_none(gpu.config())
        if model_ref is None:
            return dg.SkipReason("CLIP is not on this machine (see `media-assets doctor`)")
        new, last = changes_since_last_run(catalog.get().engine, model_ref)
        need = max(settings.recluster_min_new, int(settings.recluster_fraction * last))
        if new < need:
            return dg.SkipReason(f"{new} files embedded since the last full run; {need} needed")
        if context.instance.get_runs(filters=dg.RunsFilter(job_name=clusters_job.name,
                                                           statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason("a clusters_job run is in flight")
        return dg.RunRequest(run_key=f"recluster:{model_ref}:{last}:{new}")

    return recluster_sensor


@dg.run_failure_sensor(monitored_jobs=[media_job], name="media_job_failure_sensor",
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Names the files of a `media_job` run that failed for good "
                                   "(Dagster's run retries used up, or none asked for): they "
                                   "stay pending until the nightly backfill or `ingest` asks "
                                   "for them again. A failed run that Dagster will retry is "
                                   "left to its retry.")
def media_job_failure_sensor(context: dg.RunFailureSensorContext, catalog: CatalogResource):
    """The files a run left behind, by name, in the sensor's log (the UI's tick history)."""
    run = context.dagster_run
    if FAILED_IN_TAG in run.tags:  # a record of files that failed (defs/file_failures.py)
        return dg.SkipReason(f"run {run.run_id} records the files that failed in run "
                             f"{run.tags[FAILED_IN_TAG]}; each one's reason is in its log")
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return dg.SkipReason(f"run {run.run_id} will be retried by Dagster")
    order = context.instance.get_dynamic_partitions(media_files.name)
    keys = keys_of_run(run, {k: i for i, k in enumerate(order)}, order)
    rows = FileStore(catalog.get().engine).get(keys)
    names = [display_path(rows[k].primary_path) for k in keys if k in rows][:20]
    left = (f"{len(keys)} files of run {run.run_id} left for the nightly backfill or "
            "`ingest`: " + ", ".join(names))
    context.log.warning(f"{left} (the run failed: {context.failure_event.message or '?'})")
    return dg.SkipReason(left)


# Default settings (no environment read at import): for evaluating a tick in tests.
inbox_sensor = build_inbox_sensor(Settings())
recluster_sensor = build_recluster_sensor(Settings())


@dg.definitions
def defs() -> dg.Definitions:
    """The sensors with the settings in force when the code location loads."""
    settings = Settings.from_env()
    return dg.Definitions(sensors=[build_inbox_sensor(settings),
                                   build_recluster_sensor(settings),
                                   media_job_failure_sensor])
