"""Walking the inbox and registering content: temporary names, symlinks, duplicates."""

import os
import time

from media_assets.lib.files.store import FileStore
from media_assets.lib.files.inbox import Candidate, is_settled, is_temporary, register, walk
from media_assets.lib.samples import solid_image


def test_temporary_names_and_dot_folders_are_skipped(tmp_path):
    for name in ["a.jpg.part", "b.crdownload", "c.tmp", ".hidden.jpg", "ok.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".sync").mkdir()
    (tmp_path / ".sync" / "inner.jpg").write_bytes(b"x")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "nested.jpg").write_bytes(b"x")
    names = sorted(os.path.basename(c.path) for c in walk([tmp_path]))
    assert names == ["nested.jpg", "ok.jpg"]
    assert is_temporary("movie.mp4.part") and not is_temporary("part.mp4")


def test_symlinks_inside_are_files_outside_are_refused(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = solid_image(tmp_path / "outside.jpg")
    inside = solid_image(inbox / "inside.jpg")
    os.symlink(outside, inbox / "escape.jpg")
    os.symlink(inside, inbox / "alias.jpg")
    os.symlink("/nonexistent/target", inbox / "dangling.jpg")
    by_name = {os.path.basename(c.path): c for c in walk([inbox])}
    assert by_name["escape.jpg"].problem[0] == "refused"
    assert "outside the inbox" in by_name["escape.jpg"].problem[1]
    assert by_name["alias.jpg"].problem is None
    # Said as what it is (it was "points outside the inbox"), and never read.
    assert by_name["dangling.jpg"].problem == (
        "failed", "broken symlink: its target /nonexistent/target does not exist")


def test_settling():
    c = Candidate("/x", 10, int((time.time() - 0.5) * 1e9))
    assert not is_settled(c, {}, settle_s=2.0)
    assert is_settled(c, {"/x": [10, c.mtime_ns]}, settle_s=2.0)  # unchanged since last look
    assert not is_settled(c, {"/x": [5, c.mtime_ns]}, settle_s=2.0)  # still growing
    assert is_settled(Candidate("/x", 10, int((time.time() - 10) * 1e9)), {}, settle_s=2.0)


def test_register_dedups_and_skips_unchanged(catalog, tmp_path):
    a = solid_image(tmp_path / "a.png", (1, 2, 3))
    (tmp_path / "copy, with comma.png").write_bytes(a.read_bytes())
    solid_image(tmp_path / "b.png", (9, 9, 9))
    (tmp_path / "zero").write_bytes(b"")
    result, left = register(FileStore(catalog.engine), walk([tmp_path]))
    assert len(result.new_keys) == 2 and len(result.aliases) == 1 and not left
    assert [p for p, s, e in result.problems] == [str(tmp_path / "zero")]
    assert all(len(k) == 16 and "," not in k for k in result.new_keys)
    alias_key = result.aliases[0][1]
    assert FileStore(catalog.engine).paths_of(alias_key)[0] == str(a)  # primary first
    again, _ = register(FileStore(catalog.engine), walk([tmp_path]))
    assert again.new_keys == [] and again.aliases == [] and again.unchanged == 3


def test_register_cap_leaves_the_rest(catalog, tmp_path):
    for i in range(5):
        solid_image(tmp_path / f"{i}.png", (i, i, i))
    result, left = register(FileStore(catalog.engine), walk([tmp_path]), max_new=2)
    assert len(result.new_keys) == 2 and len(left) == 3
    result, left = register(FileStore(catalog.engine), walk([tmp_path]), max_new=2)
    assert len(result.new_keys) == 2 and len(left) == 1


def test_changed_content_gets_a_new_key(catalog, tmp_path):
    path = solid_image(tmp_path / "p.png", (1, 1, 1))
    first, _ = register(FileStore(catalog.engine), walk([tmp_path]))
    time.sleep(0.01)
    solid_image(path, (200, 1, 1), size=(64, 64))
    second, _ = register(FileStore(catalog.engine), walk([tmp_path]))
    assert second.new_keys and second.new_keys != first.new_keys
