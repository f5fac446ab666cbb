"""The one run planner (defs/planning.py) as the inbox sensor, the nightly schedule and
`ingest` use it: a missing model is left out the same way everywhere, work a queued or
running run covers is never asked for twice, a cancelled run stays stopped while failed
ones are Dagster's to retry, and partitions of retired content are deleted."""

import os
import time
from datetime import datetime

import dagster as dg
import pytest

from media_assets.defs.jobs import media_job
from media_assets.defs.partitions import RANGE_END, RANGE_START, media_files, range_tags
from media_assets.defs.planning import MAX_RETRIES_TAG, RETRIES
from media_assets.defs.resources import resources_from_settings
from media_assets.defs.schedules import media_job_schedule
from media_assets.defs.sensors import inbox_sensor
from media_assets.lib.samples import solid_image, tone, write_wav
from media_assets.lib.settings import Settings


def _old(path):
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def _old_text(path, text: str):
    path.write_text(text, encoding="utf-8")
    return _old(path)


@pytest.fixture
def instance():
    # Run retries on, as in the shipped dagster.yaml.
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True}}) as inst:
        yield inst


def _job() -> dg.JobDefinition:
    """`media_job` as the code location resolves it (what the daemon launches)."""
    from media_assets.definitions import defs

    return defs.resolve_job_def(media_job.name)


def _sensor_tick(instance, cursor=None):
    """One tick with the settings in force, applying its partition requests as the daemon
    would."""
    resources = resources_from_settings(Settings.from_env())
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = inbox_sensor(ctx)
    for req in result.dynamic_partitions_requests or []:
        if isinstance(req, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        else:
            for key in req.partition_keys:
                instance.delete_dynamic_partition(req.partitions_def_name, key)
    return result


def _schedule_tick(instance):
    """A tick as the daemon evaluates it (what the UI shows, skip message included)."""
    resources = resources_from_settings(Settings.from_env())
    with dg.build_schedule_context(instance=instance, resources=resources,
                                   scheduled_execution_time=datetime(2026, 1, 2)) as ctx:
        return media_job_schedule.evaluate_tick(ctx)


def _names(request) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection}


