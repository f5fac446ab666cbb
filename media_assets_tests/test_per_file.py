"""The per-file helper: a file whose paths vanished after registration is that file's
recorded failure, never the batch's; each file's result is recorded for resume."""

import json

import dagster as dg
import sqlalchemy as sa

from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.files.store import FileStore
from media_assets.lib.samples import tone, write_wav
from media_assets_tests.conftest import use_models


def _materialise(settings, keys, selection):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        return dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                              resources=resources_from_settings(settings),
                              selection=selection, raise_on_error=False)


def _results(catalog) -> dict[tuple[str, str], tuple[str, str | None]]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT f.primary_path, r.asset, r.status, r.error FROM file_asset_results r "
            "JOIN media_files f USING (key)")).all()
    return {(r.primary_path.rsplit("/", 1)[-1], r.asset): (r.status, r.error) for r in rows}


def test_a_vanished_file_fails_alone(settings, catalog, tiny_models, tmp_path, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "kept.json").write_text(json.dumps([{"id": 1, "name": "a"}, {"id": 2}]))
    (folder / "gone.json").write_text(json.dumps([{"sku": "x", "qty": 3}]))
    write_wav(folder / "kept.wav", tone(1.0, 300))
    write_wav(folder / "gone.wav", tone(1.5, 500))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    assert len(keys) == 4
    assert _materialise(settings, keys, [dg.AssetKey("media_file")]).success
    (folder / "gone.json").unlink()
    (folder / "gone.wav").unlink()

    result = _materialise(settings, keys, [dg.AssetKey(a) for a in
                                           ("transcripts", "json_schemas", "json_tables")])
    assert result.success  # the batch went on
    results = _results(catalog)
    for asset in ("transcripts", "json_schemas", "json_tables"):
        kind = "wav" if asset == "transcripts" else "json"
        assert results[(f"kept.{kind}", asset)] == ("ok", None)
        status, error = results[(f"gone.{kind}", asset)]
        assert status == "failed" and "moved or deleted" in error
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM json_tables")).scalar() == 1
    meta = {m.asset_key.to_user_string(): m.event_specific_data.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert meta["transcripts"]["failed"].value == 1 and meta["transcripts"]["done"].value == 1
    assert "gone.wav" in meta["transcripts"]["preview"].value

    # Per-file truth in the UI: each partition carries its own file's facts, and the file
    # that failed has a failed `file_ok` check on its own partition; the others pass.
    by_name = {FileStore(catalog.engine).get([k])[k].primary_path.rsplit("/", 1)[-1]: k
               for k in keys}
    # Each file's own facts are on its partition's materialisation, over the batch's.
    observed = {(e.asset_key.to_user_string(), e.partition):
                e.event_specific_data.materialization.metadata
                for e in result.get_asset_materialization_events()
                if "status" in e.event_specific_data.materialization.metadata}
    gone = observed[("transcripts", by_name["gone.wav"])]
    assert gone["status"].value == "failed" and "moved or deleted" in gone["error"].value
    assert gone["path"].value.endswith("gone.wav")
    kept = observed[("transcripts", by_name["kept.wav"])]
    assert kept["status"].value == "ok" and kept["path"].value.endswith("kept.wav")
    verdicts = {(e.event_specific_data.asset_key.to_user_string(),
                 e.event_specific_data.partition): e.event_specific_data.passed
                for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and e.event_specific_data.check_name == "file_ok"}
    assert verdicts[("transcripts", by_name["gone.wav"])] is False
    assert verdicts[("transcripts", by_name["kept.wav"])] is True
    assert verdicts[("json_tables", by_name["gone.json"])] is False
    assert verdicts[("transcripts", None)] is False  # the run's summary says one failed


def test_garbage_vectors_fail_a_blocking_check_and_stop_duplicates(settings, catalog,
                                                                   tiny_models, tmp_path,
                                                                   monkeypatch):
    from media_assets.lib.samples import solid_image

    settings = use_models(settings, monkeypatch, tiny_models)
    folder = tmp_path / "img"
    folder.mkdir()
    for i in range(2):
        solid_image(folder / f"{i}.png", (i * 90, 30, 30))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    first = _materialise(settings, keys, [dg.AssetKey(a) for a in
                                          ("media_file", "image_embeddings", "image_duplicates")])
    assert first.success
    with catalog.engine.begin() as conn:  # a vector that is not unit length
        conn.execute(sa.text("UPDATE image_embeddings SET embedding = "
                             "CAST(array_fill(1.0::real, ARRAY[512]) AS vector) "
                             "WHERE key = :k"), {"k": keys[0]})
    again = _materialise(settings, keys, [dg.AssetKey("image_embeddings"),
                                          dg.AssetKey("image_duplicates")])
    checks = [e.event_specific_data for e in again.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and e.event_specific_data.check_name == "vectors_are_unit_512"]
    assert [c.passed for c in checks] == [False]
    assert checks[0].metadata["keys"].value == [keys[0]]
    assert dg.AssetKey("image_duplicates") not in {
        m.asset_key for m in again.get_asset_materialization_events()}


STATUSES = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetPartitionStatuses { ... on DefaultPartitionStatuses {
    materializedPartitions failedPartitions } }
  assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
    ... on AssetCheckDefaultPartitionStatuses {
      succeededPartitions failedPartitions skippedPartitions } } } } } } } }"""


def _statuses(instance, asset: str) -> dict[str, set[str]]:
    """The asset's and its `file_ok` check's partition statuses, through the GraphQL the
    UI's partition views send (a request context of a workspace on this code)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    target = InProcessWorkspaceLoadTarget([InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="media_assets.definitions"),
        location_name="media_assets")])
    with WorkspaceProcessContext(instance, target) as workspace, \
            workspace.create_request_context() as ctx:
        node = execute_dagster_graphql(ctx, STATUSES, {"key": {"path": [asset]}}).data[
            "assetNodeOrError"]
    checks = {c["name"]: c["partitionStatuses"] for c in node["assetChecksOrError"]["checks"]}
    parts = node["assetPartitionStatuses"]
    return {"materialized": set(parts["materializedPartitions"]),
            "failed": set(parts["failedPartitions"]),
            "check passed": set(checks["file_ok"]["succeededPartitions"]),
            "check failed": set(checks["file_ok"]["failedPartitions"]),
            "check skipped": set(checks["file_ok"]["skippedPartitions"])}


