"""`organize DEST`: a browsable folder tree that follows the clusters' folder paths.

Links (symlinks by default, hard links or copies by option) are recorded in a manifest in
DEST. A re-run makes what is missing, removes what it made that is no longer right, and
never touches a file it did not make: a path taken by someone else's file gets the next
free name instead.

Confinement: everything inside DEST is reached from a handle on DEST, one folder at a time
(`openat` with `O_NOFOLLOW | O_DIRECTORY`), never by a path the kernel resolves. A symbolic
link, a file or another file system where a folder should be is reported and left alone,
so neither a link planted in DEST nor a manifest edited by hand can make `organize` read,
write or delete anything outside DEST. An entry is removed only when it is still the very
file it made: the same inode on the same device (and, for a symlink, the same target).
A hard link or copy that has become the only copy of its file (the source was deleted) is
never removed: it is kept, reported, and left to the user (`_only_copy`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from media_assets.lib.clusters.hierarchy import safe_part, sanitize_folder_path
from media_assets.lib.files.inbox import ORGANIZE_MANIFEST

MANIFEST = ORGANIZE_MANIFEST  # `ingest` skips a folder holding it (lib/files/inbox.walk)
UNSORTED = "Unsorted"
MODES = ("symlink", "hardlink", "copy")
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Outcome:
    created: int = 0
    kept: int = 0
    removed: int = 0
    foreign: list[str] = field(default_factory=list)  # paths left alone: not ours
    missing: list[str] = field(default_factory=list)  # catalogued, but no longer readable
    # Hard links and copies that were due to go but hold the only copy left of their file:
    # kept where they are, and no longer in the manifest (the user's file from now on).
    last_copies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # incl. links in the way, bad entries


class Blocked(Exception):
    """Something in DEST that `organize` will not pass through (a symlink, a file where a
    folder should be, another file system); the message says what and where."""


def _file_name(path: str, key: str, taken: set[str]) -> str:
    """The file's own name, made safe; on a clash in the folder, with its key."""
    name = safe_part(Path(path).name) or key[:12]
    if name.lower() not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, "." + ext) if dot and stem else (name, "")
    return f"{stem} ({key[:8]}){ext}"


def plan(members: dict[str | None, list[tuple[str, str]]]) -> dict[str, tuple[str, str]]:
    """relative path in DEST -> (key, source path)."""
    out: dict[str, tuple[str, str]] = {}
    for folder in sorted(members, key=lambda f: (f is None, f or "")):
        rel_folder = sanitize_folder_path(folder) if folder is not None else UNSORTED
        taken: set[str] = set()
        for key, source in sorted(members[folder], key=lambda m: (m[1], m[0])):
            name = _file_name(source, key, taken)
            taken.add(name.lower())
            out[f"{rel_folder}/{name}"] = (key, source)
    return out


def split_rel(rel) -> list[str] | None:
    """The parts of a path relative to DEST, or None when it is not one: absolute, empty
    parts, `.` or `..`, NUL, or the manifest itself."""
    if not isinstance(rel, str) or not rel or rel.startswith("/"):
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or "\x00" in p for p in parts):
        return None
    if parts[0] in (MANIFEST,) or parts[0].startswith(MANIFEST + "."):
        return None
    return parts


