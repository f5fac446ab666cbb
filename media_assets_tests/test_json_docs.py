"""JSON documents: inference on vega_datasets, hostile input, LLM answer parsing, loading."""

import json
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import vega_datasets
from click.testing import CliRunner

from media_assets.lib.files.store import FileStore
from media_assets.cli import main
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.json_docs.llm import parse_answer
from media_assets.lib.json_docs.load import (IdentifierError, check_table_name,
                                                 quote_ident, read_records)
from media_assets.lib.json_docs.schema import infer_schema
from media_assets.lib.files.inbox import register, walk
from media_assets_tests.conftest import use_models

VEGA = Path(vega_datasets.__file__).parent / "_data"


def _design(path: Path, fmt: str = "json"):
    records, _ = read_records(path, {"format": fmt})
    return infer_schema(records, path.stem), records


def test_cars_nullable_numbers_date_and_enum():
    d, records = _design(VEGA / "cars.json")
    by = {f.name: f for f in d.fields}
    assert d.storage_type == "sql" and d.record_count == 406
    assert by["Miles_per_Gallon"].nullable and by["Miles_per_Gallon"].type == "float"
    assert by["Horsepower"].nullable and by["Horsepower"].type == "integer"
    assert by["Cylinders"].type == "integer" and by["Cylinders"].required
    assert by["Year"].type == "date" and by["Year"].pg_type == "date"
    assert by["Origin"].enum == ["Europe", "Japan", "USA"]
    assert {"columns": ["Year"], "type": "btree", "unique": False,
            "reason": "range filters and sorting on Year"} in d.indexes
    contract = d.contract()
    assert set(contract) == {"table_name", "storage_type", "reasoning", "fields", "indexes"}
    assert contract["fields"]["Origin"].startswith("Origin: category (one of: Europe")


def test_formats_unions_maps_decimals_and_hybrid(tmp_path):
    records = []
    for i in range(60):
        records.append({
            "id": f"8c6f1b9e-3a2d-4c5e-9f10-{i:012d}", "email": f"u{i}@example.org",
            "site": f"https://example.org/{i}", "at": f"2024-03-{i % 28 + 1:02d}T10:00:00Z",
            "price": f"PLACEHOLDER{i}", "mixed": i if i % 2 else str(i),
            "tags": {f"k{i}_{j}": j for j in range(3)},  # keys vary: a map
            "meta": {"a": 1, "b": {"c": [1, 2]}},
        })
    text = json.dumps(records)
    for i in range(60):
        text = text.replace(f'"PLACEHOLDER{i}"', f"{i}.99")
    path = tmp_path / "orders.json"
    path.write_text(text)
    d, _ = _design(path)
    by = {f.name: f for f in d.fields}
    assert by["id"].type == "uuid" and by["id"].unique
    assert by["email"].type == "email" and by["site"].type == "url"
    assert by["at"].type == "timestamp" and by["price"].type == "decimal"
    assert by["mixed"].type == "mixed" and by["mixed"].union == ["integer", "string"]
    assert by["tags"].type == "map" and not by["tags"].column
    assert by["meta"].type == "object"
    assert d.storage_type == "hybrid" and "_extra" in d.reasoning


@pytest.mark.parametrize("answer,ok", [
    ('Sure! Here is the design:\n```json\n{"table_name": "car_models", "reasoning": "Car '
     'models from 1970 to 1982.", "fields": {"Name": "Model name", "Origin": "Region where '
     'the car was built"}}\n```', True),
    ('{"table_name": "cars; DROP TABLE media_files; --", "fields": {}}', False),
    ('{"table_name": "cars", "fields": {"Colour": "not a field"}}', False),
    ("I think this data is about cars.", False),
    ('{"table_name": "Cars Table", "fields": {}}', False),
    ('{"table_name": "cars", "fields": ["Name"]}', False),
])
def test_llm_answers_are_validated(answer, ok):
    d, _ = _design(VEGA / "cars.json")
    improved, status = parse_answer(answer, d)
    if ok:
        assert status == "used" and improved.table_name == "car_models"
        by = {f.name: f.description for f in improved.fields}
        assert by["Origin"] == "Region where the car was built"
        assert by["Cylinders"] == {f.name: f.description for f in d.fields}["Cylinders"]
        assert improved.storage_type == d.storage_type  # the LLM never changes types
    else:
        assert improved is None and status


def test_identifiers_are_validated_and_quoted():
    assert quote_ident('we"ird; DROP') == '"we""ird; DROP"'
    for bad in ["", "x" * 64, "a\x00b"]:
        with pytest.raises(IdentifierError):
            quote_ident(bad)
    with pytest.raises(IdentifierError):
        check_table_name("orders; drop table x")


