"""Hostile input from real bytes: one bad value or name never stops another file's work,
and a second ingest changes nothing."""

import json
import os

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image, TiffImagePlugin

from media_assets.cli import main
from media_assets.lib.files.store import FileStore
from media_assets.lib.samples import solid_image
from media_assets_tests.conftest import use_models

LONG = "a" * 45


def _json_cases(folder):
    """name -> (records expected in the table + rejects)."""
    def w(name, obj):
        (folder / name).write_text(obj if isinstance(obj, str) else json.dumps(obj))
    w("mixed_tz.json", [{"id": i, "at": "2024-01-01T10:00:00" + ("" if i % 2 else "+02:00")}
                        for i in range(20)])
    w("sys_cols.json", [{"ctid": i, "xmin": 2, "tableoid": 3, "cmax": 4} for i in range(10)])
    w("wide.json", [{f"f{j}": j for j in range(1700)} for _ in range(3)])
    w("nan_nested.json", '[{"a": {"b": NaN}}, {"a": {"b": 1}}, {"c": Infinity}]')
    w("nan_sparse.json", json.dumps([{"id": i} for i in range(50)])[:-1] +
      ', {"id": 99, "x": NaN}]')
    w("surrogate.json", '[{"name": "x\\ud800y"}, {"name": "ok"}]')
    w("nul_key.json", '[{"na\\u0000me": "x"}, {"na\\u0000me": "y"}]')
    w(f"{LONG}_one.json", [{"id": i, "k": "x"} for i in range(5)])
    w(f"{LONG}_two.json", [{"id": i, "k": "y"} for i in range(6)])
    w("orders.json", [{"id": i} for i in range(5)])
    w("orders_idx0.json", [{"id": i, "n": "x"} for i in range(7)])
    w("ü" * 40 + ".json", [{"id": 1}])
    return {"mixed_tz": 20, "sys_cols": 10, "wide": 3, "nan_nested": 3, "nan_sparse": 51,
            "surrogate": 2, "nul_key": 2, f"{LONG}_one": 5, f"{LONG}_two": 6, "orders": 5,
            "orders_idx0": 7}


def _bad_exif_jpeg(path):
    exif = Image.Exif()
    exif[0x010F] = "Ca\x00non"  # Make, with a NUL as some cameras pad it
    gps = exif.get_ifd(0x8825)
    zero = TiffImagePlugin.IFDRational(0, 0)  # no fix: real cameras write 0/0
    gps[1], gps[2], gps[3], gps[4] = "N", (zero, zero, zero), "E", (zero, zero, zero)
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path, exif=exif)
    return path


def _ingest(folder):
    out = CliRunner().invoke(main, ["ingest", "-q", "--json", str(folder)])
    return out, (json.loads(out.stdout) if out.stdout.strip().startswith("{") else None)


@pytest.mark.slow
def test_hostile_folder_catalogues_every_good_file(settings, catalog, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    expected = _json_cases(folder)
    _bad_exif_jpeg(folder / "exif_nul_gps_zero.jpg")
    solid_image(folder / "good.png")
    bad_name = os.fsencode(folder) + b"/bad\xff name.png"
    solid_image(bad_name.decode("utf-8", "surrogateescape"), (1, 2, 3))
    (folder / "empty.png").write_bytes(b"")

    first, summary = _ingest(folder)
    assert first.exit_code == 0, first.output
    with catalog.engine.connect() as conn:
        tables = dict(conn.execute(sa.text(
            "SELECT s.table_name, t.row_count + t.reject_count FROM json_schemas s "
            "JOIN json_tables t USING (key)")).all())
        exif = conn.execute(sa.text(
            "SELECT status, details FROM media_files WHERE primary_path LIKE '%exif_nul%'")).one()
        names = conn.execute(sa.text("SELECT path, status FROM catalog_entries")).all()
    for name, count in expected.items():
        assert tables.get(name) == count, (name, tables.get(name))
    assert len(tables) == len(expected) + 1  # and the üüü file, under a safe name
    assert exif.status == "ok" and exif.details["exif"]["camera"] == "Canon"
    assert "NaN or infinity stored as null" in exif.details["repaired"]
    statuses = {p.rsplit("/", 1)[-1]: s for p, s in names}
    assert statuses["bad\\xff name.png"] == "ok" and statuses["good.png"] == "ok"
    assert statuses["empty.png"] == "failed"
    # The undecodable name is opened again by its exact bytes.
    with catalog.engine.connect() as conn:
        key = conn.execute(sa.text(
            "SELECT key FROM media_paths WHERE path_bytes IS NOT NULL")).scalar()
    assert os.fsencode(FileStore(catalog.engine).paths_of(key)[0]) == bad_name

    second, again = _ingest(folder)
    assert second.exit_code == 0, second.output
    assert again["new"] == 0 and again["completed"] == 0
    assert again["by_kind"] == summary["by_kind"]


def test_a_changed_file_replaces_its_old_self(settings, catalog, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.json").write_text(json.dumps([{"id": i} for i in range(3)]))
    assert _ingest(folder)[0].exit_code == 0
    (folder / "orders.json").write_text(json.dumps([{"id": i, "total": 1.5} for i in range(8)]))
    os.utime(folder / "orders.json", (1, 1))  # a new mtime, as an editor's save gives
    assert _ingest(folder)[0].exit_code == 0
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM media_files")).scalar() == 1
        assert conn.execute(sa.text(
            "SELECT table_name, row_count FROM json_tables")).all() == [("orders", 8)]
        tables = conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'json_data'"
            " ORDER BY 1")).scalars().all()
    assert tables == ["orders", "orders__rejects"]


