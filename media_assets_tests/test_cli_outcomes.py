"""What `media-assets` tells its user, and with which exit status: failures listed, usage
and settings errors (2), a device that does not exist, files gone from disk, quiet output,
and Ctrl-C / SIGTERM in the middle of an ingest (130, and a re-run finishes the work)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from media_assets.cli import main
from media_assets.lib.samples import encode_video
from media_assets.lib.settings import Settings, SettingsError


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _summary(result) -> dict:
    assert result.stdout.strip().startswith("{"), result.output
    return json.loads(result.stdout)


def _search_paths(text: str) -> list[str]:
    out = _invoke("search", text, "--kind", "json", "--json")
    assert out.exit_code == 0, out.output
    return [h["path"] for h in json.loads(out.stdout)]


def test_ingest_lists_an_asset_failure_and_exits_1(settings, tmp_path, monkeypatch):
    """A JSON table that fails to load is named with its reason in the summary, and the
    exit status says so, though the file itself is catalogued (its kind row reads ok)."""
    import media_assets.defs.assets.json_docs as json_assets

    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps([{"id": i} for i in range(3)]))
    (folder / "wide.json").write_text(json.dumps([{"n": i} for i in range(3)]))
    real = json_assets.load_table

    def load_table(engine, design, records, *args, **kwargs):
        if design.table_name.startswith("wide"):  # the failure, made to happen
            raise RuntimeError("row is too big: size 9000, maximum size 8160")
        return real(engine, design, records, *args, **kwargs)

    monkeypatch.setattr(json_assets, "load_table", load_table)
    out = _invoke("ingest", "-q", "--no-clusters", str(folder))
    assert out.exit_code == 1, out.output
    assert "1 files an asset could not process" in out.output, out.output
    assert "[json_tables]" in out.output and "wide.json" in out.output, out.output
    assert "row is too big" in out.output, out.output
    assert "1 files failed an asset" in out.output, out.output

    again = _invoke("ingest", "-q", "--json", "--no-clusters", str(folder))
    assert again.exit_code == 1, again.output  # still failed: still said
    failures = _summary(again)["asset_failures"]
    assert [(f["asset"], f["path"].rsplit("/", 1)[-1]) for f in failures] == [
        ("json_tables", "wide.json")], again.output


def test_ingest_of_a_missing_folder_is_a_usage_error_exit_2(settings, tmp_path):
    out = _invoke("ingest", str(tmp_path / "nope"))
    assert out.exit_code == 2 and "no such file or folder" in out.output, out.output


def test_ingest_says_what_it_skipped_and_why(settings, tmp_path):
    """Before: an organize tree, a linked folder leading out of the folder and a FIFO were
    passed over in silence ("0 files under ..."), a user's photos/ inside the tree too."""
    from media_assets.lib.clusters.organize import MANIFEST

    folder, outside = tmp_path / "lib", tmp_path / "elsewhere"
    (folder / "Tree" / "photos").mkdir(parents=True)
    (folder / "Tree" / MANIFEST).write_text('{"version": 1, "entries": {}}')
    (folder / "Tree" / "photos" / "green.txt").write_text("a note in the tree")
    outside.mkdir()
    (outside / "far.txt").write_text("far away")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    out = _invoke("ingest", "-q", "--json", "--no-clusters", str(folder))
    assert out.exit_code == 0, out.output
    why = {Path(s["path"]).name: s["why"] for s in _summary(out)["skipped"]}
    assert set(why) == {"Tree", "linked", "pipe"}, why
    assert "organize" in why["Tree"] and "leads out of the inbox" in why["linked"] \
        and "FIFO" in why["pipe"], why
    text = _invoke("ingest", "-q", "--no-clusters", str(folder))
    assert "3 skipped, not catalogued:" in text.output and "Tree: a tree made by `organize`" \
        in text.output, text.output
    # `where` shows a name as the listings do: a terminal escape in it is not sent raw.
    odd = folder / "bell\x1b[31mred.txt"
    odd.write_text("a note with an odd name")
    assert _invoke("ingest", "-q", "--no-clusters", str(folder)).exit_code == 0
    where = _invoke("where", str(odd))
    assert where.exit_code == 0 and "bell\\u001b[31mred.txt" in where.output \
        and "\x1b" not in where.output, repr(where.output)


