"""The Definitions load, and `media_job` materialises `media_file` over a batch of partitions."""

import dagster as dg
import pytest
import sqlalchemy as sa

from media_assets.lib.files.store import FileStore
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.inbox import register, walk
from media_assets_tests.conftest import use_models


def test_definitions_load():
    from media_assets.definitions import defs

    repo = defs.get_repository_def()
    assert dg.AssetKey("media_file") in repo.asset_graph.get_all_asset_keys()
    assert {s.name for s in defs.sensors} == {"inbox_sensor", "recluster_sensor",
                                             "media_job_failure_sensor"}
    assert "media_job" in [j.name for j in repo.get_all_jobs()]
    assert set(defs.resources) >= {"catalog", "inbox"}


@pytest.mark.slow
def test_media_job_over_the_sample_folder(settings, catalog, sample_folder, tiny_models,
                                         monkeypatch):
    from media_assets.definitions import defs

    settings = use_models(settings, monkeypatch, tiny_models)
    folder, expected = sample_folder
    registration, _ = register(FileStore(catalog.engine), walk([folder]))
    keys = registration.new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        job = defs.resolve_job_def("media_job")
        result = job.execute_in_process(
            instance=instance, tags=range_tags(keys),
            resources=resources_from_settings(settings))
        assert result.success
        mats = [m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("media_file")]
        assert sorted(m.partition for m in mats) == sorted(keys)  # one per file, one run
        meta = mats[0].event_specific_data.materialization.metadata
        assert meta["files"].value == len(keys)
        assert "| file | kind | status |" in meta["preview"].value
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks if c.check_name != "file_ok")
        # Each broken file fails `file_ok` on its own partition; every good file passes.
        rows = FileStore(catalog.engine).get(keys)
        verdicts = {c.partition: c.passed for c in checks
                    if c.check_name == "file_ok" and c.asset_key == dg.AssetKey("media_file")
                    and c.partition}
        assert verdicts == {k: rows[k].status == "ok" for k in keys}
        assert not all(verdicts.values())  # the sample folder has broken files

    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT path, kind, status, error FROM catalog_entries")).all()
    got = {r.path.rsplit("/", 1)[-1]: f"{r.kind}/{r.status}" for r in rows}
    assert got == expected
    errors = {r.path.rsplit("/", 1)[-1]: r.error for r in rows if r.status != "ok"}
    assert all(errors.values()), "every non-ok file has a human-readable error"
    # Only the good images were embedded; broken ones did not stop the batch.
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM image_embeddings WHERE frame_ms = -1")).scalar() == 2
        # and the sample video (4 s) has its frames, with timestamps
        assert conn.execute(sa.text(
            "SELECT count(*) FROM image_embeddings WHERE frame_ms >= 0")).scalar() >= 2
    # The sample folder is untouched: originals are never modified.
    assert (folder / "red.jpg").read_bytes() == (folder / "copy of red.jpg").read_bytes()


def test_single_file_run_shows_its_facts(settings, catalog, sample_folder, tiny_models,
                                         monkeypatch):
    from media_assets.definitions import defs

    settings = use_models(settings, monkeypatch, tiny_models)
    folder, _ = sample_folder
    registration, _ = register(FileStore(catalog.engine), walk([folder / "red.jpg"]))
    key = registration.new_keys[0]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, [key])
        result = defs.resolve_job_def("media_job").execute_in_process(
            instance=instance, partition_key=key, resources=resources_from_settings(settings))
    meta = next(m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("media_file")).event_specific_data.materialization.metadata
    assert meta["kind"].value == "image" and meta["status"].value == "ok"
    assert meta["details"].value["exif"]["camera"] == "Canon EOS 5D"
