"""Finding files to catalog and registering their content, shared by the sensor and the CLI.

A path becomes a *candidate* when it is a regular file (or a symlink to one inside the
allowed roots) with a final name; it is *ready* once it stopped changing. Registration
hashes it and records path -> content key in the catalog; content seen before becomes an
alias, not a second partition.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from media_assets.lib.files.store import FileStore, Registration

TEMP_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", ".swp", "~")
# `orders.json.comment` holds the user's note on `orders.json` for the schema designer: a
# sidecar, not a file to catalog.
COMMENT_SUFFIX = ".comment"


def is_temporary(name: str) -> bool:
    """Names that browsers, editors and sync tools use while a file is still being written,
    and sidecar comments."""
    return name.startswith((".", "~$")) or name.lower().endswith(TEMP_SUFFIXES + (COMMENT_SUFFIX,))


@dataclass(frozen=True)
class Candidate:
    path: str  # absolute, as found under the root (a symlink keeps its own name)
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None = None
    problem: tuple[str, str] | None = None  # (status, error) when it cannot be read at all
    target: str | None = None  # a symlink's resolved target (inside the roots), read instead


def _within(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _candidate(path: str, roots: list[str]) -> Candidate | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not os.path.lexists(target):  # wherever it pointed, there is nothing to read
            return Candidate(path, None, st.st_mtime_ns, None,
                             ("failed", f"broken symlink: its target {target} does not exist"))
        if not _within(target, roots):
            return Candidate(path, None, st.st_mtime_ns, None,
                             ("refused", f"symlink points outside the inbox (to {target}); "
                                         "copy the file in instead of linking it"))
        try:
            st = os.stat(path)
        except OSError as exc:
            why = ("symlink loop: it points back at itself" if exc.errno == errno.ELOOP
                   else "broken symlink: its target does not exist")
            return Candidate(path, None, st.st_mtime_ns, None, ("failed", why))
        if stat.S_ISDIR(st.st_mode):
            return None  # a linked folder inside the roots is walked through its real path
        if stat.S_ISREG(st.st_mode):
            return Candidate(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, target=target)
    if not stat.S_ISREG(st.st_mode):
        return None  # sockets, FIFOs, devices: never opened (a FIFO would block the reader)
    return Candidate(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# What `organize` writes at the top of its tree (lib/clusters/organize.py). A folder holding
# it is organize's links and copies of files catalogued elsewhere: walked, they came back as
# aliases and kept edited-away or deleted versions alive.
ORGANIZE_MANIFEST = ".media-assets-organize.json"


def walk(roots: Iterable[str | os.PathLike],
         skipped: dict[str, str] | None = None) -> Iterator[Candidate]:
    """Every candidate under the roots (files or folders), sorted, temporary names and
    `organize` trees skipped. `skipped`, when given, gets path -> why for what a user
    might expect catalogued and is not: organize trees, linked folders that lead out of
    the roots, FIFOs, sockets and devices."""
    roots = [os.path.abspath(r) for r in roots]
    real_roots = [os.path.realpath(r) for r in roots] + roots
    note = skipped.__setitem__ if skipped is not None else (lambda path, why: None)
    for root in roots:
        if not os.path.isdir(root):  # a file, or a link to one (a link to a folder is walked)
            cand = _candidate(root, real_roots + [os.path.dirname(root)])
            if cand:
                yield cand
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            if ORGANIZE_MANIFEST in filenames:
                dirnames[:] = []
                note(dirpath, "a tree made by `organize` (its links and copies are "
                              "catalogued where their files are)")
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in dirnames:
                path = os.path.join(dirpath, d)
                if os.path.islink(path) and not _within(
                        target := os.path.realpath(path), real_roots):
                    note(path, f"a linked folder that leads out of the inbox (to {target}); "
                               "not followed")
            for name in sorted(filenames):
                if is_temporary(name):
                    continue
                path = os.path.join(dirpath, name)
                cand = _candidate(path, real_roots)
                if cand:
                    yield cand
                elif skipped is not None and _special(path):
                    note(path, "not a regular file (a FIFO, socket or device): never read")


def _special(path: str) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode))


def open_regular(path: str):
    """Open a file for reading only if it is, at the moment of opening, a regular file:
    never follow a symlink swapped in (O_NOFOLLOW), never block on a FIFO (O_NONBLOCK), and
    check what was opened (fstat), not what a name pointed to a moment before."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """The content's SHA-256; `path` is opened with `open_regular` (a symlink is resolved
    by the caller, once, when it is checked to stay inside the inbox)."""
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_settled(c: Candidate, previous: dict[str, list[int]], settle_s: float,
               now: float | None = None) -> bool:
    """A file is ready when it did not change since the last look, or not for `settle_s`."""
    if c.problem or c.mtime_ns is None:
        return True
    if previous.get(c.path) == [c.size, c.mtime_ns]:
        return True
    now = time.time() if now is None else now
    return now - c.mtime_ns / 1e9 >= settle_s


def register(files: FileStore, candidates: Iterable[Candidate], *, max_new: int | None = None,
             on_file: Callable[[Candidate], None] | None = None) -> tuple[Registration, list[Candidate]]:
    """Hash and record candidates; returns what changed and the candidates left for later.

    Paths already recorded with the same size and mtime are not hashed again, so a re-scan
    of a large inbox costs one stat per file. At most `max_new` files are hashed per call.
    """
    result = Registration()
    candidates = list(candidates)
    known = files.known_paths(c.path for c in candidates)
    left: list[Candidate] = []
    hashed = 0
    for c in candidates:
        prev = known.get(c.path)
        # Unchanged since it was recorded, registered or not: a file that failed to register
        # (empty, unreadable) is recorded once, and is looked at again when it changes.
        if prev is not None and prev[0] == c.size and prev[1] == c.mtime_ns:
            if prev[2] == "registered":
                result.unchanged += 1
            else:
                result.known_problems += 1
            continue
        if max_new is not None and hashed >= max_new:
            left.append(c)
            continue
        hashed += 1
        if c.problem:
            files.record_problem(c.path, *c.problem, c.size, c.mtime_ns, result)
        elif c.size == 0:
            files.record_problem(c.path, "failed", "empty file (0 bytes): nothing to catalog",
                                 0, c.mtime_ns, result)
        else:
            try:
                digest = sha256_file(c.target or c.path)
            except PermissionError as exc:
                files.record_problem(c.path, "failed",
                                     f"permission denied: cannot read the file ({exc.strerror});"
                                     " give the catalog's user read access",
                                     c.size, c.mtime_ns, result)
            except OSError as exc:
                files.record_problem(c.path, "failed", f"cannot read the file: {exc}",
                                     c.size, c.mtime_ns, result)
            else:
                files.register_content(c.path, digest, c.size, c.mtime_ns, c.ctime_ns, result)
        if on_file:
            on_file(c)
    return result, left
