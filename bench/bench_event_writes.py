"""Per-file event writes in a run worker: milliseconds per materialisation + `file_ok` check
evaluation with our event log (`PooledPostgresEventLogStorage`, dagster.yaml) vs
dagster-postgres's own (`PostgresEventLogStorage`, a new server connection per statement
group), each instance rebuilt from the reference a run worker gets, in this process, on the
same PostgreSQL, rounds alternated.

    python bench/bench_event_writes.py [--events 200] [--rounds 3]   # scratch ./.bench_home
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

OURS = ("media_assets.defs.dagster_storage", "PooledPostgresEventLogStorage")
DAGSTERS = ("dagster_postgres.event_log", "PostgresEventLogStorage")


def with_event_log(ref, module: str, cls: str):
    """`ref` (an InstanceRef) with its event log storage class swapped, in both places a
    reference names it (the three storages' block and the event log's own)."""
    import yaml
    from dagster._serdes import ConfigurableClassData

    blocks = yaml.safe_load(ref.storage_data.config_yaml)
    blocks["event_log_storage"].update(module_name=module, class_name=cls)
    storage = ref.storage_data._replace(config_yaml=yaml.safe_dump(blocks))
    event_log = ConfigurableClassData(module, cls, ref.event_storage_data.config_yaml)
    return ref._replace(storage_data=storage, event_storage_data=event_log)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("MEDIA_ASSETS_HOME", str(Path(".bench_home").resolve()))
    warnings.filterwarnings("ignore")
    import dagster as dg

    from media_assets.cli.run import instance_for
    from media_assets.lib.db import open_catalog
    from media_assets.lib.settings import Settings

    settings = Settings.from_env()
    catalog = open_catalog(settings)
    ref = instance_for(settings, catalog).get_ref()
    key = dg.AssetKey("bench_event_writes")
    times: dict[str, list[float]] = {"ours": [], "dagster-postgres": []}
    for _ in range(args.rounds):
        for label, (module, cls) in (("ours", OURS), ("dagster-postgres", DAGSTERS)):
            instance = dg.DagsterInstance.from_ref(with_event_log(ref, module, cls))
            assert type(instance.event_log_storage).__name__ == cls
            assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"

            def pair(i: int) -> None:
                instance.report_runless_asset_event(dg.AssetMaterialization(key))
                instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                    asset_key=key, check_name="file_ok", passed=i % 7 != 0))

            pair(0)  # the first reads Dagster's schema: not what every file pays
            t = time.perf_counter()
            for i in range(args.events):
                pair(i)
            times[label].append((time.perf_counter() - t) / args.events * 1000)
            instance.dispose()
    ours, theirs = min(times["ours"]), min(times["dagster-postgres"])
    print(f"{args.events} materialisations + check evaluations, best of {args.rounds} rounds "
          f"(ms per pair): ours {ours:.2f} (all: {', '.join(f'{t:.2f}' for t in times['ours'])})"
          f", dagster-postgres {theirs:.2f} (all: "
          f"{', '.join(f'{t:.2f}' for t in times['dagster-postgres'])}); "
          f"ours {theirs / ours:.1f}x as fast")
    catalog.dispose()


if __name__ == "__main__":
    main()
