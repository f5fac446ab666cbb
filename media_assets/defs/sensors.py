"""`inbox_sensor`: new files in the inbox become `media_files` partitions and batched runs."""

import hashlib
import json

import dagster as dg

from media_assets.defs.jobs import media_job
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import CatalogResource, InboxResource
from media_assets.lib.files.ingestion import find_ready, plan_batches, register_ready
from media_assets.lib.files.store import FileStore


@dg.sensor(job=media_job, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the inbox folder: settled new files are hashed and registered, "
                       "each new content becomes a `media_files` partition, and batches of up "
                       "to `batch_size` partitions become `media_job` runs.")
def inbox_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource,
                 inbox: InboxResource) -> dg.SensorResult:
    """Watch the inbox (recursively): register settled files by content hash, add a partition
    per new content, and request one run per batch of up to `batch_size` new partitions."""
    state = json.loads(context.cursor) if context.cursor else {}
    engine = catalog.get().engine
    ready, changing = find_ready([inbox.inbox], state.get("changing", {}), inbox.settle_seconds)
    registration, left = register_ready(engine, ready, max_new=inbox.max_new_per_tick)

    existing = context.instance.get_dynamic_partitions(media_files.name)
    known = set(existing)
    new_keys = [k for k in FileStore(engine).pending_keys() if k not in known]
    run_requests = []
    for batch in plan_batches(existing + new_keys, set(new_keys), inbox.batch_size):
        digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
        run_requests.append(dg.RunRequest(run_key=f"media:{digest}", tags=range_tags(batch)))
    cursor = json.dumps({"changing": changing})
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
