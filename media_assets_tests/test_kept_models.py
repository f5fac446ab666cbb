"""One `ingest` loads each model once, however many runs its files take: the runs of one
command share a model manager (lib/models/kept.py), and the models are freed at its end."""

import dagster as dg
import pytest
from click.testing import CliRunner

from media_assets.cli import _instance, main
from media_assets.lib.samples import solid_image
from media_assets_tests.conftest import use_models

pytestmark = pytest.mark.slow  # a whole scenario per test: the full suite runs it


def test_one_ingest_loads_each_model_once_across_its_runs(settings, catalog, tiny_models,
                                                          tmp_path, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    monkeypatch.setenv("MEDIA_ASSETS_BATCH_SIZE", "2")  # 6 photos: three runs
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        solid_image(folder / f"p{i}.png", (40 * i, 90, 200 - 30 * i))
    out = CliRunner().invoke(main, ["ingest", "-q", str(folder)])
    assert out.exit_code == 0, out.output

    instance = _instance(settings.from_env(), catalog)
    records = instance.fetch_materializations(dg.AssetKey("image_embeddings"), limit=100).records
    loaded = {}
    for r in records:  # newest first
        loaded[r.run_id] = r.asset_materialization.metadata["clip_loaded_by_this_run"].value
    assert len(loaded) == 3, loaded
    # The first run loaded CLIP; the two after it found it loaded.
    assert list(loaded.values()) == [False, False, True], loaded

    from media_assets.lib.models import kept
    assert not kept._shared  # the command's end unloaded and forgot its models
