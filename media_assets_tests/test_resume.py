"""A run that stops at any stage boundary (a crash, a kill, a missing model) is finished by
one more `ingest`, and the catalogue then matches an uninterrupted run, row for row."""

import json

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from media_assets.cli import _instance, main
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.ingestion import register_ready, settle_now
from media_assets.lib.samples import encode_video, solid_image, tone
from media_assets.lib.db import open_catalog
from media_assets.lib.settings import Settings
from media_assets_tests.conftest import fresh_databases

pytestmark = pytest.mark.slow  # a whole scenario per test: the full suite runs it

TABLES = ["media_files", "media_paths", "image_embeddings", "image_analysis",
          "near_duplicates", "transcripts", "video_frames", "video_summaries",
          "json_schemas", "json_tables"]


def _folder(root):
    folder = root / "in"
    folder.mkdir()
    solid_image(folder / "red.png", (220, 20, 20))
    solid_image(folder / "red again.jpg", (221, 20, 20))  # a near-duplicate
    frames = [np.full((64, 96, 3), c, np.uint8) for c in (30, 200)]
    encode_video(folder / "clip.mp4", frames, fps=1.0, audio=tone(2.0, 400))
    (folder / "orders.json").write_text(json.dumps([{"id": i, "total": i * 2.5}
                                                    for i in range(12)]))
    return folder


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
        counts["results"] = sorted(map(tuple, conn.execute(sa.text(
            "SELECT asset, status, count(*) FROM file_asset_results GROUP BY 1, 2")).all()))
        counts["json_rows"] = conn.execute(sa.text(
            "SELECT count(*) FROM json_data.orders")).scalar()
    return counts


def _ingest(folder):
    out = CliRunner().invoke(main, ["ingest", "-q", str(folder)])
    assert out.exit_code == 0, out.output


@pytest.fixture(scope="module")
def baseline(pg_server, db_templates, tiny_models, tmp_path_factory):
    """An uninterrupted ingest of the same folder, in a database of its own."""
    _, url, dagster_url = fresh_databases(pg_server, db_templates, "t_resume_")
    root = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIA_ASSETS_HOME", str(root / "home"))
        mp.setenv("MEDIA_ASSETS_DATABASE_URL", url)
        mp.setenv("MEDIA_ASSETS_DAGSTER_DATABASE_URL", dagster_url)
        mp.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
        _ingest(_folder(root))
        catalog = open_catalog(Settings.from_env())
        want = _snapshot(catalog.engine)
        catalog.dispose()
    return want


@pytest.mark.parametrize("done", range(1, len(PER_FILE_ASSETS)),
                         ids=lambda n: f"after-{PER_FILE_ASSETS[n - 1].key.to_user_string()}")
def test_one_more_ingest_finishes_an_interrupted_run(settings, baseline, tiny_models, tmp_path,
                                                     monkeypatch, done):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    settings = settings.from_env()
    folder = _folder(tmp_path)
    catalog = open_catalog(settings)
    # What a run killed after its first `done` assets leaves: those assets' rows only.
    ready, _ = settle_now([folder], 0)
    keys = register_ready(catalog.engine, ready)[0].new_keys
    instance = _instance(settings, catalog)
    instance.add_dynamic_partitions(media_files.name, keys)
    partial = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                             resources=resources_from_settings(settings),
                             selection=[a.key for a in PER_FILE_ASSETS[:done]])
    assert partial.success
    _ingest(folder)
    assert _snapshot(catalog.engine) == baseline
    catalog.dispose()