def test_samples_never_overwrite_a_users_files(tmp_path):
    """Before: `samples` into a folder holding the user's red.jpg replaced it with the
    sample's, and `samples` given a file ended in a traceback."""
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "red.jpg").write_bytes(b"my precious photo")
    for target in (mine, mine / "red.jpg"):
        out = _invoke("samples", str(target))
        assert out.exit_code == 2 and "not a new or empty folder" in out.output, out.output
        assert out.exception is None or isinstance(out.exception, SystemExit)
    assert [p.name for p in mine.iterdir()] == ["red.jpg"]
    assert (mine / "red.jpg").read_bytes() == b"my precious photo"


@pytest.mark.parametrize("command", [["search", "cat"], ["doctor"], ["status"]])
def test_an_unknown_device_is_a_settings_error_exit_2(settings, monkeypatch, command):
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", "tpu")
    out = _invoke(*command)
    assert out.exit_code == 2, out.output
    assert "MEDIA_ASSETS_DEVICE='tpu' is not a device" in out.output, out.output
    assert "Traceback" not in out.output, out.output


@pytest.mark.parametrize("value,device", [("", "auto"), ("cpu", "cpu"), ("CUDA", "cuda"),
                                          (" cuda:1 ", "cuda:1"), ("auto", "auto")])
def test_device_setting_takes_auto_cpu_cuda_and_cuda_n(monkeypatch, value, device):
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", value)
    assert Settings.from_env().models.device == device


@pytest.mark.parametrize("value", ["tpu", "cuda:", "cuda:x", "gpu0", "mps"])
def test_device_setting_refuses_what_is_not_a_device(monkeypatch, value):
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", value)
    with pytest.raises(SettingsError, match="MEDIA_ASSETS_DEVICE"):
        Settings.from_env()


def test_doctor_fails_when_the_cuda_device_asked_for_is_absent(settings, monkeypatch):
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", f"cuda:{present}")  # one past the last GPU
    out = _invoke("doctor")
    assert out.exit_code == 1, out.output
    assert f"device cuda:{present} is not available" in out.output, out.output


@pytest.mark.parametrize("command", [["ingest", "-q"], ["search", "cat"]])
def test_a_gpu_this_machine_lacks_stops_before_any_work_exit_2(settings, monkeypatch,
                                                                 command):
    """Before: with no GPU, MEDIA_ASSETS_DEVICE=cuda let ingest start and fail each model
    step with CUDA's "driver version is insufficient" (118 lines), never naming the
    setting."""
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", f"cuda:{present}")  # one past the last GPU
    (settings.inbox / "note.txt").write_text("a note that must stay untouched")
    out = _invoke(*command, *([str(settings.inbox)] if command[0] == "ingest" else []))
    assert out.exit_code == 2, out.output
    assert f"MEDIA_ASSETS_DEVICE=cuda:{present} but" in out.output, out.output
    assert "Traceback" not in out.output, out.output
    monkeypatch.setenv("MEDIA_ASSETS_DEVICE", "cpu")
    assert json.loads(_invoke("ingest", "-q", "--json", "--no-clusters", str(
        settings.inbox)).stdout)["new"] == 1  # nothing was registered by the refused one


def test_ingest_says_which_json_tables_rejected_records(settings):
    """Before: 17 % of an NDJSON log's records (a type that changed after the 2,000-line
    sample) were rejected, and `ingest` said "json 1 ok", exit 0, and nothing else; only
    `status` told."""
    lines = [json.dumps({"n": i, "count": i}) for i in range(2050)]
    lines += [json.dumps({"n": i, "count": "many"}) for i in range(2050, 2100)]
    (settings.inbox / "events.ndjson").write_text("\n".join(lines) + "\n")
    out = _invoke("ingest", "--no-clusters", str(settings.inbox))
    assert out.exit_code == 0, out.output
    assert "json_data.events: 50 of 2,100 records rejected, see json_data.events__rejects" \
        in out.output, out.output
    again = json.loads(_invoke("ingest", "-q", "--json", str(settings.inbox)).stdout)
    assert [(r["table"], r["rows"], r["rejected"]) for r in again["json_rejects"]] == [
        ("json_data.events", 2050, 50)], again["json_rejects"]
    # `where` names the file's table (it named none: a user had to guess it from `status`).
    where = _invoke("where", str(settings.inbox / "events.ndjson"))
    assert where.exit_code == 0 and "table: json_data.events (" in where.output \
        and "50 of 2,100 records rejected, in json_data.events__rejects" in where.output, \
        where.output


