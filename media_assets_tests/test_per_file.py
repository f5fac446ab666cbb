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
    observed = {(e.asset_key.to_user_string(), e.event_specific_data.asset_observation.partition):
                e.event_specific_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
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
