"""Operations in Dagster: one process per run wherever it is launched from, the nightly
backfill schedule, and `where`."""

import json
import os
from datetime import datetime

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from media_assets.cli import main
from media_assets.defs.partitions import RANGE_END, RANGE_START, media_files
from media_assets.defs.resources import resources_from_settings
from media_assets.defs.schedules import media_job_schedule
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.files.store import FileStore
from media_assets.lib.samples import solid_image


def test_every_job_runs_in_one_process():
    """The UI's asset-graph runs and backfills use `__ASSET_JOB`: it must be in-process too,
    so one model manager holds the budget and model steps never overlap."""
    from media_assets.definitions import defs

    jobs = [defs.resolve_implicit_global_asset_job_def(), defs.resolve_job_def("media_job")]
    assert {j.executor_def.name for j in jobs} == {"in_process"}
    schedule = defs.resolve_schedule_def("media_job_schedule")
    assert schedule.description and defs.resolve_sensor_def("inbox_sensor").description
    for asset in defs.resolve_all_asset_specs():
        assert asset.owners and asset.description, asset.key


def _photos(folder, n=3, green=10):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        solid_image(folder / f"p{i}.png", (i * 60, green, 10))
    return folder


@pytest.mark.slow
def test_schedule_runs_pending_and_unfinished_files(settings, catalog, tiny_models, tmp_path,
                                                    monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    out = CliRunner().invoke(main, ["ingest", "-q", str(_photos(tmp_path / "a"))])
    assert out.exit_code == 0, out.output
    # A crash after the embeddings of one file: its analysis and duplicates are left to do.
    with catalog.engine.connect() as conn:
        key = conn.execute(sa.text("SELECT key FROM media_files ORDER BY key LIMIT 1")).scalar()
        conn.execute(sa.text("DELETE FROM file_asset_results WHERE key = :k AND asset IN "
                             "('image_analysis', 'image_duplicates')"), {"k": key})
        conn.commit()
    # A file registered but never run (the sensor's run was terminated).
    new = register(FileStore(catalog.engine), walk([_photos(tmp_path / "b", 1, green=99)]))[0].new_keys
    resources = resources_from_settings(settings.from_env())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name,
                                        FileStore(catalog.engine).all_keys())
        with dg.build_schedule_context(instance=instance, resources=resources,
                                       scheduled_execution_time=datetime(2026, 1, 2)) as ctx:
            requests = list(media_job_schedule(ctx))
    by_keys = {(r.tags[RANGE_START], r.tags[RANGE_END]): r for r in requests}
    assert len(requests) == 2
    assert {k for k in by_keys} == {(new[0], new[0]), (key, key)}
    resume = by_keys[(key, key)]
    # What is left, and what reads it: the captions feed the meaning vectors.
    assert {a.to_user_string() for a in resume.asset_selection} == {
        "image_analysis", "image_duplicates", "text_embeddings"}
    assert all(r.tags["dagster/max_retries"] == "2" for r in requests)


# A run that died is Dagster's to retry (run retries), a cancelled one stays stopped:
# test_planning.py::test_a_cancelled_run_stays_stopped, test_daemon.py (kill -9).


@pytest.mark.slow
def test_where_names_the_partition_and_each_asset(settings, catalog, tiny_models, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    folder = _photos(tmp_path / "w", 1)
    # A JPEG cut short and filled with noise: an image that fails media_file.
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "JPEG")
    (folder / "garbled.jpg").write_bytes(buf.getvalue()[:300] + os.urandom(2000))
    # Exit 0: a file that cannot be catalogued is a verdict on it (README "exit codes").
    assert CliRunner().invoke(main, ["ingest", "-q", str(folder)]).exit_code == 0
    out = CliRunner().invoke(main, ["where", str(folder / "p0.png"), "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)
    assert info["status"] == "ok" and len(info["key"]) == 16
    assert {a: r["status"] for a, r in info["assets"].items()} == {
        "image_embeddings": "ok", "image_analysis": "ok", "image_duplicates": "ok",
        "image_text": "ok", "text_embeddings": "ok"}
    assert info["ui"].endswith(f"partition={info['key']}")
    # The failed file: its error, and its assets not promised as "to do".
    bad = json.loads(CliRunner().invoke(main, ["where", str(folder / "garbled.jpg"),
                                               "--json"]).stdout)
    assert bad["kind"] == "image" and bad["status"] == "failed" and bad["error"]
    assert {r["status"] for r in bad["assets"].values()} == {"not run"}
    assert "when its content changes" in bad["assets"]["image_embeddings"]["error"]
    missing = CliRunner().invoke(main, ["where", str(tmp_path / "nope.png")])
    assert missing.exit_code == 1 and "not in the catalogue" in missing.output


UI_RUN = r'''
import json, os, sys
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from media_assets.defs.partitions import media_files, range_tags

keys = json.loads(sys.argv[1])
with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions(media_files.name, keys)
    # As the UI launches an asset-graph run over a partition range: the code location's
    # implicit asset job, reconstructed from the module, with its default executor.
    job = ReconstructableRepository.for_module(
        "media_assets.definitions", "defs", os.getcwd()).get_reconstructable_job("__ASSET_JOB")
    result = dg.execute_job(job, instance, tags=range_tags(keys),
                            asset_selection=[dg.AssetKey(a) for a in (
                                "media_file", "image_embeddings", "image_analysis",
                                "transcripts", "video_frames")])
    steps = {}
    for r in instance.get_records_for_run(result.run_id).records:
        ev = r.event_log_entry
        if ev.dagster_event and ev.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            steps.setdefault(ev.step_key, {})[ev.dagster_event.event_type_value] = ev.timestamp
            steps[ev.step_key]["pid"] = ev.dagster_event.pid
    print(json.dumps({"success": result.success, "steps": steps}))
'''


@pytest.mark.slow
def test_a_run_launched_as_the_ui_launches_it_never_overlaps_model_steps(
        settings, catalog, tiny_models, tmp_path, monkeypatch):
    """The implicit asset job, reconstructed and executed as the UI's run launcher does,
    over a range of partitions: every step in one process, model steps one after another."""
    import os
    import subprocess
    import sys

    from media_assets.lib.samples import tone, write_wav

    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    folder = _photos(tmp_path / "mixed")
    write_wav(folder / "memo.wav", tone(1.0))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    script = tmp_path / "ui_run.py"  # a file: reconstructable() needs a module, not -c
    script.write_text(UI_RUN)
    out = subprocess.run([sys.executable, str(script), json.dumps(keys)],
                         env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["success"]
    steps = report["steps"]
    model_steps = [s for s in ("image_embeddings", "image_analysis", "transcripts") if s in steps]
    assert len(model_steps) == 3
    assert len({s["pid"] for s in steps.values()}) == 1  # one process for the whole run
    spans = sorted((steps[s]["STEP_START"], steps[s]["STEP_SUCCESS"]) for s in model_steps)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end  # never two model steps at once