def test_a_missing_model_is_left_out_by_the_sensor_and_the_schedule_alike(
        settings, catalog, tiny_models, instance, monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    monkeypatch.setenv("MEDIA_ASSETS_WHISPER_MODEL", str(settings.home / "no-whisper-here"))
    _old(solid_image(settings.inbox / "photo.png", (10, 200, 30)))
    _old(write_wav(settings.inbox / "memo.wav", tone(1.0)))
    first = _sensor_tick(instance)
    assert len(first.run_requests) == 1, first
    from_sensor = _names(first.run_requests[0])
    # No run asks for an asset whose required model is missing (it would fail the run).
    assert "transcripts" not in from_sensor
    assert {"media_file", "image_embeddings", "speakers"} <= from_sensor
    # The files were never run (the request was not launched): the schedule plans them
    # with the same assets.
    data = _schedule_tick(instance)
    assert data.run_requests and len(data.run_requests) == 1, data.skip_message
    assert _names(data.run_requests[0]) == from_sensor
    for request in (*first.run_requests, *data.run_requests):
        assert request.tags[MAX_RETRIES_TAG] == RETRIES  # Dagster retries what fails


def test_a_batch_starts_only_the_assets_its_files_have_work_for(
        settings, catalog, tiny_models, instance, monkeypatch):
    """A batch of photos starts no speech, video or JSON step (each empty step still costs
    its start, events and a materialisation per file); a name that says nothing (no
    suffix) leaves every asset in."""
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    for i in range(2):
        _old(solid_image(settings.inbox / f"p{i}.png", (i * 90, 20, 90)))
    photos = _names(_sensor_tick(instance).run_requests[0])
    assert {"media_file", "image_analysis", "image_embeddings", "image_duplicates",
            "image_text", "text_embeddings"} == photos
    _old(solid_image(settings.inbox / "no suffix", (1, 2, 3), fmt="PNG"))
    anything = _names(_sensor_tick(instance).run_requests[0])
    assert {"transcripts", "video_frames", "json_schemas"} <= anything and photos < anything


def test_a_document_batch_starts_the_json_steps_only_for_json_content(
        settings, catalog, tiny_models, instance, monkeypatch):
    """`.txt`, `.md` or `.json` says "JSON or text"; the first bytes say which, by the
    probe's own rule: a batch of notes starts no JSON step (bench_ingest --notes: they
    were 13 of 94 s over 1,000 notes), and a `.txt` that holds JSON starts them at once
    instead of waiting for the resume pass."""
    import json

    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    for i in range(2):
        _old_text(settings.inbox / f"note{i}.txt", f"buy milk and bread, note {i}\n")
    _old_text(settings.inbox / "readme.json", "not JSON after all: plain words\n")
    notes = _names(_sensor_tick(instance).run_requests[0])
    assert {"media_file", "text_embeddings"} <= notes
    assert not notes & {"json_schemas", "json_tables"}, notes
    _old_text(settings.inbox / "export.txt", "\ufeff  \n" + json.dumps([{"artist": "Radiohead"}]))
    exports = _names(_sensor_tick(instance).run_requests[0])
    assert {"json_schemas", "json_tables", "text_embeddings"} <= exports, exports


def test_a_note_opening_like_json_is_planned_for_both_and_a_json_name_for_json(tmp_path):
    """Only parsing tells whether a `.md` opening with "[" is JSON (the probe reads a task
    list as text), so its batch keeps both kinds' steps; a `.json` opening so is JSON."""
    from media_assets.lib.files.kinds import possible_kinds

    (tmp_path / "todo.md").write_text("[ ] water the orchids\n")
    (tmp_path / "data.json").write_text("[1, 2]")
    (tmp_path / "plain.md").write_text("water the orchids\n")
    assert possible_kinds(str(tmp_path / "todo.md"), peek=True) == {"json", "text"}
    assert possible_kinds(str(tmp_path / "data.json"), peek=True) == {"json"}
    assert possible_kinds(str(tmp_path / "plain.md"), peek=True) == {"text"}


def test_ingest_finishes_a_file_whose_name_misled_the_plan(settings, catalog, tiny_models,
                                                           monkeypatch):
    """`export.jpg` holds JSON: its batch of "photos" starts no JSON step, and the same
    `ingest` plans what it missed once the probe has told the kind."""
    import json

    import sqlalchemy as sa
    from click.testing import CliRunner

    from media_assets.cli import main

    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    solid_image(settings.inbox / "photo.png", (200, 30, 30))
    (settings.inbox / "export.jpg").write_text(json.dumps(
        [{"artist": "Radiohead", "plays": i} for i in range(5)]), encoding="utf-8")
    out = CliRunner().invoke(main, ["ingest", "-q", str(settings.inbox)])
    assert out.exit_code == 0, out.output
    with catalog.engine.connect() as conn:
        done = conn.execute(sa.text(
            "SELECT r.asset, r.status FROM file_asset_results r JOIN media_files f USING (key) "
            "WHERE f.primary_path LIKE '%export.jpg' AND f.kind = 'json'")).all()
    assert {("json_schemas", "ok"), ("json_tables", "ok"), ("text_embeddings", "ok")} <= \
        set(done), done
    hits = CliRunner().invoke(main, ["search", "Radiohead", "--json"])
    assert hits.exit_code == 0 and "export.jpg" in hits.output, hits.output


def test_the_schedule_leaves_work_in_flight_to_its_run_and_says_why(
        settings, catalog, instance):
    for i in range(3):
        _old(solid_image(settings.inbox / f"p{i}.png", (i * 70, 20, 90)))
    first = _sensor_tick(instance)
    keys = instance.get_dynamic_partitions(media_files.name)
    assert len(keys) == 3 and len(first.run_requests) == 1
    # The sensor's run was created and not started yet (QUEUED needs a code location's
    # origin; both are in flight alike).
    run = instance.create_run_for_job(_job(), tags=first.run_requests[0].tags)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    data = _schedule_tick(instance)
    assert not data.run_requests
    assert "3 files are covered by runs queued or running" in data.skip_message
    # A run in flight for one file only: the schedule asks for the other two.
    instance.report_run_canceled(run)
    instance.create_run_for_job(_job(), tags=range_tags(keys[1:2]),
                                status=dg.DagsterRunStatus.STARTED)
    data = _schedule_tick(instance)
    covered = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in data.run_requests]
    assert covered == [(keys[0], keys[0]), (keys[2], keys[2])], data.skip_message
    # While an `ingest` holds the catalogue (it makes its runs one by one), the schedule
    # waits for the next tick instead of planning the files of runs not made yet.
    from media_assets.lib.db import locks

    with locks.held(catalog.engine, locks.INGEST) as ours:
        assert ours and locks.taken(catalog.engine, locks.INGEST)
        data = _schedule_tick(instance)
        assert not data.run_requests and "ingest" in data.skip_message, data.skip_message
    assert not locks.taken(catalog.engine, locks.INGEST)
    assert len(_schedule_tick(instance).run_requests) == 2


