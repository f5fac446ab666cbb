"""Files that failed an asset, shown Failed in that asset's partition view.

Dagster marks a partition Failed when its latest attempt is a planned materialisation, not
followed by one, in a run that ended FAILURE (`partition_status_cache`,
`get_latest_asset_partition_materialization_attempts_without_materializations`). A ranged
run materialises every partition of its range or none (dagster-io/dagster#17836: no way to
fail one partition of it), and failing the step would skip every later asset for the good
files too. So the batch run materialises its range and stays green, each file's `file_ok`
verdict is on its partition (defs/file_metadata.py), and a step that had failures then
records them in one run of their own: `media_job` for that asset, with one planned
materialisation per failed file (by partition, whatever DAGSTER_EMIT_PARTITION_SUBSET_IN_
PLANNED_EVENTS says for batch runs), a log line per file with its path and error, ended
FAILURE. The asset's partition view then shows those files red and the others green; the
run, tagged with the batch run and the number of files, lists them in the Runs page. It
executes nothing and plans nothing else (the asset's checks stay as the batch left them),
so it is never retried (no `dagster/max_retries`) and the failure sensor leaves it alone.
A file that failed for its content is tried again when its content changes (a new key).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent, EngineEventData
from dagster._core.execution.api import create_execution_plan

FAILED_IN_TAG = "media_assets/failed_in_run"  # the batch run the files failed in
FAILED_FILES_TAG = "media_assets/failed_files"  # how many files this run records
MAX_LISTED = 20  # files named in the run's message; each file has its own log line


def record_failed_files(context: dg.AssetExecutionContext, failed: Mapping[str, str],
                        paths: Mapping[str, str]) -> str | None:
    """One FAILURE run of this asset for the files (partition key -> error; `paths` names
    them) that failed it in this step; its run id, or None when nothing failed."""
    if not failed:
        return None
    try:
        return _record(context, failed, paths)
    except Exception as exc:  # the verdicts are stored: this view of them must not fail the step
        context.log.warning(f"could not record the {len(failed)} failed files as a failed run "
                            f"(their file_ok verdicts stand): {exc!r}")
        return None


def _record(context: dg.AssetExecutionContext, failed: Mapping[str, str],
            paths: Mapping[str, str]) -> str:
    instance, asset_key = context.instance, context.asset_key
    step = context.get_step_execution_context()
    # A plan of this asset's step with nothing to execute: Dagster plans nothing for the
    # run (it would plan the asset's checks too, and a failed run would show them failed);
    # the planned materialisations are this function's, one per failed file.
    job = step.job_def.get_subset(asset_selection={asset_key})
    run = instance.create_run_for_job(
        job_def=job, execution_plan=create_execution_plan(job, step_keys_to_execute=[]),
        asset_selection=frozenset({asset_key}), status=dg.DagsterRunStatus.NOT_STARTED,
        tags={FAILED_IN_TAG: context.run.run_id, FAILED_FILES_TAG: str(len(failed))})
    for key, error in failed.items():
        instance.report_dagster_event(DagsterEvent.build_asset_materialization_planned_event(
            job.name, step.step.key, AssetMaterializationPlannedData(asset_key, partition=key)),
            run_id=run.run_id)
        instance.report_engine_event(
            f"{paths.get(key, key)}: {error}", run,
            EngineEventData(metadata={"partition": dg.MetadataValue.text(key),
                                      "path": dg.MetadataValue.path(paths.get(key, ""))}))
    names = [paths.get(k, k) for k in list(failed)[:MAX_LISTED]]
    more = f" and {len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
    instance.report_run_failed(run, f"{len(failed)} files failed {asset_key.to_user_string()} "
                                    f"in run {context.run.run_id}: {', '.join(names)}{more}")
    return run.run_id
