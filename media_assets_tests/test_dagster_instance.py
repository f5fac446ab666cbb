"""The Dagster instance `dev` and `ingest` share: PostgreSQL storage, run queue, gpu pool."""

import dagster as dg

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
        assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
        assert type(instance.schedule_storage).__name__ == "PooledPostgresScheduleStorage"
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



def _kill_kept_connection(storage, catalog):
    """The server drops the storage's kept connection (a restart, an idle timeout)."""
    import sqlalchemy as sa

    with storage._engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    admin = catalog.engine.raw_connection()
    try:
        admin.cursor().execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        admin.commit()
    finally:
        admin.close()


def test_event_log_keeps_one_connection_open_for_many_events(settings, catalog):
    """A run worker (which rebuilds the instance from its reference, as the daemon's runs
    do) writes its per-file events and check evaluations on one kept server connection:
    dagster-postgres alone opens a new one per statement group, a server fork each, three
    per check. A kept connection the server dropped is replaced instead of failing the next
    event, in the worker and in `ingest`'s own instance."""
    import sqlalchemy as sa

    cli_instance = _instance(settings, catalog)
    worker = dg.DagsterInstance.from_ref(cli_instance.get_ref())
    try:
        storage = worker.event_log_storage
        assert [type(s).__name__ for s in (worker.run_storage, storage,
                                           worker.schedule_storage)] == [
            "PooledPostgresRunStorage", "PooledPostgresEventLogStorage",
            "PooledPostgresScheduleStorage"]
        key = dg.AssetKey("pooled_probe")

        def events(n):
            for i in range(n):
                worker.report_runless_asset_event(dg.AssetMaterialization(key))
                worker.report_runless_asset_event(dg.AssetCheckEvaluation(
                    asset_key=key, check_name="file_ok", passed=i % 2 == 0))

        events(1)  # the first event also reads Dagster's schema once, on a second connection
        opened = []
        sa.event.listen(storage._engine, "connect", lambda *_: opened.append(1))
        events(20)
        assert opened == [], f"{len(opened)} connections opened for 40 events"
        checks = storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, "file_ok"), limit=50)
        assert [c.status.value for c in checks[:2]] == ["FAILED", "SUCCEEDED"]
        assert len(checks) == 21

        # The run storage too (the daemon's run queue reads it every few seconds).
        runs_opened = []
        worker.get_runs_count()
        sa.event.listen(worker.run_storage._engine, "connect",
                        lambda *_: runs_opened.append(1))
        for _ in range(20):
            worker.get_runs_count()
        assert runs_opened == []

        for instance in (worker, cli_instance):
            _kill_kept_connection(instance.event_log_storage, catalog)
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        assert len(opened) == 1
        assert len(worker.fetch_materializations(key, limit=100).records) == 23
    finally:
        worker.dispose()
        cli_instance.dispose()