def test_a_cancelled_run_stays_stopped(settings, catalog, instance):
    for i in range(2):
        _old(solid_image(settings.inbox / f"c{i}.png", (i * 90, 90, 20)))
    first = _sensor_tick(instance)
    assert len(first.run_requests) == 1
    run = instance.create_run_for_job(_job(), tags=first.run_requests[0].tags,
                                      asset_selection=set(first.run_requests[0].asset_selection))
    instance.report_run_canceled(run, "Terminate, from the UI")
    second = _sensor_tick(instance, cursor=first.cursor)
    assert not second.run_requests, second.run_requests
    assert second.skip_reason and "no new files" in second.skip_reason.skip_message
    # Dagster's run retries do not take cancelled runs either (only RUN_FAILURE events).
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

    assert not should_retry(instance.get_run_by_id(run.run_id), instance)
    # A failed run with the same tags is Dagster's to retry.
    failed = instance.create_run_for_job(_job(), tags=first.run_requests[0].tags,
                                         status=dg.DagsterRunStatus.STARTED)
    instance.report_run_failed(failed, "the run's worker process is gone")
    assert should_retry(instance.get_run_by_id(failed.run_id), instance)
    assert "dead_seen" not in second.cursor and "retries" not in second.cursor


def test_partitions_of_retired_content_are_deleted(settings, catalog, instance):
    photo = _old(solid_image(settings.inbox / "edited.png", (200, 10, 10)))
    _sensor_tick(instance)
    [before] = instance.get_dynamic_partitions(media_files.name)
    _old(solid_image(photo, (10, 10, 200)))  # edited in place: the old content is retired
    second = _sensor_tick(instance)
    after = instance.get_dynamic_partitions(media_files.name)
    assert before not in after and len(after) == 1, (before, after)
    assert len(second.run_requests) == 1


def test_ingest_runs_are_runs_of_the_named_jobs(api_library):
    """`ingest` runs `media_job` and `clusters_job` themselves (not an ephemeral job), so
    the UI lists them under those jobs and can re-execute them."""
    from media_assets.cli.run import instance_for, job_named
    from media_assets.lib.db import open_catalog

    settings = api_library[0]
    catalog = open_catalog(settings)
    instance = instance_for(settings, catalog)
    try:
        runs = instance.get_runs()
        jobs = {r.job_name for r in runs}
        assert "media_job" in jobs and "__ephemeral_asset_job__" not in jobs, jobs
        media = job_named("media_job", resources_from_settings(settings)).asset_layer \
            .executable_asset_keys
        for run in runs:
            if run.job_name == "media_job":  # re-executable: the job holds what it selected
                assert run.asset_selection and run.asset_selection <= media, run.run_id
                if "media_assets/failed_in_run" in run.tags:
                    continue  # a record of files that failed in a batch: by partition
                assert run.tags[RANGE_START] and run.tags[RANGE_END]
    finally:
        instance.dispose()
        catalog.dispose()


