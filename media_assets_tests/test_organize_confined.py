"""`organize` stays inside DEST whatever is planted there: symlinked folders, files where
folders go, a manifest edited by hand. Each trick runs against a sentinel tree outside DEST
whose every name, mode, inode, size, time and byte is checked before and after."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from media_assets.lib.clusters import organize as org

KEYS = {"cat": "a1" * 32, "dog": "b2" * 32, "misc": "c3" * 32}


def snapshot(root: Path) -> str:
    """A checksum of a whole tree, links not followed: names, types, modes, inodes, sizes,
    modification times and contents (link counts and access times excluded: reading or
    hard-linking a file is not changing it)."""
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root, followlinks=False)):
        dirs.sort()
        for name in sorted(dirs + files):
            p = Path(folder, name)
            st = p.lstat()
            h.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_ino}|{st.st_size}|"
                     f"{st.st_mtime_ns}\n".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(p.read_bytes())
    st = root.lstat()
    h.update(f"{st.st_mode}|{st.st_ino}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


@pytest.fixture
def world(tmp_path):
    """Catalogued sources, a sentinel tree outside DEST, and the members of two clusters
    plus an unsorted file."""
    src = tmp_path / "library"
    src.mkdir()
    for name in ("cat.jpg", "dog.jpg", "misc.txt"):
        (src / name).write_bytes(name.encode() * 100)
    precious = tmp_path / "precious"
    (precious / "deep").mkdir(parents=True)
    (precious / "keep.txt").write_text("keep\n")
    (precious / "deep" / "notes.md").write_text("notes\n")
    os.chmod(precious / "keep.txt", 0o640)
    members = {"Personal/Pets/Cats": [(KEYS["cat"], str(src / "cat.jpg"))],
               "Personal/Pets/Dogs": [(KEYS["dog"], str(src / "dog.jpg"))],
               None: [(KEYS["misc"], str(src / "misc.txt"))]}
    return tmp_path, precious, members


def write_manifest(dest: Path, entries: dict) -> None:
    (dest / org.MANIFEST).write_text(json.dumps({"version": 1, "entries": entries}))


def test_a_manifest_entry_through_a_symlinked_folder_deletes_nothing_outside(world):
    tmp, precious, members = world
    dest = tmp / "D"
    dest.mkdir()
    (dest / "sneaky").symlink_to(precious)
    keep = (precious / "keep.txt").stat()
    write_manifest(dest, {
        "sneaky/keep.txt": {"key": KEYS["cat"], "path": "x", "mode": mode, "source": "x",
                            "ino": keep.st_ino, "dev": keep.st_dev, "size": keep.st_size}
        for mode in ("copy",)} | {
        "sneaky/deep/notes.md": {"key": KEYS["dog"], "path": "x", "mode": "hardlink",
                                 "source": "x", "ino": (precious / "deep/notes.md").stat().st_ino,
                                 "size": 6}})
    before = snapshot(precious)
    out = org.organize(members, dest, "copy")
    assert snapshot(precious) == before
    assert (precious / "keep.txt").read_text() == "keep\n"
    assert any("sneaky" in e and "symbolic link" in e for e in out.errors), out.errors
    assert out.removed == 0 and out.created == 3
    assert (dest / "sneaky").is_symlink()  # reported and left alone


@pytest.mark.parametrize("mode", org.MODES)
def test_a_symlink_at_the_first_folder_of_a_cluster_path_is_left_alone(world, mode):
    tmp, precious, members = world
    dest = tmp / "D2"
    dest.mkdir()
    (dest / "Personal").symlink_to(precious)
    before = snapshot(precious)
    out = org.organize(members, dest, mode)
    assert snapshot(precious) == before, "organize wrote through a symlinked folder"
    assert [e for e in out.errors if e.startswith("Personal:")], out.errors
    assert len([e for e in out.errors if e.startswith("Personal:")]) == 1  # once, not per file
    # The rest of the tree is made as usual, and a re-run changes nothing outside either.
    assert out.created == 1 and (dest / "Unsorted" / "misc.txt").exists()
    again = org.organize(members, dest, mode)
    assert snapshot(precious) == before
    assert (again.created, again.kept, again.removed) == (0, 1, 0)


def test_a_symlink_deeper_in_a_cluster_path_is_left_alone(world):
    tmp, precious, members = world
    dest = tmp / "D3"
    (dest / "Personal").mkdir(parents=True)
    (dest / "Personal" / "Pets").symlink_to(precious / "deep")
    before = snapshot(precious)
    out = org.organize(members, dest, "hardlink")
    assert snapshot(precious) == before
    assert any(e.startswith("Personal/Pets:") for e in out.errors), out.errors


def test_a_file_where_a_folder_goes_is_reported_not_a_traceback(world):
    tmp, _, members = world
    dest = tmp / "D4"
    dest.mkdir()
    (dest / "Personal").write_text("my file")
    out = org.organize(members, dest, "symlink")
    assert (dest / "Personal").read_text() == "my file"
    assert any(e.startswith("Personal:") and "a file" in e for e in out.errors), out.errors


@pytest.mark.parametrize("what", ["file", "broken link"])
def test_a_dest_that_is_a_file_or_a_broken_link_is_refused_with_a_reason(world, what):
    """Before: FileExistsError and a traceback from `dest.mkdir`."""
    tmp, precious, members = world
    dest = tmp / "D9"
    if what == "file":
        dest.write_text("my file")
    else:
        dest.symlink_to(precious / "not yet")
    with pytest.raises(org.Blocked, match="is not a folder"):
        org.organize(members, dest, "symlink")
    assert not (precious / "not yet").exists()
    assert what != "file" or dest.read_text() == "my file"


def test_ingest_never_walks_an_organize_tree(world):
    """A tree made inside a scanned folder came back as aliases of the library's files
    and kept edited-away or deleted versions alive."""
    from media_assets.lib.files.inbox import walk

    tmp, _, members = world
    org.organize(members, tmp / "library" / "Tree", "copy")
    assert (tmp / "library" / "Tree" / "Personal" / "Pets" / "Cats" / "cat.jpg").is_file()
    found = sorted(Path(c.path).name for c in walk([tmp / "library"]))
    assert found == ["cat.jpg", "dog.jpg", "misc.txt"], found


def test_a_hand_edited_manifest_never_reaches_outside(world):
    tmp, precious, members = world
    dest = tmp / "D5"
    dest.mkdir()
    keep = (precious / "keep.txt").stat()
    entry = {"key": KEYS["cat"], "path": "x", "mode": "copy", "source": "x",
             "ino": keep.st_ino, "dev": keep.st_dev, "size": keep.st_size}
    link = {**entry, "mode": "symlink", "source": str(precious / "keep.txt")}
    write_manifest(dest, {
        "../precious/keep.txt": entry,
        "Personal/../../precious/keep.txt": entry,
        str(precious / "keep.txt"): entry,
        "./keep.txt": entry,
        "//keep.txt": entry,
        "keep.txt\x00": entry,
        org.MANIFEST: entry,
        "Unsorted/keep.txt": entry,     # the outside file's inode, at a path inside
        "Unsorted/gone.txt": link,      # a symlink entry that does not exist
        "odd": "not an entry",
    })
    before = snapshot(precious)
    out = org.organize(members, dest, "copy")
    assert snapshot(precious) == before
    bad = [e for e in out.errors if e.startswith("manifest entry")]
    assert len(bad) == 8, out.errors  # each unsafe path and the malformed one, reported
    assert out.created == 3 and out.removed == 0
    # The manifest now lists only what organize made.
    made = json.loads((dest / org.MANIFEST).read_text())["entries"]
    assert sorted(made) == ["Personal/Pets/Cats/cat.jpg", "Personal/Pets/Dogs/dog.jpg",
                            "Unsorted/misc.txt"]


def test_a_users_file_whose_inode_is_in_the_manifest_on_another_device_stays(world):
    tmp, _, members = world
    dest = tmp / "D6"
    (dest / "Old").mkdir(parents=True)
    mine = dest / "Old" / "mine.txt"
    mine.write_text("mine")
    st = mine.stat()
    write_manifest(dest, {"Old/mine.txt": {"key": "k", "path": "x", "mode": "copy",
                                           "source": "x", "ino": st.st_ino,
                                           "dev": st.st_dev + 1, "size": st.st_size}})
    out = org.organize(members, dest, "copy")
    assert mine.read_text() == "mine" and out.removed == 0


def test_a_symlinked_manifest_is_neither_read_nor_written_through(world):
    tmp, precious, members = world
    dest = tmp / "D7"
    dest.mkdir()
    (dest / org.MANIFEST).symlink_to(precious / "keep.txt")
    before = snapshot(precious)
    out = org.organize(members, dest, "symlink")
    assert snapshot(precious) == before
    assert out.created == 0 and any(org.MANIFEST in e for e in out.errors), out.errors
    assert (dest / org.MANIFEST).is_symlink()


def test_a_link_planted_at_a_file_path_is_not_followed(world):
    """A symlink where organize's own file goes, pointing outside: not written through,
    not removed; the file gets the next free name."""
    tmp, precious, members = world
    dest = tmp / "D8"
    (dest / "Unsorted").mkdir(parents=True)
    (dest / "Unsorted" / "misc.txt").symlink_to(precious / "keep.txt")
    before = snapshot(precious)
    out = org.organize(members, dest, "copy")
    assert snapshot(precious) == before
    assert out.foreign == ["Unsorted/misc.txt"]
    assert (dest / "Unsorted" / f"misc ({KEYS['misc'][:8]}).txt").read_bytes() == \
        b"misc.txt" * 100


@pytest.mark.parametrize("mode", org.MODES)
def test_organize_makes_keeps_and_removes_only_its_own(world, mode):
    tmp, _, members = world
    dest = tmp / f"tree-{mode}"
    out = org.organize(members, dest, mode)
    assert (out.created, out.errors) == (3, [])
    cat = dest / "Personal/Pets/Cats/cat.jpg"
    assert cat.read_bytes() == b"cat.jpg" * 100
    assert cat.is_symlink() == (mode == "symlink")
    entry = json.loads((dest / org.MANIFEST).read_text())["entries"]["Personal/Pets/Cats/cat.jpg"]
    assert entry["dev"] == cat.lstat().st_dev and entry["ino"] == cat.lstat().st_ino
    again = org.organize(members, dest, mode)
    assert (again.created, again.kept, again.removed) == (0, 3, 0)
    # The cat leaves its cluster: its file goes, and the folders it leaves empty.
    (dest / "Personal/Pets/Dogs/notes.txt").write_text("mine")
    fewer = {k: v for k, v in members.items() if k != "Personal/Pets/Cats"}
    third = org.organize(fewer, dest, mode)
    assert (third.removed, third.kept) == (1, 2)
    assert not (dest / "Personal/Pets/Cats").exists()
    assert (dest / "Personal/Pets/Dogs/notes.txt").read_text() == "mine"
    assert (tmp / "library" / "cat.jpg").read_bytes() == b"cat.jpg" * 100


def test_a_manifest_written_before_devices_were_recorded_still_works(world):
    tmp, _, members = world
    dest = tmp / "old"
    org.organize(members, dest, "symlink")
    path = dest / org.MANIFEST
    doc = json.loads(path.read_text())
    for e in doc["entries"].values():
        del e["dev"]
    path.write_text(json.dumps({"version": 1, "entries": doc["entries"]}))
    out = org.organize({}, dest, "symlink")
    assert out.removed == 3 and not out.errors
    assert sorted(p.name for p in dest.iterdir()) == [org.MANIFEST]


def test_a_hard_linked_source_edited_in_place_keeps_one_name(world):
    """Before: the edit changed the link's size too (one inode), so organize took its own
    link for a user's file and made `cat (<key>).jpg` beside it: two names, one file."""
    tmp, _, members = world
    dest = tmp / "hard"
    assert org.organize(members, dest, "hardlink").created == 3
    source = tmp / "library" / "cat.jpg"
    with open(source, "r+b") as f:  # in place: same inode, new content, new size
        f.write(b"edited " * 300)
    edited = {**members, "Personal/Pets/Cats": [("d4" * 32, str(source))]}
    out = org.organize(edited, dest, "hardlink")
    assert out.errors == [] and out.foreign == [], out
    assert sorted(p.name for p in (dest / "Personal/Pets/Cats").iterdir()) == ["cat.jpg"]
    assert (dest / "Personal/Pets/Cats/cat.jpg").samefile(source)
    # A copy edited in DEST by its user is theirs: kept, and the source gets another name.
    copies = tmp / "copies"
    org.organize(members, copies, "copy")
    (copies / "Personal/Pets/Dogs/dog.jpg").write_bytes(b"my own edit")
    again = org.organize({**members, "Personal/Pets/Dogs": [("e5" * 32, str(
        tmp / "library" / "dog.jpg"))]}, copies, "copy")
    assert again.foreign == ["Personal/Pets/Dogs/dog.jpg"], again
    assert (copies / "Personal/Pets/Dogs/dog.jpg").read_bytes() == b"my own edit"


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_a_hard_link_or_copy_that_is_the_last_copy_is_never_removed(world, mode):
    """Before: the source deleted from disk, the next run removed its hard link or copy in
    DEST, the only copy left: the photo was gone for good."""
    tmp, _, members = world
    dest = tmp / f"last-{mode}"
    assert org.organize(members, dest, mode).created == 3
    (tmp / "library" / "cat.jpg").unlink()           # the user deletes the original
    (tmp / "library" / "new.jpg").write_bytes(b"a new dog")  # and replaces another,
    os.replace(tmp / "library" / "new.jpg", tmp / "library" / "dog.jpg")  # as editors do
    fewer = {None: members[None]}
    out = org.organize(fewer, dest, mode)
    assert sorted(out.last_copies) == ["Personal/Pets/Cats/cat.jpg",
                                       "Personal/Pets/Dogs/dog.jpg"], out
    assert (out.removed, out.errors) == (0, [])
    assert (dest / "Personal/Pets/Cats/cat.jpg").read_bytes() == b"cat.jpg" * 100
    assert (dest / "Personal/Pets/Dogs/dog.jpg").read_bytes() == b"dog.jpg" * 100
    # No longer organize's: not in the manifest, and left alone by every later run.
    entries = json.loads((dest / org.MANIFEST).read_text())["entries"]
    assert "Personal/Pets/Cats/cat.jpg" not in entries
    again = org.organize({}, dest, mode)
    assert (again.removed, again.last_copies) == (1, [])  # misc.txt: its source is there
    assert (dest / "Personal/Pets/Cats/cat.jpg").read_bytes() == b"cat.jpg" * 100