def _hostile(folder: Path) -> dict[str, int]:
    """name -> expected input record count."""
    folder.mkdir()
    (folder / "invalid.json").write_text('{"a": 1,,}')
    (folder / "deep.json").write_text(json.dumps([{"id": 1, "tree": json.loads(
        "[" * 200 + "]" * 200)}, {"id": 2, "tree": []}]))
    (folder / "huge.json").write_text(json.dumps([{"id": 1, "blob": "x" * 10_000_000},
                                                  {"id": 2, "blob": "small"}]))
    (folder / "keywords.json").write_text(json.dumps(
        [{"select": i, "from": "a", "order": i * 2, "table": True} for i in range(5)]))
    (folder / "quotes.json").write_text(json.dumps(
        [{'we"ird': i, "semi;colon": "x", "it's": 1.5, "Robert'); DROP TABLE x;--": i}
         for i in range(4)]))
    (folder / "case.json").write_text(json.dumps(
        [{"Name": "a", "name": "b", "NAME": i} for i in range(3)]))
    (folder / "mixed.json").write_text(json.dumps([{"v": 1}, {"v": "one"}, {"v": [1]},
                                                   {"v": None}]))
    (folder / "empty.json").write_text("[]")
    lines = [json.dumps({"n": i, "label": f"l{i}"}) for i in range(9)]
    lines.insert(3, '{"n": broken')
    (folder / "events.ndjson").write_text("\n".join(lines) + "\n")
    late = [{"id": i, "kind": "a"} for i in range(30)] + [{"id": "thirty", "kind": "a"}]
    (folder / "late_surprise.json").write_text(json.dumps(late))
    return {"deep": 2, "huge": 2, "keywords": 5, "quotes": 4, "case": 3, "mixed": 4,
            "empty": 0, "events": 10, "late_surprise": 31}


def test_hostile_json_is_designed_loaded_and_counted(settings, catalog, tmp_path, monkeypatch):
    settings = use_models(settings, monkeypatch, tmp_path / "no-models")
    expected = _hostile(tmp_path / "docs")
    keys = register(FileStore(catalog.engine), walk([tmp_path / "docs"]))[0].new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize([a for a in PER_FILE_ASSETS if a.key.path[0] in
                                 ("media_file", "json_schemas", "json_tables")],
                                instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings),
                                # infer from 30 records, like DuckDB's sample_size
                                run_config={"ops": {"json_schemas": {"config": {
                                    "sample_size": 30}}}})
    assert result.success
    with catalog.engine.connect() as conn:
        tables = {r.table_name: r for r in conn.execute(sa.text(
            "SELECT table_name, row_count, reject_count, input_count FROM json_tables"))}
        invalid = conn.execute(sa.text(
            "SELECT status, error FROM catalog_entries WHERE path LIKE '%invalid.json'")).one()
        assert invalid.status == "failed" and "invalid JSON" in invalid.error
        for name, n in expected.items():
            t = tables[name]
            assert t.input_count == n, name
            assert t.row_count == t.input_count - t.reject_count, name
            actual = conn.execute(sa.text(f'SELECT count(*) FROM json_data."{name}"')).scalar()
            rejected = conn.execute(sa.text(
                f'SELECT count(*) FROM json_data."{name}__rejects"')).scalar()
            assert (actual, rejected) == (t.row_count, t.reject_count), name
        assert tables["events"].reject_count == 1
        assert "line 4" in conn.execute(sa.text(
            'SELECT reason FROM json_data."events__rejects"')).scalar()
        # A value the sample did not foresee is rejected with its reason, not dropped.
        assert tables["late_surprise"].reject_count == 1
        assert "expected integer" in conn.execute(sa.text(
            'SELECT reason FROM json_data."late_surprise__rejects"')).scalar()
        assert conn.execute(sa.text(
            'SELECT "select", "from", "order", "table" FROM json_data.keywords '
            'ORDER BY "select" LIMIT 1')).one() == (0, "a", 0, True)
        assert conn.execute(sa.text(
            'SELECT "Name", "name", "NAME" FROM json_data."case" ORDER BY "NAME"')).first() \
            == ("a", "b", 0)
        cols = conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'json_data'"
            " AND table_name = 'quotes'")).scalars().all()
        assert "Robert'); DROP TABLE x;--" in cols and 'we"ird' in cols
        assert conn.execute(sa.text(
            "SELECT length(blob) FROM json_data.huge WHERE id = 1")).scalar() == 10_000_000
        assert "media_files" in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()

    # Re-materialising replaces the data atomically: same counts, no duplicates.
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        again = dg.materialize([a for a in PER_FILE_ASSETS if a.key.path[0] in
                                ("json_schemas", "json_tables")], instance=instance,
                               tags=range_tags(keys), resources=resources_from_settings(settings))
    assert again.success
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM json_data.keywords")).scalar() == 5

    status = CliRunner().invoke(main, ["status"])
    assert "json_data.keywords [sql] 5 rows, 0 rejected" in status.output
    assert "stable scalars" in status.output


@pytest.mark.slow
def test_single_file_shows_its_table_in_dagster(settings, catalog, tiny_models, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    keys = register(FileStore(catalog.engine), walk([VEGA / "cars.json"]))[0].new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, partition_key=keys[0],
                                resources=resources_from_settings(settings))
    meta = next(m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("json_tables")).event_specific_data \
        .materialization.metadata
    assert meta["dagster/row_count"].value == 406
    columns = meta["dagster/column_schema"].schema.columns
    assert [c.name for c in columns][:3] == ["_row", "Name", "Miles_per_Gallon"]
    with catalog.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT llm_status FROM json_schemas")).scalar()
    # The tests' model folder has no LLM: the heuristics stood, and the row says why (the
    # LLM's own Dagster run is in test_llm_real.py).
    assert status.startswith("off:") and "not found" in status