@pytest.mark.parametrize("value,message", [
    ("abc", "MEDIA_ASSETS_BATCH_SIZE='abc' is not an integer"),
    ("0", "must be at least 1"),
])
def test_bad_settings_are_clean_errors(settings, monkeypatch, value, message):
    monkeypatch.setenv("MEDIA_ASSETS_BATCH_SIZE", value)
    out = CliRunner().invoke(main, ["status"])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


def test_files_swapped_after_registration_are_never_opened(settings, catalog, tmp_path):
    """A FIFO (would hang a reader) or a symlink to a private file, put where a registered
    file was, is refused with its reason; a file changed in between becomes a new version."""
    import signal

    import dagster as dg

    from media_assets.defs.jobs import PER_FILE_ASSETS
    from media_assets.defs.partitions import media_files, range_tags
    from media_assets.defs.resources import resources_from_settings
    from media_assets.lib.files.inbox import register, walk

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("fifo.json", "link.json", "grown.json", "fine.json"):
        (folder / name).write_text(json.dumps([{"name": name}]))
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps([{"password": "hunter2"}]))
    keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
    (folder / "fifo.json").unlink()
    os.mkfifo(folder / "fifo.json")
    (folder / "link.json").unlink()
    os.symlink(secret, folder / "link.json")
    (folder / "grown.json").write_text(json.dumps([{"name": "grown", "more": "x" * 50}]))

    # A reader blocked on the FIFO would hang the test: fail it instead. A handler that
    # raises, so a slow machine fails this test, never kills the whole session (SIGALRM's
    # default action); generous, as a loaded 2-core machine took over 60 s here.
    def blocked(signo, frame):
        raise TimeoutError("the run hung for 300 s: a reader blocked on the FIFO?")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(300)
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(media_files.name, keys)
            result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                    resources=resources_from_settings(settings))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.success
    with catalog.engine.connect() as conn:
        rows = dict(conn.execute(sa.text(
            "SELECT primary_path, status || ': ' || coalesce(error, '') FROM media_files"
        )).all())
        loaded = conn.execute(sa.text("SELECT table_name FROM json_tables")).scalars().all()
    by_name = {p.rsplit("/", 1)[-1]: v for p, v in rows.items()}
    assert "no longer a regular file" in by_name["fifo.json"]
    assert "became a symlink" in by_name["link.json"]
    assert by_name["grown.json"].startswith("pending")  # left for the next scan
    out, _ = _ingest(folder)  # which registers what it holds now, and retires the old key
    assert out.exit_code == 0, out.output
    with catalog.engine.connect() as conn:
        grown = conn.execute(sa.text(
            "SELECT f.status, t.row_count FROM media_files f JOIN json_tables t USING (key) "
            "WHERE f.primary_path LIKE '%grown.json'")).one()
        assert grown == ("ok", 1)
        assert conn.execute(sa.text("SELECT count(*) FROM media_files WHERE primary_path "
                                    "LIKE '%grown.json'")).scalar() == 1
    assert by_name["fine.json"].startswith("ok") and loaded == ["fine"]


def test_many_channels_header_bombs_and_big_text(settings, catalog, tiny_models, tmp_path,
                                                 monkeypatch):
    """A 64-channel WAV is down-mixed and transcribed, a JPEG whose header is far larger
    than its data is truncated, text over the cap is refused: each with its reason."""
    import io
    import struct
    import wave

    import numpy as np

    settings = use_models(settings, monkeypatch, tiny_models)
    monkeypatch.setenv("MEDIA_ASSETS_MAX_TEXT_MB", "1")
    folder = tmp_path / "in"
    folder.mkdir()
    pcm = (np.random.default_rng(0).standard_normal((16000, 64)) * 500).astype("<i2")
    with wave.open(str(folder / "64 channels.wav"), "wb") as w:
        w.setnchannels(64)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 15000, 16000)
    (folder / "huge header.jpg").write_bytes(bytes(jpeg))
    (folder / "big.txt").write_text("word " * 300_000)
    (folder / "small.txt").write_text("a short note\n")

    out, summary = _ingest(folder)
    assert out.exit_code == 0, out.output
    failures = {f["path"].rsplit("/", 1)[-1]: f for f in summary["failures"]}
    assert "truncated image" in failures["huge header.jpg"]["error"]
    assert failures["big.txt"]["status"] == "refused"
    assert "MEDIA_ASSETS_MAX_TEXT_MB" in failures["big.txt"]["error"]
    assert "small.txt" not in failures
    with catalog.engine.connect() as conn:
        result = conn.execute(sa.text(
            "SELECT status, error FROM file_asset_results WHERE asset = 'transcripts'")).one()
    assert result.status == "ok", result.error


@pytest.mark.parametrize("env,args,message", [
    ({"MEDIA_ASSETS_DATABASE_URL": "not a url"}, ["status"], "is not a database URL"),
    ({"MEDIA_ASSETS_HOME": "/etc/hostname/home", "MEDIA_ASSETS_DATABASE_URL": None},
     ["db", "url"], "cannot use the data home"),
    ({}, ["search", "x", "-k", "-1"], "not in the range"),
    ({}, ["search", "x", "-k", str(2**40)], "not in the range"),
    ({}, ["search", "   "], "empty query"),
    ({}, ["search", "word " * 2000], "at most 1000"),
])
def test_bad_values_are_clean_errors(settings, monkeypatch, env, args, message):
    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k)
        else:
            monkeypatch.setenv(k, v)
    out = CliRunner().invoke(main, args)
    assert out.exit_code != 0 and message in out.output, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
