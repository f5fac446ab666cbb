"""One declaration per per-file asset: `FileBatch` takes the kinds, the model and the version
from the decorator; the body returns its outcome and the decorator yields each file's
observation, the materialisation and each file's `file_ok` evaluation."""

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from media_assets.defs.assets.files import media_file
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.per_file import FileBatch, per_file_asset, versioned_by
from media_assets.defs.resources import CatalogResource, GpuResource, resources_from_settings
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.files.store import FileStore
from media_assets.lib.models.inventory import ModelInventory
from media_assets.lib.models.roles import Role
from media_assets.lib.samples import tone, write_wav
from media_assets_tests.conftest import use_models


@per_file_asset(group_name="test", file_kinds=("json",), deps=[media_file], model=Role.CLIP,
                loads_model=False, versioned=True)
def json_by_clip(context: dg.AssetExecutionContext, catalog: CatalogResource,
                 gpu: GpuResource) -> FileOutcome:
    """Test asset: fails files named bad*, versioned by the CLIP ref (never loads CLIP)."""
    batch = FileBatch(context, catalog, gpu, columns=["size"])
    for item in batch:
        with batch.each(item):
            if item.name.startswith("bad"):
                raise ValueError("this one is bad")
            batch.ok(item, item.row.size_bytes)
    return batch.result({"extra": 7})


@per_file_asset(group_name="test", file_kinds=("json", "audio"), deps=[media_file],
                model=Role.LLM, loads_model=False, versioned=True)
def json_by_llm(context: dg.AssetExecutionContext, catalog: CatalogResource,
                gpu: GpuResource) -> FileOutcome:
    """Test asset: versioned by the optional LLM, which the tests' model folder lacks."""
    batch = FileBatch(context, catalog, gpu)
    batch.ok_all()
    return batch.result()


@per_file_asset(group_name="test", file_kinds=("json",), deps=[media_file])
def forgets_its_outcome(context: dg.AssetExecutionContext,
                        catalog: CatalogResource) -> dg.MaterializeResult:
    """Test asset: returns a bare MaterializeResult, as the old bodies did."""
    FileBatch(context, catalog).ok_all()
    return dg.MaterializeResult()


ASSETS = [media_file, json_by_clip, json_by_llm, forgets_its_outcome]


@pytest.fixture
def registered(settings, catalog, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps([{"id": 1}]))
    (folder / "bad.json").write_text(json.dumps([{"id": 2}, {"id": 3}]))
    write_wav(folder / "tone.wav", tone(1.0, 300))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    assert len(keys) == 3
    names = {FileStore(catalog.engine).get([k])[k].primary_path.rsplit("/", 1)[-1]: k
             for k in keys}
    return keys, names


def _run(settings, keys, *names):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        return dg.materialize(ASSETS, instance=instance, tags=range_tags(keys),
                              resources=resources_from_settings(settings),
                              selection=[dg.AssetKey(n) for n in names], raise_on_error=False)


def _results(catalog, asset):
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, status, version FROM file_asset_results "
                                    "WHERE asset = :a"), {"a": asset}).all()
    return {r.key: (r.status, r.version) for r in rows}