class _Tree:
    """DEST, opened once; folders inside it opened relative to it, never through a link."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dev = os.fstat(self.fd).st_dev

    def close(self) -> None:
        os.close(self.fd)

    def _what(self, dir_fd: int, name: str, where: str) -> str:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            return f"{where}: cannot open the folder ({exc.strerror}): left alone"
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                target = "?"
            return (f"{where}: a symbolic link (to {target}) is where a folder goes: left "
                    "alone, and nothing is made or removed through it")
        if not stat.S_ISDIR(st.st_mode):
            return f"{where}: a file is where a folder goes: left alone"
        return f"{where}: cannot open the folder: left alone"

    @contextmanager
    def folder(self, parts: list[str], create: bool):
        """A handle on the folder DEST/<parts>, made when `create`; raises Blocked when the
        way passes through anything but real folders on DEST's file system, and
        FileNotFoundError when it is missing and not to be made."""
        fd = os.dup(self.fd)
        try:
            for i, name in enumerate(parts):
                where = "/".join(parts[:i + 1])
                try:
                    nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass  # made meanwhile: opened below like any other
                    try:
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        raise Blocked(self._what(fd, name, where)) from exc
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EACCES, errno.EPERM):
                        raise Blocked(self._what(fd, name, where)) from exc
                    raise
                os.close(fd)
                fd = nxt
                if os.fstat(fd).st_dev != self.dev:
                    raise Blocked(f"{where}: another file system is mounted here: left alone")
            yield fd
        finally:
            os.close(fd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _is_ours(dir_fd: int, name: str, entry: dict, dev: int) -> bool:
    """Still exactly what we made: the same inode on the same device; for a symlink also
    the same target, for a file the same size. Manifests written before the device was
    recorded count as DEST's device (the walk never leaves DEST's file system). A hard
    link whose size changed is still ours while its source is that same inode: the
    source was edited in place (it used to be taken for someone else's file, and the new
    content got a second name beside it)."""
    st = _lstat(dir_fd, name)
    if st is None or st.st_ino != entry.get("ino") or st.st_dev != entry.get("dev", dev):
        return False
    if entry.get("mode") == "symlink":
        return stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dir_fd) == entry.get("source")
    if not stat.S_ISREG(st.st_mode):
        return False
    if st.st_size == entry.get("size"):
        return True
    if entry.get("mode") == "hardlink" and entry.get("source"):
        try:
            src = os.stat(entry["source"], follow_symlinks=False)
        except OSError:
            return False
        return (src.st_ino, src.st_dev) == (st.st_ino, st.st_dev)
    return False


def _alt(rel: str, key: str) -> str:
    """Where a file goes when its path is taken by a file we did not make."""
    folder, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    name = f"{stem} ({key[:8]}).{ext}" if dot and stem else f"{name} ({key[:8]})"
    return f"{folder}/{name}"


def _copy(source: str, dir_fd: int, name: str) -> os.stat_result:
    """A copy of `source` as a new file `name` in `dir_fd`: created exclusively and never
    through a link; contents, mode and times as the source's."""
    with open(source, "rb") as src:
        sst = os.fstat(src.fileno())
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
        try:
            with open(fd, "wb", closefd=False) as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            os.fchmod(fd, stat.S_IMODE(sst.st_mode))
            os.utime(fd, ns=(sst.st_atime_ns, sst.st_mtime_ns))
            return os.fstat(fd)
        except BaseException:
            made = os.fstat(fd)
            now = _lstat(dir_fd, name)
            if now is not None and (now.st_ino, now.st_dev) == (made.st_ino, made.st_dev):
                os.unlink(name, dir_fd=dir_fd)  # our own half-written file, nothing else
            raise
        finally:
            os.close(fd)


def _make(source: str, dir_fd: int, name: str, mode: str) -> dict:
    if mode == "symlink":
        os.symlink(source, name, dir_fd=dir_fd)
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    elif mode == "hardlink":
        os.link(source, name, dst_dir_fd=dir_fd)
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    else:
        st = _copy(source, dir_fd, name)
    return {"mode": mode, "source": source, "ino": st.st_ino, "dev": st.st_dev,
            "size": st.st_size}


def _read_manifest(tree: _Tree, out: Outcome) -> dict | None:
    """The manifest's entries ({} when there is none or it is unreadable), or None when
    something that is not a plain file sits at its name (then DEST is left as it is)."""
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tree.fd)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        out.errors.append(f"{MANIFEST}: not a plain file ({exc.strerror}): DEST left as it "
                          "is; remove it or choose another DEST")
        return None
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            out.errors.append(f"{MANIFEST}: not a plain file: DEST left as it is")
            return None
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    try:
        entries = json.loads(data)["entries"]
    except (KeyError, TypeError, ValueError, RecursionError):
        out.errors.append(f"{MANIFEST}: unreadable, started afresh (files it listed are "
                          "now left alone)")
        return {}
    if not isinstance(entries, dict):
        return {}
    good = {}
    for rel, entry in entries.items():
        if split_rel(rel) is None or not isinstance(entry, dict) \
                or entry.get("mode") not in MODES or not isinstance(entry.get("ino"), int):
            out.errors.append(f"manifest entry {str(rel)[:200]!r} is not a path organize "
                              "made inside DEST: ignored")
            continue
        good[rel] = entry
    return good


def _write_manifest(tree: _Tree, entries: dict) -> None:
    """Written to a new file beside it and renamed over it: the rename replaces the name
    itself, never what a link there points to."""
    tmp = f"{MANIFEST}.{uuid.uuid4().hex[:12]}.tmp"
    # ASCII with escapes: a name that is not valid UTF-8 (a lone surrogate here) reads back.
    data = json.dumps({"version": 2, "entries": entries}, indent=1).encode("ascii")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=tree.fd)
    try:
        with open(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, MANIFEST, src_dir_fd=tree.fd, dst_dir_fd=tree.fd)


def _only_copy(dir_fd: int, name: str, entry: dict) -> bool:
    """Whether DEST/<name>, a hard link or copy we made, holds the only copy left of its
    content: a hard link whose every other name is gone (link count 1: the user deleted
    or replaced the source), or a copy whose source is gone or is no longer the file it
    was copied from (its size or modification time differ; `_copy` keeps the source's).
    A symlink holds no data: removing it never loses anything."""
    st = _lstat(dir_fd, name)
    if st is None or entry.get("mode") == "symlink":
        return False
    if entry.get("mode") == "hardlink":
        return st.st_nlink <= 1
    try:
        src = os.stat(entry.get("source") or "", follow_symlinks=True)
    except OSError:
        return True
    return not (stat.S_ISREG(src.st_mode) and src.st_size == st.st_size
                and src.st_mtime_ns == st.st_mtime_ns)


