"""`media_job_schedule`: the nightly backfill that leaves no file behind."""

import hashlib

import dagster as dg

from media_assets.defs.jobs import clusters_job, media_job, plan_runs
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import CatalogResource, GpuResource, InboxResource
from media_assets.lib.files.store import FileStore
from media_assets.lib.settings import Settings

_settings = Settings.from_env()

# A transient failure (the database restarting, a GPU out of memory) gets two more tries;
# a file that fails for its content is recorded against that file and not retried until
# the content changes (a new key).
RETRIES = "2"


@dg.schedule(job=media_job, cron_schedule=_settings.backfill_cron,
             execution_timezone=_settings.timezone,
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Nightly backfill: files still pending (a run that died, a file the "
                         "sensor missed) and catalogued files with unfinished work (a crash "
                         "between stages, a model that was missing, a model change) get "
                         "batched runs of the assets they still need. Cron and time zone: "
                         "MEDIA_ASSETS_BACKFILL_CRON, MEDIA_ASSETS_TIMEZONE.")
def media_job_schedule(context: dg.ScheduleEvaluationContext, catalog: CatalogResource,
                       inbox: InboxResource, gpu: GpuResource):
    """Ranged runs for every file with work left, as `media-assets ingest` would run them."""
    engine = catalog.get().engine
    order = context.instance.get_dynamic_partitions(media_files.name)
    known = set(order)
    pending = [k for k in FileStore(engine).pending_keys() if k in known]
    runs, stale, left_out = plan_runs(engine, order, gpu.config(), inbox.batch_size, pending)
    if not runs:
        return dg.SkipReason("nothing left to do" + (
            f" (left out for missing models: {', '.join(left_out)})" if left_out else ""))
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    for run in runs:
        digest = hashlib.sha256(",".join(run.keys + [str(k) for k in run.selection])
                                .encode()).hexdigest()[:16]
        yield dg.RunRequest(run_key=f"backfill:{day}:{digest}", asset_selection=run.selection,
                            tags={**range_tags(run.keys), "dagster/max_retries": RETRIES})


@dg.schedule(job=clusters_job, cron_schedule=_settings.clusters_cron,
             execution_timezone=_settings.timezone,
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Nightly full re-cluster (after the backfill), so that clusters "
                         "reflect every file even when the sensor's threshold was never "
                         "reached. Cron: MEDIA_ASSETS_CLUSTERS_CRON.")
def clusters_schedule(context: dg.ScheduleEvaluationContext):
    """One `clusters_job` run per night."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"clusters:{day}", tags={"dagster/max_retries": RETRIES})