def test_the_decorator_declares_kinds_model_and_version_once(settings, catalog, tiny_models,
                                                             registered, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    keys, names = registered
    assert versioned_by(json_by_clip) is Role.CLIP and versioned_by(forgets_its_outcome) is None
    assert _run(settings, keys, "media_file").success
    result = _run(settings, keys, "json_by_clip", "json_by_llm")
    assert result.success

    # Kinds from the decorator: the wav is not json_by_clip's, so it has no result there.
    clip_ref = ModelInventory(settings.models).ref(Role.CLIP)
    assert _results(catalog, "json_by_clip") == {
        names["good.json"]: ("ok", clip_ref), names["bad.json"]: ("failed", clip_ref)}
    # An optional model that is missing: its results carry no version (redone with it).
    assert _results(catalog, "json_by_llm") == {k: ("ok", "") for k in keys}

    meta = {m.asset_key.to_user_string(): m.event_specific_data.materialization.metadata
            for m in result.get_asset_materialization_events()}
    clip_meta = meta["json_by_clip"]
    assert (clip_meta["files"].value, clip_meta["done"].value,
            clip_meta["failed"].value) == (2, 1, 1)
    assert clip_meta["extra"].value == 7 and "this one is bad" in clip_meta["preview"].value
    assert clip_meta["preview"].value.index("bad.json") < clip_meta["preview"].value.index(
        "good.json")  # failures first

    # Each file's own facts are on its partition's materialisation, over the batch's.
    observed = {(e.asset_key.to_user_string(), e.partition):
                e.event_specific_data.materialization.metadata
                for e in result.get_asset_materialization_events()
                if "status" in e.event_specific_data.materialization.metadata}
    bad = observed[("json_by_clip", names["bad.json"])]
    assert bad["status"].value == "failed" and "this one is bad" in bad["error"].value
    assert bad["version"].value == clip_ref and bad["kind"].value == "json"
    good = observed[("json_by_clip", names["good.json"])]
    assert good["size"].value == str(FileStore(catalog.engine).get(
        [names["good.json"]])[names["good.json"]].size_bytes)
    # A file of another kind has no result of this asset: its page says so, nothing more.
    other = observed[("json_by_clip", names["tone.wav"])]
    assert other["status"].value == "no work" and "version" not in other
    assert other["why"].value.startswith("not for this asset: it takes json files")

    verdicts = {(e.event_specific_data.asset_key.to_user_string(),
                 e.event_specific_data.partition): e.event_specific_data.passed
                for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and e.event_specific_data.check_name == "file_ok"}
    assert verdicts[("json_by_clip", names["bad.json"])] is False
    assert verdicts[("json_by_clip", names["good.json"])] is True
    assert verdicts[("json_by_clip", None)] is False  # the run's summary
    assert verdicts[("json_by_llm", None)] is True


def test_a_body_that_returns_no_outcome_fails_its_step(settings, catalog, registered):
    keys, _ = registered
    assert _run(settings, keys, "media_file").success
    result = _run(settings, keys, "forgets_its_outcome")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error
    assert "must return its FileOutcome" in error.cause.message, error.to_string()


def test_a_version_needs_a_model():
    with pytest.raises(ValueError, match="names the model"):
        per_file_asset(group_name="test", file_kinds=("json",), versioned=True)


@pytest.mark.slow
def test_without_its_model_each_file_fails_with_how_to_get_it(settings, catalog, tmp_path,
                                                              monkeypatch):
    """image_text declares the OCR model; missing, every file of the batch records why."""
    from media_assets.defs.jobs import PER_FILE_ASSETS
    from media_assets.lib.samples import solid_image
    from media_assets.lib.settings import Settings

    monkeypatch.setenv("MEDIA_ASSETS_OCR_MODEL", str(tmp_path / "no-ocr-here"))
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        solid_image(folder / f"{i}.png", (i * 90, 30, 30))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(Settings.from_env()),
                                selection=[dg.AssetKey("media_file"), dg.AssetKey("image_text")],
                                raise_on_error=False)
    assert result.success  # the batch's files failed, not the run
    results = _results(catalog, "image_text")
    assert {k: s for k, (s, _) in results.items()} == {k: "failed" for k in keys}
    with catalog.engine.connect() as conn:
        errors = conn.execute(sa.text("SELECT error FROM file_asset_results "
                                      "WHERE asset = 'image_text'")).scalars().all()
    assert all(e.startswith("no OCR model: ") and "no-ocr-here" in e for e in errors), errors


# -- reading a file: the checks before it, and what they may not do --------------------------

