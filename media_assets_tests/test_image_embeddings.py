"""`image_embeddings` with the tiny CLIP on scikit-image's real photos, and search in pgvector."""

import shutil
from pathlib import Path

import dagster as dg
import pytest
import skimage.data
import sqlalchemy as sa
from click.testing import CliRunner

from media_assets.lib.files.store import FileStore
from media_assets.cli import main
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.db.vectors import from_pgvector
from media_assets.lib.images.vectors import store_embeddings
from media_assets.lib.search.query import nearest
from media_assets_tests.conftest import per_file_selection, use_models

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png"]


def _photos(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for name in PHOTOS:
        shutil.copy(Path(skimage.data.__file__).parent / name, folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _run(settings, catalog, folder, only=None):
    """The per-file assets (`per_file_selection(only)`) over `folder`'s files."""
    registration, _ = register(FileStore(catalog.engine), walk([folder]))
    keys = registration.new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings),
                                selection=per_file_selection(only))
    assert result.success
    return result, keys


@pytest.mark.slow
def test_embeddings_are_stored_and_reported(settings, catalog, tiny_models, tmp_path,
                                            monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    embedding = {"media_file", "image_embeddings"}
    result, keys = _run(settings, catalog, _photos(tmp_path / "photos"), only=embedding)
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT key, model_id, vector_dims(embedding) AS dims, "
            "round(vector_norm(embedding)::numeric, 4) AS norm FROM image_embeddings")).all()
    assert len(rows) == len(PHOTOS)  # the text file is skipped
    assert {r.dims for r in rows} == {512} and {float(r.norm) for r in rows} == {1.0}
    assert all(r.model_id.startswith("laion/CLIP-ViT-B-32-laion2B-s34B-b79K@") for r in rows)
    mats = [m for m in result.get_asset_materialization_events()
            if m.asset_key == dg.AssetKey("image_embeddings")]
    meta = mats[0].event_specific_data.materialization.metadata
    # The model, the device, the load time and the peak memory, as the README promises.
    assert meta["clip_model"].value == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert meta["device"].value == "cpu"
    assert meta["clip_load_seconds"].value > 0
    assert meta["peak_model_memory_mb"].value > 0
    assert meta["embedded"].value == len(PHOTOS)

    # Re-materialising writes nothing twice: the current model's rows are kept.
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        again = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                               resources=resources_from_settings(settings),
                               selection=per_file_selection(embedding))
    meta2 = [m for m in again.get_asset_materialization_events()
             if m.asset_key == dg.AssetKey("image_embeddings")][0]
    assert meta2.event_specific_data.materialization.metadata["embedded"].value == 0
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM image_embeddings")).scalar() == 5


def _ingested(settings, catalog, tiny_models, tmp_path, monkeypatch):
    """The photos catalogued and embedded with the tiny CLIP (the other assets would only
    add time: these tests search by likeness): their CLIP model's ref and one vector."""
    settings = use_models(settings, monkeypatch, tiny_models)
    _run(settings, catalog, _photos(tmp_path / "photos"), only={"media_file", "image_embeddings"})
    with catalog.engine.connect() as conn:
        model_ref = conn.execute(sa.text("SELECT DISTINCT model_id FROM image_embeddings")).scalar()
        vec = from_pgvector(conn.execute(sa.text(
            "SELECT embedding::text FROM image_embeddings LIMIT 1")).scalar())
    return model_ref, vec


def test_search_is_ordered_and_ignores_other_models(settings, catalog, tiny_models, tmp_path,
                                                    monkeypatch):
    model_ref, vec = _ingested(settings, catalog, tiny_models, tmp_path, monkeypatch)
    # Another model's vectors, placed exactly on the query: they must never be returned.
    with catalog.engine.connect() as conn:
        some_key = conn.execute(sa.text("SELECT key FROM image_embeddings LIMIT 1")).scalar()
    store_embeddings(catalog.engine, [some_key], vec[None, :], "other/model@0000")
    hits = nearest(catalog.engine, vec, model_ref, k=3)
    assert len(hits) == 3
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert hits[0].distance < 1e-5  # the vector itself comes first
    hits_all = nearest(catalog.engine, vec, model_ref, k=50)
    assert len(hits_all) == len(PHOTOS)  # one per image: the other model's row is not here
    # The visual leg's order (other legs may add a text file that means something close).
    out = CliRunner().invoke(main, ["search", "a cat", "-k", "3", "--kind", "image", "--json"])
    assert out.exit_code == 0, out.output
    import json

    results = json.loads(out.output)
    assert len(results) == 3 and all(r["kind"] == "image" for r in results)
    assert [r["distance"] for r in results] == sorted(r["distance"] for r in results)


