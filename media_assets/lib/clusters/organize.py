"""`organize DEST`: a browsable folder tree that follows the clusters' folder paths.

Links (symlinks by default, hard links or copies by option) are recorded in a manifest in
DEST. A re-run makes what is missing, removes what it made that is no longer right, and
never touches a file it did not make: a path taken by someone else's file gets the next
free name instead.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from media_assets.lib.clusters.hierarchy import safe_part, sanitize_folder_path

MANIFEST = ".media-assets-organize.json"
UNSORTED = "Unsorted"
MODES = ("symlink", "hardlink", "copy")


@dataclass
class Outcome:
    created: int = 0
    kept: int = 0
    removed: int = 0
    foreign: list[str] = field(default_factory=list)  # paths left alone: not ours
    missing: list[str] = field(default_factory=list)  # catalogued, but no longer readable
    errors: list[str] = field(default_factory=list)


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


def _load_manifest(dest: Path) -> dict:
    try:
        return json.loads((dest / MANIFEST).read_text())["entries"]
    except (FileNotFoundError, KeyError, ValueError):
        return {}


def _is_ours(path: Path, entry: dict) -> bool:
    """Still exactly what we made: the same link target, or the same inode."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if entry["mode"] == "symlink":
        return path.is_symlink() and os.readlink(path) == entry["source"]
    return not path.is_symlink() and st.st_ino == entry.get("ino") and st.st_size == entry.get("size")


def _inside(dest: Path, target: Path) -> bool:
    return os.path.commonpath([dest, os.path.abspath(target)]) == str(dest)


def _alt(rel: str, key: str) -> str:
    """Where a file goes when its path is taken by a file we did not make."""
    folder, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    name = f"{stem} ({key[:8]}).{ext}" if dot and stem else f"{name} ({key[:8]})"
    return f"{folder}/{name}"


def _make(source: str, target: Path, mode: str) -> dict:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        os.symlink(source, target)
    elif mode == "hardlink":
        os.link(source, target)
    else:
        shutil.copy2(source, target)
    st = target.lstat()
    return {"mode": mode, "source": source, "ino": st.st_ino, "size": st.st_size}


def organize(members: dict[str | None, list[tuple[str, str]]], dest: Path,
             mode: str = "symlink", readable=None) -> Outcome:
    """Bring DEST in line with `members` (see `plan`). `readable(key, path)` gives the path
    to link to (default: the catalogue's path as is)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    dest = Path(os.path.abspath(dest))
    dest.mkdir(parents=True, exist_ok=True)
    old = _load_manifest(dest)
    wanted = plan(members)
    out = Outcome()
    entries: dict[str, dict] = {}
    satisfied: set[str] = set()  # wanted paths served by an earlier alternative name
    alternatives = {_alt(rel, key): rel for rel, (key, _) in wanted.items()}
    for rel, entry in old.items():
        target = dest / rel
        desired, original = wanted.get(rel), None
        if desired is None and rel in alternatives:
            original = alternatives[rel]
            if os.path.lexists(dest / original) and original not in old:
                desired = wanted[original]
        if (desired is not None and entry.get("key") == desired[0] and entry["mode"] == mode
                and entry.get("path") == desired[1] and _is_ours(target, entry)):
            entries[rel] = entry
            out.kept += 1
            if original:
                satisfied.add(original)
            continue
        if _inside(dest, target) and _is_ours(target, entry):
            target.unlink()
            out.removed += 1
            parent = target.parent
            while parent != dest and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    for rel, (key, source) in wanted.items():
        if rel in entries or rel in satisfied:
            continue
        target = dest / rel
        if not _inside(dest, target):  # cannot happen with sanitised parts; never write out
            out.errors.append(f"{rel}: outside {dest}")
            continue
        if os.path.lexists(target):
            alt = _alt(rel, key)
            out.foreign.append(rel)
            if os.path.lexists(dest / alt):
                continue
            rel, target = alt, dest / alt
        src = readable(key, source) if readable else source
        if not src:
            out.missing.append(f"{rel}: the file is no longer where it was catalogued")
            continue
        try:
            entries[rel] = {"key": key, "path": source,
                            **_make(os.path.abspath(src), target, mode)}
            out.created += 1
        except OSError as exc:
            out.errors.append(f"{rel}: {exc}")
    tmp = dest / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "entries": entries}, indent=1, ensure_ascii=False))
    os.replace(tmp, dest / MANIFEST)
    return out
