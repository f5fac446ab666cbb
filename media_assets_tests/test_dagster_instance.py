"""The Dagster instance `dev` and `ingest` share: PostgreSQL storage, run queue, gpu pool."""

import dagster as dg
import yaml

from media_assets.cli import _instance
from media_assets.lib.settings import PROJECT_ROOT


def test_dagster_yaml_passes_dagsters_instance_schema(tmp_path, monkeypatch):
    """The shipped dagster.yaml loads through Dagster's own instance-config validation (a
    misplaced key such as `run_queue.max_concurrent_runs` is refused there)."""
    import shutil

    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("MEDIA_ASSETS_DAGSTER_PG_URL", "postgresql+psycopg2://u:p@h/d")
    dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError on a bad key


def test_instance_is_on_postgres_with_a_gpu_pool_of_one(settings, catalog):
    instance = _instance(settings, catalog)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        assert (settings.dagster_home / "dagster.yaml").exists()
        # What the yaml asks for is what the loaded instance does.
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.run_retries_enabled
        # Runs recorded here are what the UI of `media-assets dev` lists.
        @dg.asset
        def probe_asset():
            return 1

        result = dg.materialize([probe_asset], instance=instance)
        assert instance.get_run_by_id(result.run_id) is not None
    finally:
        instance.dispose()