def _remove(tree: _Tree, parts: list[str], entry: dict) -> str:
    """Unlink DEST/<parts> when it is still ours, then the folders it leaves empty.
    Returns "removed", "last copy" (ours, but the only copy left of the user's file:
    kept), or "" (not ours, or not there)."""
    try:
        with tree.folder(parts[:-1], create=False) as fd:
            if not _is_ours(fd, parts[-1], entry, tree.dev):
                return ""
            if _only_copy(fd, parts[-1], entry):
                return "last copy"
            os.unlink(parts[-1], dir_fd=fd)
    except (FileNotFoundError, Blocked):
        return ""
    for depth in range(len(parts) - 1, 0, -1):
        try:
            with tree.folder(parts[:depth - 1], create=False) as fd:
                os.rmdir(parts[depth - 1], dir_fd=fd)  # only ever an empty, real folder
        except OSError:
            break
    return "removed"


def organize(members: dict[str | None, list[tuple[str, str]]], dest: Path,
             mode: str = "symlink", readable=None) -> Outcome:
    """Bring DEST in line with `members` (see `plan`). `readable(key, path)` gives the path
    to link to (default: the catalogue's path as is)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    dest = Path(os.path.abspath(dest))
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file, or a link to nothing, where the folder goes
        raise Blocked(f"{dest} is not a folder (a file or a broken link is there): give "
                      "organize a folder, or a name that does not exist yet") from None
    out = Outcome()
    tree = _Tree(dest)
    try:
        old = _read_manifest(tree, out)
        if old is None:
            return out
        _apply(tree, old, plan(members), mode, readable, out)
    finally:
        tree.close()
    return out


def _apply(tree: _Tree, old: dict, wanted: dict, mode: str, readable, out: Outcome) -> None:
    entries: dict[str, dict] = {}
    satisfied: set[str] = set()  # wanted paths served by an earlier alternative name
    blocked: set[str] = set()    # reports already made, once each
    alternatives = {_alt(rel, key): rel for rel, (key, _) in wanted.items()}

    def report(msg: str) -> None:
        if msg not in blocked:
            blocked.add(msg)
            out.errors.append(msg)

    def exists(parts: list[str]) -> bool | None:
        """Whether DEST/<parts> exists (as anything, a link included); None: cannot tell
        without passing something organize will not pass."""
        try:
            with tree.folder(parts[:-1], create=False) as fd:
                return _lstat(fd, parts[-1]) is not None
        except FileNotFoundError:
            return False
        except Blocked as exc:
            report(str(exc))
            return None

    for rel, entry in old.items():
        parts = split_rel(rel)
        desired, original = wanted.get(rel), None
        if desired is None and rel in alternatives:
            original = alternatives[rel]
            if original not in old and exists(split_rel(original)):
                desired = wanted[original]
        try:
            with tree.folder(parts[:-1], create=False) as fd:
                ours = _is_ours(fd, parts[-1], entry, tree.dev)
        except FileNotFoundError:
            ours = False
        except Blocked as exc:
            report(str(exc))
            continue
        if (ours and desired is not None and entry.get("key") == desired[0]
                and entry["mode"] == mode and entry.get("path") == desired[1]):
            entries[rel] = {**entry, "dev": entry.get("dev", tree.dev)}
            out.kept += 1
            if original:
                satisfied.add(original)
            continue
        if ours:
            done = _remove(tree, parts, entry)
            if done == "removed":
                out.removed += 1
            elif done == "last copy":  # left out of the manifest: never removed later
                out.last_copies.append(rel)
    for rel, (key, source) in wanted.items():
        if rel in entries or rel in satisfied:
            continue
        parts = split_rel(rel)
        if parts is None:  # cannot happen with sanitised parts; never write out
            out.errors.append(f"{rel}: not a path inside DEST")
            continue
        there = exists(parts)
        if there is None:
            continue
        if there:
            alt = _alt(rel, key)
            out.foreign.append(rel)
            if exists(split_rel(alt)) is not False:
                continue
            rel, parts = alt, split_rel(alt)
        src = readable(key, source) if readable else source
        if not src:
            out.missing.append(f"{rel}: the file is no longer where it was catalogued")
            continue
        try:
            with tree.folder(parts[:-1], create=True) as fd:
                entries[rel] = {"key": key, "path": source,
                                **_make(os.path.abspath(src), fd, parts[-1], mode)}
            out.created += 1
        except Blocked as exc:
            report(str(exc))
        except OSError as exc:
            out.errors.append(f"{rel}: {exc.strerror or exc}")
    _write_manifest(tree, entries)
