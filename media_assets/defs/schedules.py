"""`media_job_schedule`: the nightly backfill that leaves no file behind; `clusters_schedule`:
the nightly full re-cluster.

Built from the settings (cron, time zone) when the definitions load (`defs` below), not
when this module is imported; the module-level ones carry the default settings, for tests
and tools that evaluate a tick directly.
"""

import dagster as dg

from media_assets.defs.jobs import clusters_job, media_job
from media_assets.defs.partitions import media_files
from media_assets.defs.planning import MAX_RETRIES_TAG, RETRIES, in_flight, plan_runs
from media_assets.defs.resources import CatalogResource, GpuResource, InboxResource
from media_assets.lib.db import locks
from media_assets.lib.files.store import FileStore
from media_assets.lib.settings import Settings


def backfill_tick(context: dg.ScheduleEvaluationContext, catalog: CatalogResource,
                  inbox: InboxResource, gpu: GpuResource) -> list[dg.RunRequest] | dg.SkipReason:
    """Ranged runs for every file with work left, planned as the sensor and `ingest` plan
    them (defs/planning.py), leaving out what a queued or running run already covers."""
    engine = catalog.get().engine
    if locks.taken(engine, locks.INGEST):
        # Its runs are made one by one as they start: the files of those not made yet
        # would look free here, and be done twice.
        return dg.SkipReason("a `media-assets ingest` is working on the catalogue; what it "
                             "leaves is planned by the next tick")
    order = context.instance.get_dynamic_partitions(media_files.name)
    known = set(order)
    pending = [k for k in FileStore(engine).pending_keys() if k in known]
    plan = plan_runs(engine, order, gpu.config(), inbox.batch_size, pending,
                     busy=in_flight(context.instance, order))
    if not plan.runs:
        # Returned, not yielded: a generator's SkipReason never reaches the UI.
        return dg.SkipReason(plan.why_nothing())
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    # Dagster dedupes a schedule's run keys within one tick only: work in flight is left
    # out by the plan itself, so a later tick never repeats a queued or running run.
    return [run.request(f"backfill:{day}:{run.digest}") for run in plan.runs]


def build_media_job_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(job=media_job, name="media_job_schedule", cron_schedule=settings.backfill_cron,
                 execution_timezone=settings.timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Nightly backfill: files still pending (a run that died or was "
                             "cancelled, a file the sensor missed) and catalogued files with "
                             "unfinished work (a crash between stages, a model that was "
                             "missing, a model change) get batched runs of the assets they "
                             "still need, except what runs in flight cover. Cron and time "
                             "zone: MEDIA_ASSETS_BACKFILL_CRON, MEDIA_ASSETS_TIMEZONE.")
    def media_job_schedule(context: dg.ScheduleEvaluationContext, catalog: CatalogResource,
                           inbox: InboxResource, gpu: GpuResource):
        """Ranged runs for every file with work left, as `media-assets ingest` would run
        them."""
        return backfill_tick(context, catalog, inbox, gpu)

    return media_job_schedule


def build_clusters_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(job=clusters_job, name="clusters_schedule", cron_schedule=settings.clusters_cron,
                 execution_timezone=settings.timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Nightly full re-cluster (after the backfill), so that clusters "
                             "reflect every file even when the sensor's threshold was never "
                             "reached. Cron: MEDIA_ASSETS_CLUSTERS_CRON.")
    def clusters_schedule(context: dg.ScheduleEvaluationContext):
        """One `clusters_job` run per night."""
        day = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=f"clusters:{day}", tags={MAX_RETRIES_TAG: RETRIES})

    return clusters_schedule


# Default settings (no environment read at import): for evaluating a tick in tests.
media_job_schedule = build_media_job_schedule(Settings())
clusters_schedule = build_clusters_schedule(Settings())


@dg.definitions
def defs() -> dg.Definitions:
    """The schedules with the settings in force when the code location loads."""
    settings = Settings.from_env()
    return dg.Definitions(schedules=[build_media_job_schedule(settings),
                                     build_clusters_schedule(settings)])
