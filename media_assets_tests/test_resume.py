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
from media_assets.defs.per_file import file_kinds_of
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.files.ingestion import register_ready, settle_now
from media_assets.lib.samples import encode_video, tone
from media_assets.lib.db import open_catalog
from media_assets.lib.models.kept import kept_between_runs
from media_assets.lib.settings import Settings
from media_assets_tests.conftest import fresh_databases

pytestmark = pytest.mark.slow  # a whole scenario per test: the full suite runs it

TABLES = ["media_files", "media_paths", "image_embeddings", "image_analysis",
          "near_duplicates", "transcripts", "video_frames", "video_summaries",
          "json_schemas", "json_tables"]




def _stages() -> dict[int, set[str]]:
    """Boundary g (a run killed after its first g assets) -> the kinds of file it leaves in a
    state no earlier boundary left them in, with work still to do. A photo killed after the
    JSON steps is in the same state as one killed after the last photo step before them, so
    each kind gets a file at each of its own boundaries and no more: the distinct states are
    all covered, at a third of the files of one group per boundary."""
    def takes(i: int, kind: str) -> bool:
        return not file_kinds_of(PER_FILE_ASSETS[i]) or kind in file_kinds_of(PER_FILE_ASSETS[i])

    stages: dict[int, set[str]] = {}
    for kind in ("image", "video", "json"):
        seen = set()
        for g in range(1, len(PER_FILE_ASSETS)):
            done = frozenset(i for i in range(g) if takes(i, kind))
            if done not in seen and any(takes(i, kind) for i in range(g, len(PER_FILE_ASSETS))):
                seen.add(done)
                stages.setdefault(g, set()).add(kind)
    return stages


# One group of files per stage boundary: group g is left as a run killed after its first g
# assets leaves it, all in one catalogue, and one `ingest` must finish every group at once.
STAGES = _stages()
BOUNDARIES = sorted(STAGES)


def _picture(path, g: int, shift: int = 0) -> None:
    """A picture of its own per group (stripes of a period and colour no other group has),
    so near-duplicates pair only inside a group; `shift` makes the group's re-encode."""
    from PIL import Image

    y, x = np.mgrid[0:240, 0:320]
    stripes = (np.sin((x * np.cos(g) + y * np.sin(g)) / (3 + g)) > 0)[..., None]
    hue = np.array([(37 * g) % 256, (91 * g + 60) % 256, (151 * g + 120) % 256])
    rgb = np.where(stripes, hue, 255 - hue) + shift
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)


def _folder(root):
    folder = root / "in"
    for g in BOUNDARIES:
        group = folder / f"g{g:02d}"
        group.mkdir(parents=True)
        if "image" in STAGES[g]:
            _picture(group / "picture.png", g)
            _picture(group / "picture again.jpg", g, shift=1)  # a near-duplicate
        if "video" in STAGES[g]:
            frames = [np.full((64, 96, 3), (c + 7 * g) % 256, np.uint8) for c in (30, 200)]
            encode_video(group / "clip.mp4", frames, fps=1.0, audio=tone(2.0, 300 + 40 * g))
        if "json" in STAGES[g]:
            (group / f"orders_{g:02d}.json").write_text(json.dumps(
                [{"id": i, "total": i * 2.5 + g} for i in range(12)]))
    return folder


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
        counts["results"] = sorted(map(tuple, conn.execute(sa.text(
            "SELECT asset, status, count(*) FROM file_asset_results GROUP BY 1, 2")).all()))
        counts["json_rows"] = sum(conn.execute(sa.text(
            f'SELECT count(*) FROM json_data."{t}"')).scalar()  # names of our own tables
            for t in conn.execute(sa.text("SELECT table_name FROM json_tables")).scalars())
    return counts


def _ingest(folder):
    out = CliRunner().invoke(main, ["ingest", "-q", "--no-clusters", str(folder)])
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
    # A JSON table per group. (The tiny random CLIP finds pairs across groups too: a pair is
    # recorded when the later of its two files is compared, whichever run that is.)
    assert want["json_tables"] == sum("json" in k for k in STAGES.values()) and want["near_duplicates"] > 0, want
    return want


def test_one_more_ingest_finishes_runs_interrupted_at_every_stage(settings, baseline,
                                                                  tiny_models, tmp_path,
                                                                  monkeypatch):
    """Group g of the folder is left as a run killed after its first g assets leaves it
    (those assets' rows only), for every state each kind of file can be left in, at once; one `ingest` then finishes them
    all, and the catalogue matches an uninterrupted run's."""
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    settings = settings.from_env()
    folder = _folder(tmp_path)
    catalog = open_catalog(settings)
    instance = _instance(settings, catalog)
    resources = resources_from_settings(settings)
    # Every group registered at once, the furthest first, so the groups that get as far as
    # asset i are a prefix of the partition keys: one run per asset over that range leaves
    # each group as a run killed after its first g assets leaves it (11 one-asset runs, not
    # one run per boundary with up to 11 assets each).
    furthest_first = sorted(BOUNDARIES, reverse=True)
    keys_of: dict[int, list[str]] = {}
    for done in furthest_first:
        ready, _ = settle_now([folder / f"g{done:02d}"], 0)
        keys_of[done] = register_ready(catalog.engine, ready)[0].new_keys
        assert len(keys_of[done]) == len(list((folder / f"g{done:02d}").iterdir()))
        instance.add_dynamic_partitions(media_files.name, keys_of[done])
    with kept_between_runs():  # the partial runs load each model once, as `ingest` does
        for i, asset in enumerate(PER_FILE_ASSETS[:max(BOUNDARIES)]):
            keys = [k for done in furthest_first if done > i for k in keys_of[done]]
            partial = dg.materialize(PER_FILE_ASSETS, instance=instance,
                                     tags=range_tags(keys), resources=resources,
                                     selection=[asset.key])
            assert partial.success, asset.key
    _ingest(folder)
    assert _snapshot(catalog.engine) == baseline
    catalog.dispose()