def test_settings_are_read_when_the_definitions_load_not_at_import(tmp_path):
    """Importing the wiring reads no environment (a bad setting breaks only the code
    location's load, with its message), and the UI never shows a database password: the
    code location's URLs are `dg.EnvVar`s."""
    import subprocess
    import sys

    script = """
import sys
from media_assets.defs import resources, schedules, sensors  # no settings read here
try:
    from media_assets.definitions import defs
except Exception as exc:  # Dagster wraps it with the tree of what loaded
    print("load failed:", exc, "cause:", exc.__cause__)
"""
    env = {**os.environ, "MEDIA_ASSETS_BATCH_SIZE": "many"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "load failed" in out.stdout and "MEDIA_ASSETS_BATCH_SIZE='many'" in out.stdout, (
        out.stdout)

    from dagster._core.remote_representation.external_data import RepositorySnap

    from media_assets.defs.resources import defs as resource_defs

    secret = "postgresql://media:s3cret-pw@db.example:5432/catalog"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIA_ASSETS_DATABASE_URL", secret)
        mp.setenv("MEDIA_ASSETS_DAGSTER_DATABASE_URL", secret + "_dagster")
        repo = resource_defs().get_repository_def()
    shown = repr(RepositorySnap.from_def(repo))  # what the webserver serves the UI
    assert "s3cret-pw" not in shown
    assert "MEDIA_ASSETS_DATABASE_URL" in shown


def test_a_run_that_failed_for_good_names_the_files_it_left(settings, catalog, instance):
    from media_assets.defs.sensors import media_job_failure_sensor

    _old(solid_image(settings.inbox / "left behind.png", (5, 5, 250)))
    _sensor_tick(instance)
    keys = instance.get_dynamic_partitions(media_files.name)

    def failure_tick(tags):
        run = instance.create_run_for_job(_job(), tags={**range_tags(keys), **tags},
                                          status=dg.DagsterRunStatus.STARTED)
        instance.report_run_failed(run, "the database went away")
        event = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0] \
            .event_log_entry.dagster_event
        with dg.build_run_status_sensor_context(
                sensor_name=media_job_failure_sensor.name, dagster_event=event,
                dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
                resources=resources_from_settings(Settings.from_env())) as context:
            return media_job_failure_sensor(context.for_run_failure())

    # An `ingest` run (no retries asked for) failed: its files are named.
    result = failure_tick({})
    assert "1 files of run" in result.skip_message and "left behind.png" in result.skip_message
    # A daemon run with retries left: Dagster's retry takes it, nothing to say.
    result = failure_tick({MAX_RETRIES_TAG: RETRIES})
    assert "will be retried by Dagster" in result.skip_message, result.skip_message


def test_a_run_added_by_an_ingest_that_died_before_starting_it_is_canceled():
    """An `ingest` killed between adding its run and starting it left the run NOT_STARTED,
    its files in flight for every planner for good: the dead-run check cancels it; a run
    whose ingest is alive, and a queued daemon run (no ingest pid), are left alone."""
    import socket
    import subprocess
    import sys

    from media_assets.defs.planning import HOST_TAG, PID_TAG, reap_dead_runs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    with dg.instance_for_test(overrides={"run_launcher": {
            "module": "dagster._core.launcher", "class": "DefaultRunLauncher"}}) as inst:
        job = dg.GraphDefinition("g", node_defs=[]).to_job()
        dead = inst.create_run_for_job(job, tags={HOST_TAG: here, PID_TAG: str(gone.pid)})
        alive = inst.create_run_for_job(job, tags={HOST_TAG: here, PID_TAG: str(os.getpid())})
        queued = inst.create_run_for_job(job)
        assert reap_dead_runs(inst) == [dead.run_id]
        status = {r: inst.get_run_by_id(r).status for r in (dead.run_id, alive.run_id,
                                                              queued.run_id)}
        assert status == {dead.run_id: dg.DagsterRunStatus.CANCELED,
                          alive.run_id: dg.DagsterRunStatus.NOT_STARTED,
                          queued.run_id: dg.DagsterRunStatus.NOT_STARTED}