def _partition_facts(instance, asset: str, partition: str) -> dict:
    """The metadata of a partition's latest materialisation, as its page in the UI shows."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1,
        ascending=False).records
    meta = records[0].asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in meta.items()}

def test_a_failed_file_is_red_in_both_partition_views(settings, catalog, tiny_models,
                                                      tmp_path, monkeypatch):
    """Issue 20 item 2: one batch run with a broken WAV and an invalid JSON beside good
    ones. In the asset's partition view the broken files are Failed and the good ones
    Materialized; in its `file_ok` check's view they are Failed and Passed. A file the
    asset has no work for (another kind) is Skipped in the check's view, not Passed. The
    failures are one failed run of their own, naming each file. Before: every partition
    Materialized, and the check's view empty (the verdicts were tied to no
    materialisation)."""
    settings = use_models(settings, monkeypatch, tiny_models)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "kept.json").write_text(json.dumps([{"id": 1, "name": "a"}, {"id": 2}]))
    (folder / "bad.json").write_text("{not json")
    write_wav(folder / "kept.wav", tone(1.0, 300))
    (folder / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    rows = FileStore(catalog.engine).get(keys)
    key = {rows[k].primary_path.rsplit("/", 1)[-1]: k for k in keys}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings),
                                selection=[dg.AssetKey(a) for a in ("media_file", "json_schemas")],
                                raise_on_error=False)
        assert result.success  # the batch run itself went through, green
        media = _statuses(instance, "media_file")
        bad = {key["bad.json"], key["bad.wav"]}
        good = {key["kept.json"], key["kept.wav"]}
        assert media["failed"] == bad
        assert media["materialized"] == good
        assert media["check failed"] == bad and media["check passed"] == good
        design = _statuses(instance, "json_schemas")
        assert design["check passed"] == {key["kept.json"]}
        assert key["kept.wav"] in design["check skipped"]
        assert not design["failed"] and not design["check failed"]
        # Dagster shows the whole range Materialized in json_schemas; each page says why
        # there is nothing for a file of another kind, or for one media_file could not read.
        said = {k: _partition_facts(instance, "json_schemas", k) for k in keys}
        assert said[key["kept.json"]]["status"] == "ok"
        assert said[key["kept.wav"]]["status"] == "no work"
        assert said[key["kept.wav"]]["why"].startswith("not for this asset: it takes json")
        assert said[key["bad.json"]]["why"].startswith("not run: media_file says failed: ")
        # The assets this run left out: a file they have no work for is not Missing there
        # (Materialized, saying why); a file they owe work is, until a run does it.
        speech = _statuses(instance, "transcripts")
        assert speech["materialized"] == {key["kept.json"], key["bad.json"]}
        assert not speech["failed"]
        # Its check, as for an asset in the run: Skipped, not Missing; the WAVs it owes a
        # verdict have none yet.
        assert speech["check skipped"] == {key["kept.json"], key["bad.json"]}
        assert not speech["check passed"] | speech["check failed"]
        assert _partition_facts(instance, "transcripts", key["kept.json"])["why"] == (
            "not for this asset: it takes audio, video files, this one is json")
        pictures = _statuses(instance, "image_embeddings")
        assert pictures["materialized"] == set(keys) and not pictures["failed"]
        # An asset in the run says it for its range itself, once.
        assert len(instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("json_schemas"), asset_partitions=[key["kept.wav"]]),
            limit=5).records) == 1

        failures = instance.get_runs(dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={"media_assets/failed_in_run": result.run_id}))
        assert len(failures) == 1 and failures[0].tags["media_assets/failed_files"] == "2"
        said = [r.event_log_entry.message for r in instance.get_records_for_run(
            failures[0].run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records]
        assert any(m.startswith(str(folder / "bad.wav")) for m in said), said
        # That record plans nothing else: the batch's own checks keep their verdicts.
        verdict = dg.AssetCheckKey(dg.AssetKey("media_file"), "every_file_has_a_verdict")
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([verdict])
        assert latest[verdict].run_id == result.run_id
        assert latest[verdict].status.value == "SUCCEEDED"
