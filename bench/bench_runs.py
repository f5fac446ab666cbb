"""Run creation for a batch of files: seconds to create a `media_job` run over 16, 64 and
256 partitions, with Dagster's per-partition planned events (its default) and with one
planned event per asset (what media-assets sets), in the same process on the same
PostgreSQL-backed instance; then a 500-file inbox tick (registration + runs).

    python bench/bench_runs.py      # uses a scratch data home under ./.bench_home
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

VAR = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def main() -> None:
    home = Path(".bench_home/runs").resolve()
    shutil.rmtree(home, ignore_errors=True)
    os.environ["MEDIA_ASSETS_HOME"] = str(home)
    os.environ.pop(VAR, None)
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan

    from media_assets.cli import _instance
    from media_assets.definitions import defs
    from media_assets.defs.partitions import media_files, range_tags
    from media_assets.lib.db import open_catalog
    from media_assets.lib.settings import Settings

    settings = Settings.from_env()
    catalog = open_catalog(settings)
    os.environ[VAR] = "false"
    instance = _instance(settings, catalog)
    job = defs.resolve_job_def("media_job")
    recon = ReconstructableRepository.for_module(
        "media_assets.definitions", "defs", os.getcwd()).get_reconstructable_job("media_job")

    def create(n: int) -> float:
        keys = [uuid.uuid4().hex[:16] for _ in range(n)]
        instance.add_dynamic_partitions(media_files.name, keys)
        start = time.perf_counter()
        plan = create_execution_plan(recon, instance_ref=instance.get_ref(),
                                     tags=range_tags(keys))
        instance.create_run_for_job(job_def=job, execution_plan=plan, tags=range_tags(keys))
        return time.perf_counter() - start

    for n in (16, 64, 256):
        os.environ[VAR] = "false"
        per_partition = create(n)
        os.environ[VAR] = "true"
        per_asset = create(n)
        print(f"{n:>4} partitions: per-partition events {per_partition:6.2f}s, one per asset "
              f"{per_asset:5.2f}s  ({per_partition / per_asset:.1f}x faster)", flush=True)
    os.environ[VAR] = "true"
    start = time.perf_counter()
    for _ in range(500 // 64 + 1):  # a 500-file tick: 8 runs of up to 64 files
        create(64)
    print(f"500-file tick: 8 runs created in {time.perf_counter() - start:.1f}s")
    catalog.dispose()


if __name__ == "__main__":
    main()