@pytest.mark.slow  # 8,000 rows and a 512-d HNSW index over them
def test_a_realistic_catalogue_is_searched_through_the_hnsw_index(settings, catalog,
                                                                  tiny_models, tmp_path,
                                                                  monkeypatch):
    """The planner only prefers HNSW on a table of realistic size: with the search's
    ef_search of 100 (every catalogue connection has it) from about 6,000 rows; 8,000 rows
    of the catalogue's model are added to an ingested one."""
    model_ref, vec = _ingested(settings, catalog, tiny_models, tmp_path, monkeypatch)
    with catalog.engine.begin() as conn:
        # The index is built once over all the rows, as pgvector builds it in memory, rather
        # than kept up over 8,000 single inserts (4-5x slower); the same index after.
        index = conn.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'image_embeddings_hnsw'")).scalar()
        conn.execute(sa.text("DROP INDEX image_embeddings_hnsw"))
        conn.execute(sa.text(
            "INSERT INTO media_files (key, sha256, size_bytes, primary_path) "
            "SELECT lpad(to_hex(i), 16, '0'), md5(i::text) || md5(i::text), 1, 'synthetic' "
            "FROM generate_series(1, 8000) i"))
        conn.execute(sa.text(
            "INSERT INTO image_embeddings (key, model_id, embedding) "
            "SELECT lpad(to_hex(i), 16, '0'), :m, l2_normalize(CAST((SELECT array_agg(random()) "
            "FROM generate_series(1, 512) WHERE i > 0) AS vector)) FROM generate_series(1, 8000) i"),
            {"m": model_ref})
        conn.execute(sa.text(index))
        conn.execute(sa.text("ANALYZE image_embeddings"))
        assert conn.execute(sa.text("SELECT current_setting('hnsw.ef_search')")).scalar() == "100"
        plan = "\n".join(conn.execute(sa.text(
            "EXPLAIN SELECT key FROM image_embeddings WHERE model_id = :m "
            "ORDER BY embedding <=> CAST(:q AS vector) LIMIT 3"),
            {"m": model_ref, "q": "[" + ",".join(map(str, vec.tolist())) + "]"}).scalars())
    assert "image_embeddings_hnsw" in plan, plan



def test_ingest_without_clip_skips_embeddings_and_says_why(settings, tmp_path, monkeypatch):
    settings = use_models(settings, monkeypatch, tmp_path / "no-models")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(main, ["ingest", "-q", str(_photos(tmp_path / "photos"))])
    assert result.exit_code == 0, result.output
    assert "skipping image_embeddings: the clip model" in result.output


@pytest.mark.slow
def test_ingest_completes_files_once_the_model_is_present(settings, catalog, tiny_models,
                                                         tmp_path, monkeypatch):
    folder = _photos(tmp_path / "photos")
    settings = use_models(settings, monkeypatch, tmp_path / "no-models")
    assert CliRunner().invoke(main, ["ingest", "-q", str(folder)]).exit_code == 0
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM image_embeddings")).scalar() == 0
    settings = use_models(settings, monkeypatch, tiny_models)
    second = CliRunner().invoke(main, ["ingest", "-q", "--json", str(folder)])
    assert second.exit_code == 0, second.output
    import json

    assert json.loads(second.stdout)["completed"] == len(PHOTOS)
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM image_embeddings")).scalar() == 5
        assert conn.execute(sa.text("SELECT count(*) FROM image_analysis")).scalar() == 5
    third = CliRunner().invoke(main, ["ingest", "-q", "--json", str(folder)])
    assert json.loads(third.stdout)["completed"] == 0  # nothing is done twice


@pytest.mark.slow
def test_a_model_change_reembeds_only_stale_rows(settings, catalog, tiny_models, tmp_path,
                                                  monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    _, keys = _run(settings, catalog, _photos(tmp_path / "photos"))
    with catalog.engine.begin() as conn:
        # Pretend two images were embedded by an older model and one is already current.
        conn.execute(sa.text("UPDATE image_embeddings SET model_id = 'old/clip@1' "
                             "WHERE key IN (SELECT key FROM image_embeddings ORDER BY key LIMIT 2)"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings),
                                selection=["image_embeddings"])
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert meta["embedded"].value == 2 and meta["already_current"].value == len(PHOTOS) - 2
    with catalog.engine.connect() as conn:
        per_model = dict(conn.execute(sa.text(
            "SELECT model_id LIKE 'old/%', count(*) FROM image_embeddings GROUP BY 1")).all())
    assert per_model == {True: 2, False: len(PHOTOS)}  # old rows kept, never mixed in search
