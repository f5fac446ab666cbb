"""The one in-process Dagster runner: `ingest` and `clusters --refresh` materialise the
per-file assets and the cluster assets here, in this process, on the persistent instance
that `media-assets dev` shows."""

from __future__ import annotations

import os
import socket
import sys
import warnings

import click

from media_assets.lib.settings import Settings


# One ASSET_MATERIALIZATION_PLANNED event per asset for a ranged run instead of one per
# partition and asset: creating a 256-file run took 38 s, now 2.6 s (bench/bench_runs.py).
# The cost Dagster names: a failed run does not mark its partitions failed; here a file's
# failure is its own `file_ok` check, and dead runs are found from the catalogue.
FAST_PLANNING = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def instance_for(settings: Settings, catalog):
    """The persistent Dagster instance on the catalog's server, shared with `dev`."""
    for name, value in FAST_PLANNING.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module="dagster")
    import dagster as dg

    from media_assets.lib.db.dagster_home import prepare_dagster_home

    prepare_dagster_home(settings.dagster_home, catalog.dagster_url)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and storage.get_concurrency_info(
            "gpu").slot_count != 1:
        storage.set_concurrency_slots("gpu", 1)
    return instance


def run_batches(settings: Settings, catalog, quiet: bool) -> tuple[list[str], int]:
    """Materialise pending files (every available asset) and unfinished work (the assets
    left to do and what depends on them), in ranged runs; returns failed run ids and how
    many already-catalogued files were completed."""
    from tqdm import tqdm

    instance = instance_for(settings, catalog)
    import dagster as dg

    from media_assets.defs.jobs import PER_FILE_ASSETS, plan_runs
    from media_assets.defs.partitions import media_files, range_tags
    from media_assets.defs.resources import resources_from_settings
    from media_assets.defs.sensors import HOST_TAG
    from media_assets.lib.files.store import FileStore

    host = socket.gethostname()  # the sensor's dead-run check looks at pids on this host
    pending = FileStore(catalog.engine).pending_keys()
    known = instance.get_dynamic_partitions(media_files.name)
    # Partitions first: a catalogue made by another Dagster instance, or before one existed.
    everything = FileStore(catalog.engine).all_keys()
    missing_parts = [k for k in everything if k not in set(known)]
    if missing_parts:
        instance.add_dynamic_partitions(media_files.name, missing_parts)
    runs, stale, left_out = plan_runs(catalog.engine,
                                      instance.get_dynamic_partitions(media_files.name),
                                      settings.models, settings.batch_size, pending)
    for name, why in left_out.items():
        click.secho(f"skipping {name}: {why} (see `media-assets doctor`)", fg="yellow", err=True)
    failed_runs = []
    resources = resources_from_settings(settings)
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with tqdm(total=len(pending) + len(stale), desc="processing", unit="file", disable=quiet,
              file=sys.stderr) as bar:
        for run in runs:
            # media_job's assets, with this process's resources and only the assets whose
            # models are here.
            result = dg.materialize(PER_FILE_ASSETS, instance=instance,
                                    tags={**range_tags(run.keys), HOST_TAG: host},
                                    run_config=quiet_logs,
                                    raise_on_error=False, resources=resources,
                                    selection=run.selection)
            if not result.success:
                failed_runs.append(result.run_id)
                for event in result.all_events:
                    if event.is_step_failure:
                        err = event.step_failure_data.error
                        click.secho(f"\n{event.step_key} failed: "
                                    f"{(err.cause or err).message.strip()}", fg="red", err=True)
            bar.update(len(run.keys))
    return failed_runs, len(stale)


def run_clusters(settings: Settings, catalog, quiet: bool, force: bool = False) -> list[str]:
    """Re-cluster, name and place clusters (clusters_job's assets) when files were embedded
    since the last full run or a cluster still lacks its label or hierarchy; failed run
    ids."""
    import dagster as dg

    from media_assets.defs.assets.clusters import (cluster_hierarchies, cluster_labels,
                                                   image_clusters)
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
    result = dg.materialize([image_clusters, cluster_labels, cluster_hierarchies],
                            instance=instance_for(settings, catalog),
                            resources=resources_from_settings(settings), raise_on_error=False,
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

