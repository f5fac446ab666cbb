"""`inbox_sensor` through `dg.build_sensor_context`, against the real catalog."""

import json
import os
import time

import dagster as dg
import pytest

from media_assets.lib.files.store import FileStore
from media_assets.defs.partitions import RANGE_END, RANGE_START, media_files
from media_assets.defs.resources import resources_from_settings
from media_assets.defs.sensors import inbox_sensor
from media_assets.lib.samples import solid_image


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _tick(instance, settings, cursor=None, **inbox_overrides):
    resources = resources_from_settings(settings)
    if inbox_overrides:
        old = resources["inbox"]
        resources["inbox"] = type(old)(**{**old.model_dump(), **inbox_overrides})
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = inbox_sensor(ctx)
    # What the daemon would do with the result: add the partitions.
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def _old(path):
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_new_files_become_partitions_in_batched_runs(instance, settings):
    for i in range(5):
        _old(solid_image(settings.inbox / f"img{i}.png", (i * 40, 10, 10)))
    result = _tick(instance, settings, batch_size=2)
    keys = instance.get_dynamic_partitions(media_files.name)
    assert len(keys) == 5
    assert len(result.run_requests) == 3  # 2 + 2 + 1
    covered = []
    for req in result.run_requests:
        start, end = req.tags[RANGE_START], req.tags[RANGE_END]
        covered += keys[keys.index(start): keys.index(end) + 1]
        assert req.run_key.startswith("media:")
    assert covered == keys
    # Nothing new: the next tick skips.
    again = _tick(instance, settings, cursor=result.cursor, batch_size=2)
    assert not again.run_requests and again.skip_reason


def test_duplicate_content_is_one_partition(instance, settings):
    a = _old(solid_image(settings.inbox / "a.png"))
    sub = settings.inbox / "sub"
    sub.mkdir()
    _old_copy = sub / "again.png"
    _old_copy.write_bytes(a.read_bytes())
    _old(_old_copy)
    _tick(instance, settings)
    assert len(instance.get_dynamic_partitions(media_files.name)) == 1


def test_half_written_files_wait(instance, settings):
    growing = settings.inbox / "movie.mp4"
    growing.write_bytes(b"\x00" * 1000)  # just now: not settled
    (settings.inbox / "download.jpg.part").write_bytes(b"x" * 100)
    first = _tick(instance, settings)
    assert not first.run_requests
    assert str(growing) in json.loads(first.cursor)["changing"]
    # It grew in between: still waiting.
    with open(growing, "ab") as fh:
        fh.write(b"\x00" * 1000)
    second = _tick(instance, settings, cursor=first.cursor)
    assert not second.run_requests
    # Unchanged since the last tick: registered now; the .part file never is.
    third = _tick(instance, settings, cursor=second.cursor)
    assert len(third.run_requests) == 1
    assert len(instance.get_dynamic_partitions(media_files.name)) == 1


def test_catch_up_is_capped_and_cursor_survives_restart(instance, settings):
    for i in range(7):
        _old(solid_image(settings.inbox / f"p{i}.png", (i, 100, 100)))
    first = _tick(instance, settings, max_new_per_tick=3)
    assert len(instance.get_dynamic_partitions(media_files.name)) == 3
    # A "restarted" daemon: a new context with the stored cursor and a fresh resource.
    second = _tick(instance, settings, cursor=first.cursor, max_new_per_tick=3)
    third = _tick(instance, settings, cursor=second.cursor, max_new_per_tick=3)
    assert len(instance.get_dynamic_partitions(media_files.name)) == 7
    run_keys = [r.run_key for res in (first, second, third) for r in res.run_requests]
    assert len(run_keys) == len(set(run_keys)) == 3


def test_refused_symlink_is_recorded_not_partitioned(instance, settings, catalog, tmp_path):
    outside = _old(solid_image(tmp_path / "private.png"))
    os.symlink(outside, settings.inbox / "link.png")
    _tick(instance, settings)
    assert instance.get_dynamic_partitions(media_files.name) == []
    failures = FileStore(catalog.engine).failures()
    assert failures[0]["status"] == "refused" and "outside the inbox" in failures[0]["error"]