def test_an_object_of_records_keyed_by_id_loads_a_row_per_record(settings, catalog):
    """Before: one JSONB row, and every user id listed as a field."""
    users = {f"u{i:04d}": {"name": f"User {i}", "email": f"user{i}@example.com"}
             for i in range(40)}
    users["u0007"]["nick"] = "Zebediah"
    (settings.inbox / "users_by_id.json").write_text(json.dumps(users))
    out = _invoke("ingest", "-q", "--no-clusters", str(settings.inbox))
    assert out.exit_code == 0, out.output
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text(
            'SELECT id, name FROM json_data.users_by_id ORDER BY id')).all()
    assert len(rows) == 40 and tuple(rows[7]) == ("u0007", "User 7"), rows[:8]
    found = _invoke("search", "Zebediah", "-k", "1")
    assert "users_by_id.json" in found.output, found.output


@pytest.mark.parametrize("query,says", [("caf\udce9", "not valid UTF-8"),
                                        ("\u200b \u200e", "empty query"),
                                        ("\ufffd", "not valid UTF-8")])
def test_a_query_a_terminal_mangled_or_of_invisible_characters_is_refused(settings, query,
                                                                          says):
    """Before: a Latin-1 terminal's query crashed inside the text model (exit 1 and a
    traceback), and a zero-width space searched for filler."""
    out = _invoke("search", query)
    assert out.exit_code == 2 and says in out.output, out.output
    assert "Traceback" not in out.output, out.output


def test_a_deleted_file_leaves_search_and_comes_back_without_being_redone(
        settings, catalog, tmp_path):
    folder, away = tmp_path / "lib", tmp_path / "away"
    folder.mkdir()
    away.mkdir()
    (folder / "zebra_stripes.json").write_text(json.dumps([{"stripes": i} for i in range(4)]))
    (folder / "keep.json").write_text(json.dumps([{"kept": 1}]))
    (folder / "keep_copy.json").write_text(json.dumps([{"kept": 1}]))  # an alias
    first = _invoke("ingest", "-q", "--no-clusters", str(folder))
    assert first.exit_code == 0, first.output
    zebra = str(folder / "zebra_stripes.json")
    assert zebra in _search_paths("zebra")
    # Filters that leave nothing say so (it said to run `ingest` first, on a full catalogue).
    for flags in (["--kind", "video"], ["--before", "2000-01-01"], ["--under", str(away)]):
        none = _invoke("search", "zebra", *flags)
        assert none.exit_code == 0 and "no file passes these filters" in none.output, \
            (flags, none.output)
    with catalog.engine.connect() as conn:
        done_before = conn.execute(sa.text(
            "SELECT key, asset, updated_at FROM file_asset_results ORDER BY 1, 2")).all()

    # Deleted (here: moved off the scanned folder, keeping its time) and re-scanned.
    os.rename(zebra, away / "zebra_stripes.json")
    os.remove(folder / "keep.json")  # its copy still holds the content
    gone = _invoke("ingest", "-q", "--json", "--no-clusters", str(folder))
    assert gone.exit_code == 0, gone.output
    assert sorted(_summary(gone)["missing"]) == sorted([zebra, str(folder / "keep.json")])
    assert zebra not in _search_paths("zebra")
    assert _search_paths("kept keep") == [str(folder / "keep_copy.json")]
    status = _invoke("status")
    assert "2 files gone from disk" in status.output and "zebra_stripes.json" in status.output, \
        status.output
    where = _invoke("where", zebra)
    assert where.exit_code == 0 and "status missing" in where.output, where.output

    # Back as it was (a disk mounted again): catalogued again, nothing redone.
    os.rename(away / "zebra_stripes.json", zebra)
    back = _invoke("ingest", "-q", "--json", "--no-clusters", str(folder))
    assert back.exit_code == 0, back.output
    summary = _summary(back)
    assert summary["back"] == 1 and summary["new"] == 0 and summary["missing"] == [], back.output
    assert zebra in _search_paths("zebra")
    with catalog.engine.connect() as conn:
        done_after = conn.execute(sa.text(
            "SELECT key, asset, updated_at FROM file_asset_results ORDER BY 1, 2")).all()
    assert done_after == done_before


