"""The Dagster instance `dev` and `ingest` share: PostgreSQL storage, run queue, gpu pool."""

import dagster as dg
import yaml

from media_assets.cli import _instance
from media_assets.lib.settings import PROJECT_ROOT


def test_dagster_yaml_declares_pools_queue_and_monitoring():
    conf = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert conf["storage"]["postgres"]["postgres_url"] == {"env": "MEDIA_ASSETS_DAGSTER_PG_URL"}
    assert conf["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert conf["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert conf["run_monitoring"]["enabled"] is True
    assert conf["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_instance_is_on_postgres_with_a_gpu_pool_of_one(settings, catalog):
    instance = _instance(settings, catalog)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        assert (settings.dagster_home / "dagster.yaml").exists()
        # Runs recorded here are what the UI of `media-assets dev` lists.
        @dg.asset
        def probe_asset():
            return 1

        result = dg.materialize([probe_asset], instance=instance)
        assert instance.get_run_by_id(result.run_id) is not None
    finally:
        instance.dispose()
