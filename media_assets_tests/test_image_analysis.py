"""image_analysis and image_duplicates with the tiny models on real photos; colours exactly."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
import skimage.data
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from media_assets.lib.files.store import FileStore
from media_assets.cli import main
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.images.colors import dominant_colors
from media_assets_tests.conftest import per_file_selection, use_models

SKIMAGE = Path(skimage.data.__file__).parent


@pytest.mark.parametrize("rgb", [(255, 0, 0), (12, 200, 99), (0, 0, 0), (255, 255, 255)])
def test_solid_colour_is_exact(rgb):
    colors = dominant_colors(Image.new("RGB", (300, 200), rgb))
    assert colors == [{"hex": "#%02x%02x%02x" % rgb, "proportion": 1.0}]


def test_two_colours_with_their_proportions():
    img = Image.new("RGB", (400, 100), (250, 200, 10))
    img.paste((10, 20, 180), (0, 0, 100, 100))  # a quarter blue
    assert dominant_colors(img) == [{"hex": "#fac80a", "proportion": 0.75},
                                    {"hex": "#0a14b4", "proportion": 0.25}]


def _photos(folder: Path) -> Path:
    folder.mkdir()
    for name in ("chelsea.png", "astronaut.png", "coffee.png"):
        shutil.copy(SKIMAGE / name, folder / name)
    # The same photo re-encoded as JPEG: other bytes, other partition, same picture.
    Image.open(SKIMAGE / "chelsea.png").save(folder / "chelsea again.jpg", quality=92)
    (folder / "broken.jpg").write_bytes((SKIMAGE / "rocket.jpg").read_bytes()[:3000])
    return folder


ANALYSIS = ("media_file", "image_analysis")
DUPLICATES = ("media_file", "image_embeddings", "image_duplicates")


def _materialise(settings, catalog, folder, only, run_config=None):
    """The per-file assets named in `only` over `folder`'s files: what the test checks,
    not OCR, the text model and the steps for other kinds."""
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings),
                                run_config=run_config,
                                selection=per_file_selection(only))
    assert result.success
    return result


def _meta(result, asset):
    return next(m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey(asset)).event_specific_data.materialization.metadata


def test_analysis_with_the_captioner(settings, catalog, tiny_models, tmp_path, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    result = _materialise(settings, catalog, _photos(tmp_path / "p"), ANALYSIS, run_config={
        "ops": {"image_analysis": {"config": {"questions": ["Is there an animal?"]}}}})
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM image_analysis")).mappings().all()
    assert len(rows) == 4  # the truncated JPEG failed in media_file and is not analysed
    for r in rows:
        assert not r["degraded"] and r["captioner_model"] == "Salesforce/blip2-opt-2.7b"
        assert list(r["answers"]) == ["Is there an animal?"]
        assert r["scene_type"] and 0 < r["scene_confidence"] <= 1
        assert all(0.05 <= o["confidence"] <= 1 for o in r["objects"])
        assert abs(sum(c["proportion"] for c in r["dominant_colors"]) - 1) < 0.05
        assert r["processing_time_ms"] > 0
    meta = _meta(result, "image_analysis")
    assert meta["degraded"].value == 0
    assert "| file | caption | scene |" in meta["preview"].value
    assert meta["captioner_model"].value == "Salesforce/blip2-opt-2.7b"


def test_degraded_mode_when_the_captioner_is_broken(settings, catalog, tiny_models, tmp_path,
                                                    monkeypatch):
    broken = tmp_path / "models"
    shutil.copytree(tiny_models, broken, symlinks=True)
    (broken / "Salesforce--blip2-opt-2.7b" / "model.safetensors").write_bytes(b"not weights")
    settings = use_models(settings, monkeypatch, broken)
    result = _materialise(settings, catalog, _photos(tmp_path / "p"), ANALYSIS)
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT caption, degraded, degraded_reason, "
                                    "captioner_model, objects FROM image_analysis")).all()
    assert len(rows) == 4
    for r in rows:
        assert r.degraded and r.captioner_model is None
        assert r.degraded_reason.startswith("captioner unavailable")
        assert r.caption.startswith("a ") and " photo" in r.caption  # built from CLIP labels
    meta = _meta(result, "image_analysis")
    assert meta["degraded"].value == 4 and "captioner unavailable" in meta["degraded_reason"].value


def test_reencoded_copy_is_a_near_duplicate(settings, catalog, tiny_models, tmp_path,
                                            monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    _materialise(settings, catalog, _photos(tmp_path / "p"), DUPLICATES)
    out = CliRunner().invoke(main, ["duplicates", "--json"])
    assert out.exit_code == 0, out.output
    pairs = json.loads(out.stdout)
    names = [{p["path_a"].rsplit("/", 1)[-1], p["path_b"].rsplit("/", 1)[-1]} for p in pairs]
    assert {"chelsea.png", "chelsea again.jpg"} in names
    assert all(p["distance"] <= 0.01 for p in pairs)
    # similar: the re-encoded copy is the nearest other image to the original.
    sim = CliRunner().invoke(main, ["similar", str(tmp_path / "p" / "chelsea.png"), "-k", "1",
                                    "--json"])
    assert json.loads(sim.stdout)[0]["path"].endswith("chelsea again.jpg")
    cls = CliRunner().invoke(main, ["classify", str(SKIMAGE / "coffee.png"), "--labels",
                                    "cat,coffee,rocket", "--json"])
    probs = json.loads(cls.stdout)
    assert {p["label"] for p in probs} == {"cat", "coffee", "rocket"}
    assert abs(sum(p["probability"] for p in probs) - 1) < 1e-3