@pytest.mark.slow  # two interpreters importing transformers: 17 s on 2 cores
def test_runs_started_by_dev_print_no_progress_bars(settings, tiny_models, monkeypatch):
    """Every process `dev` starts gets `dev_env`: a run that loads a model through
    transformers writes no "Loading weights" bar into dev's output (one per run before)."""
    from media_assets.cli.serve import dev_env

    load = ("from transformers import AutoModelForCausalLM; "
            f"AutoModelForCausalLM.from_pretrained({str(tiny_models / 'tiny-phi3')!r})")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    plain = subprocess.run([sys.executable, "-c", load], env=dict(os.environ),
                           capture_output=True, text=True, timeout=120)
    assert "Loading weights" in plain.stderr  # what a run printed before
    ran = subprocess.run([sys.executable, "-c", load], env=dev_env(settings),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Loading weights" not in ran.stderr and "XDG_RUNTIME_DIR" not in ran.stderr

def _videos(folder, n: int, seconds: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        frames = [np.full((96, 128, 3), rng.integers(0, 255, 3), np.uint8)
                  for _ in range(seconds)]
        encode_video(folder / f"v{i}.mp4", frames, fps=1.0)


def _videos_done(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(DISTINCT key) FROM video_frames")).scalar()


def _runs(dagster) -> list[str]:
    """Statuses of the Dagster runs so far, oldest first."""
    with dagster.connect() as conn:
        return list(conn.execute(sa.text("SELECT status FROM runs ORDER BY id")).scalars())


def _holders(pipe) -> list:
    """The processes that hold the other end of our `pipe` open (its writers)."""
    import psutil

    want = f"pipe:[{os.fstat(pipe.fileno()).st_ino}]"
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            if proc.pid != os.getpid() and any(
                    os.readlink(f"/proc/{proc.pid}/fd/{fd}") == want for fd in fds):
                found.append(proc)
    return found


def _stop_when(cmd, env, ready, signo):
    """Start an ingest in a session of its own, as a shell starts a job, and send `signo`
    once `ready()`; returns (exit status, seconds from
    the signal to the exit, stderr). A process left holding the ingest's stderr after it
    exited (a caller piping its output would wait for ever) fails here, naming it."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(proc.stderr), daemon=True)
    try:
        reader.start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest ended before it could be stopped: " + \
            "".join(chunks)[-2000:]
        # Ctrl-C as a terminal sends it, to the whole process group (the ingest and every
        # child, Dagster's output mirrors included); SIGTERM as `kill` sends it.
        (os.killpg if signo == signal.SIGINT else os.kill)(proc.pid, signo)
        sent = time.monotonic()
        proc.wait(120)
        seconds = time.monotonic() - sent
        reader.join(15)
        left = [] if not reader.is_alive() else [p.cmdline() for p in _holders(proc.stderr)]
        assert not reader.is_alive(), f"the ingest exited but its stderr stays open: {left}"
        return proc.returncode, seconds, "".join(chunks)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        if reader.is_alive():
            for holder in _holders(proc.stderr):
                with contextlib.suppress(Exception):
                    holder.kill()


def test_a_run_marked_canceled_stays_canceled_whatever_its_thread_writes_after():
    # The race CI once lost: SIGTERM right after a run was created, its canceller wrote
    # RUN_CANCELED, then the run's own thread (alive until the process exits) wrote RUN_START
    # and the run showed STARTED for ever. Here the two writes are ordered the losing way.
    import dagster as dg

    from media_assets.cli.run import Interrupts
    from media_assets.defs.planning import HOST_TAG, PID_TAG

    instance = dg.DagsterInstance.ephemeral()
    interrupts = Interrupts()
    interrupts.instance = instance
    run = instance.create_run_for_job(
        dg.GraphDefinition("g", node_defs=[]).to_job(),
        tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())})

    canceller = threading.Thread(target=interrupts._cancel_runs, args=("SIGTERM",))
    canceller.start()
    canceller.join(10)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED

    # As the run's thread would go on before the process exits: a status event, and a
    # next run (execute_in_process adds it through the run storage).
    def status_event():
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name="g"), run.run_id)

    def next_run():
        instance.create_run_for_job(dg.GraphDefinition("g", node_defs=[]).to_job())

    late = [threading.Thread(target=f, daemon=True) for f in (status_event, next_run)]
    for thread in late:
        thread.start()
    for thread in late:
        thread.join(1)
    assert all(t.is_alive() for t in late), "the run's thread wrote past the stop"
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    assert len(instance.get_runs()) == 1


@pytest.mark.slow
def test_ctrl_c_stops_after_the_current_file_and_sigterm_at_once_then_a_rerun_finishes(
        settings, catalog, tiny_models, tmp_path, monkeypatch):
    # Eight videos, each long enough (10 frames through CLIP and the captioner) that the Ctrl-C,
    # sent once the first is in, lands before the last one starts: with 2-frame videos the
    # whole batch could finish in the signal's 50 ms polling gap.
    n = 8
    _videos(tmp_path / "lib", n, seconds=20)
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    env = dict(os.environ)
    args = ["ingest", "-q", "--no-clusters", str(tmp_path / "lib")]
    cmd = [sys.executable, "-m", "media_assets.cli", *args]
    engine, dagster = catalog.engine, sa.create_engine(settings.dagster_database_url)

    # Ctrl-C once the first video is in: the run ends after that file, exit 130.
    code, _, err = _stop_when(cmd, env, lambda: _videos_done(engine) >= 1, signal.SIGINT)
    assert code == 130, err[-3000:]
    # `-q` in a real process: no progress bar, not even the captioner's own "Loading
    # weights" (it loads through transformers), and no Dagster warning.
    for noise in ("Loading weights", "%|", "it/s]", "PreviewWarning", "BetaWarning",
                  "SupersessionWarning"):
        assert noise not in err, err[-3000:]
    assert "stopping after the current file" in err and "Traceback" not in err, err[-3000:]
    after_ctrl_c = _videos_done(engine)
    assert 1 <= after_ctrl_c < n, err[-3000:]
    assert _runs(dagster)[-1] == "SUCCESS", err[-3000:]  # it ended its run, not killed it

    # SIGTERM while the next run is under way: out at once, that run marked canceled.
    runs_before = len(_runs(dagster))
    code, seconds, err = _stop_when(cmd, env, lambda: len(_runs(dagster)) > runs_before,
                                    signal.SIGTERM)
    assert code == 130, err[-3000:]
    assert seconds < 10, f"SIGTERM took {seconds:.1f} s to stop the ingest\n{err[-3000:]}"
    assert "stopping now (SIGTERM)" in err, err[-3000:]
    assert _runs(dagster)[-1] == "CANCELED", err[-3000:]
    dagster.dispose()

    again = CliRunner().invoke(main, args)  # the re-run finishes what is left
    assert again.exit_code == 0, again.output
    with engine.connect() as conn:
        assert _videos_done(engine) == n
        assert conn.execute(sa.text(
            "SELECT count(DISTINCT key) FROM image_embeddings WHERE frame_ms >= 0")).scalar() == n
        assert conn.execute(sa.text(  # one result per file and asset: nothing twice
            "SELECT count(*) FROM (SELECT key, asset FROM file_asset_results "
            "GROUP BY key, asset HAVING count(*) > 1) d")).scalar() == 0
        assert conn.execute(sa.text(  # every frame once
            "SELECT count(*) FROM (SELECT key, frame_ms FROM video_frames "
            "GROUP BY key, frame_ms HAVING count(*) > 1) d")).scalar() == 0
        assert conn.execute(sa.text(
            "SELECT count(*) FROM file_asset_results WHERE status = 'failed'")).scalar() == 0


def test_status_tells_which_catalogued_files_have_work_left(settings, catalog):
    """Before: after a stopped ingest (files probed, assets not yet run) `status` counted
    every file ok and said nothing about the work left."""
    (settings.inbox / "orders.json").write_text(json.dumps([{"order": i} for i in range(5)]))
    (settings.inbox / "notes.txt").write_text("buy tomatoes and call the plumber\n")
    out = _invoke("ingest", "-q", "--no-clusters", str(settings.inbox))
    assert out.exit_code == 0, out.output
    assert "work left" not in _invoke("status").output
    # What a stop between the probe and the JSON assets leaves: no results for them.
    with catalog.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM file_asset_results WHERE asset IN "
                             "('json_schemas', 'json_tables')"))
    told = _invoke("status")
    assert "1 catalogued files with work left" in told.output, told.output
    assert "json_schemas       1 to do" in told.output and "json_tables        1 to do" \
        in told.output, told.output
    # And what reads their output, which a resume runs again (the JSON's search text).
    assert json.loads(_invoke("status", "--json").stdout)["unfinished"] == {
        "json_schemas": 1, "json_tables": 1, "text_embeddings": 1}
    again = _invoke("ingest", "-q", "--no-clusters", str(settings.inbox))
    assert again.exit_code == 0, again.output
    assert json.loads(_invoke("status", "--json").stdout)["unfinished_files"] == 0


def test_the_fields_beside_a_wrapped_record_list_are_searchable(settings):
    """An export of the shape {"exported_by": ..., "items": [...]} loads its items as rows;
    the fields beside them (who exported it, the account's name) were found by no search."""
    doc = {"exported_by": "Marguerite Okonkwo", "account": {"team": "Lighthouse Keepers"},
           "items": [{"sku": f"A-{i}", "count": i} for i in range(12)]}
    (settings.inbox / "inventory_export.json").write_text(json.dumps(doc))
    out = _invoke("ingest", "-q", "--no-clusters", str(settings.inbox))
    assert out.exit_code == 0, out.output
    for words in ("Marguerite Okonkwo", "Lighthouse Keepers"):
        found = _invoke("search", words, "-k", "1", "--kind", "json")
        assert "inventory_export.json" in found.output, (words, found.output)


@pytest.mark.slow  # two ingests in processes of their own (about 30 s on 2 cores)
def test_two_ingests_of_one_folder_at_once_do_each_file_once(settings, catalog, tiny_models,
                                                              tmp_path, monkeypatch):
    """Before: the second ingest planned before the first had made its runs, and every file
    was materialised twice (two runs over the same partitions). Now one waits for the
    other, then finds the work done."""
    from media_assets.lib.db import locks

    folder = tmp_path / "notes"
    folder.mkdir()
    for i, text in enumerate(["call the dentist on monday", "buy milk and bread",
                              "the car needs new tyres"]):
        (folder / f"note {i}.txt").write_text(text)
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    cmd = [sys.executable, "-m", "media_assets.cli", "ingest", "-q", "--no-clusters",
           str(folder)]
    holder = catalog.engine.connect()  # held here, so both start while it is taken
    holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": locks.INGEST})
    holder.commit()
    procs, errs = [], []
    try:
        for _ in range(2):
            proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            chunks: list[str] = []
            threading.Thread(target=lambda p=proc, c=chunks: c.extend(p.stderr),
                             daemon=True).start()
            procs.append(proc)
            errs.append(chunks)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all(
                "waiting for it to finish" in "".join(c) for c in errs):
            assert all(p.poll() is None for p in procs), ["".join(c)[-2000:] for c in errs]
            time.sleep(0.1)
        assert all("waiting for it to finish" in "".join(c) for c in errs), errs
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": locks.INGEST})
        holder.close()
        for proc in procs:
            try:
                proc.wait(240)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert [p.returncode for p in procs] == [0, 0], ["".join(c)[-2000:] for c in errs]
    dagster = sa.create_engine(settings.dagster_database_url)
    with dagster.connect() as conn:
        counts = conn.execute(sa.text(
            "SELECT asset_key, partition, count(*) FROM event_logs WHERE dagster_event_type "
            "= 'ASSET_MATERIALIZATION' AND asset_key IN ('[\"media_file\"]', "
            "'[\"text_embeddings\"]') GROUP BY 1, 2")).all()
    dagster.dispose()
    assert len(counts) == 6 and {c[2] for c in counts} == {1}, counts