def test_checking_a_changed_file_writes_nothing_and_the_next_scan_hashes_it(catalog, tmp_path):
    """`readable_paths` (what GET /files/{key}/content and every asset ask) is a read."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "note.json").write_text(json.dumps({"a": 1}))
    store = FileStore(catalog.engine)
    key = register(store, walk([folder]))[0].new_keys[0]
    (folder / "note.json").write_text(json.dumps({"a": 1, "b": "written after"}))
    writes = []

    def spy(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            writes.append(statement)

    sa.event.listen(catalog.engine, "before_cursor_execute", spy)
    try:
        paths, why, changed = store.readable_paths(key, store.get([key])[key].size_bytes)
    finally:
        sa.event.remove(catalog.engine, "before_cursor_execute", spy)
    assert (paths, changed) == ([], True) and "changed" in why
    assert writes == []
    again = register(store, walk([folder]))[0]
    assert again.new_keys and again.new_keys[0] != key  # the new content, hashed


def test_a_vanished_alias_lets_the_probe_read_the_other(catalog, tmp_path, monkeypatch):
    from media_assets.lib.files import record
    from media_assets.lib.files.probe import Limits, probe_file

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.json", "b.json"):
        (folder / name).write_text(json.dumps([{"id": 1}]))
    store = FileStore(catalog.engine)
    key = register(store, walk([folder]))[0].new_keys[0]
    tried = []

    def vanish_first(path, limits):  # the first path goes between the check and the open
        tried.append(str(path))
        if len(tried) == 1:
            (folder / str(path).rsplit("/", 1)[-1]).unlink()
        return probe_file(path, limits)

    monkeypatch.setattr(record, "probe_file", vanish_first)
    [outcome] = record.probe_and_record(store, [key], Limits())
    assert len(tried) == 2 and outcome.status == "ok", (tried, outcome)
    assert outcome.path == tried[1]


def test_the_probe_never_opens_a_fifo_or_follows_a_symlink(tmp_path):
    import os

    from media_assets.lib.files.probe import ProbeError, probe_file

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opened without O_NONBLOCK this would block: no writer ever comes
    (tmp_path / "real.json").write_text("[1]")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    for path in (fifo, tmp_path / "link.json"):
        with pytest.raises(ProbeError, match="no longer a regular file"):
            probe_file(path)
    assert probe_file(tmp_path / "real.json").kind == "json"


# -- the notebook API (media_assets/notebook.py) ----------------------------------------------

@pytest.mark.slow
def test_the_notebook_gives_files_search_and_json_tables_as_dataframes(settings, catalog,
                                                                      tiny_models, tmp_path,
                                                                      monkeypatch):
    from media_assets.lib.files.probe import Limits
    from media_assets.lib.files.record import probe_and_record
    from media_assets.lib.json_docs.load import iter_records, load_table, sample_records
    from media_assets.lib.json_docs.schema import infer_schema
    from media_assets.lib.json_docs.store import record_load
    from media_assets.lib.samples import solid_image
    from media_assets.notebook import Catalogue

    settings = use_models(settings, monkeypatch, tiny_models)
    folder = tmp_path / "in"
    folder.mkdir()
    cars = [{"model": "beetle", "year": 1970}, {"model": "golf", "year": 1974}]
    (folder / "cars.json").write_text(json.dumps(cars))
    solid_image(folder / "red.png", (200, 30, 30))
    store = FileStore(catalog.engine)
    keys = register(store, walk([folder]))[0].new_keys
    probe_and_record(store, keys, Limits())
    row = next(r for r in store.get(keys).values() if r.kind == "json")
    path = folder / "cars.json"
    design = infer_schema(sample_records(path, row.details, 100), "cars")
    record_load(catalog.engine, row.key, load_table(catalog.engine, design,
                                                    iter_records(path, row.details)))

    with Catalogue(settings) as cat:
        files = cat.files()
        assert sorted(files["kind"]) == ["image", "json"] and set(files["status"]) == {"ok"}
        assert list(cat.files(kind="image")["primary_path"]) == [str(folder / "red.png")]
        tables = cat.json_tables()
        assert list(tables["table_name"]) == ["cars"] and tables["row_count"][0] == 2
        rows = cat.json_table("cars")
        assert list(rows["model"]) == ["beetle", "golf"] and list(rows["year"]) == [1970, 1974]
        with pytest.raises(ValueError):
            cat.json_table("cars; DROP TABLE media_files")
        hits = cat.search("cars")
        assert hits["path"].str.endswith("cars.json").any(), hits.to_string()
        assert {"score", "path", "kind", "at_s", "matched", "legs"} <= set(hits.columns)
