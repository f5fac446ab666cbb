"""Queries on the file catalog: registering paths, recording probe results, reporting."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from media_assets.lib.db.values import json_text, safe_text


@dataclass(frozen=True)
class FileRow:
    key: str
    sha256: str
    size_bytes: int
    primary_path: str
    kind: str
    status: str
    error: str | None
    mime_type: str | None
    details: dict


@dataclass
class Registration:
    """What one registration pass changed."""

    new_keys: list[str] = field(default_factory=list)  # content never seen before, in order
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (path, key) of known content
    unchanged: int = 0
    known_problems: int = 0  # refused or unreadable before, and unchanged since: not redone
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, status, error)

    @property
    def keys(self) -> list[str]:
        return self.new_keys + [k for _, k in self.aliases]


CHANGED = "the file changed after registration"


def display_path(path: str) -> str:
    """A path as PostgreSQL text and as people read it, one to one with its bytes: the
    path itself when it is UTF-8 without a backslash (nearly always); otherwise with each
    backslash doubled and each byte that is not UTF-8 as a \\xNN escape. Every backslash
    of an escaped form starts an escape, so `x\\xff` (four characters) and `x` + byte
    0xFF never share a form, and a plain form (no backslash) never equals an escaped one.
    The exact bytes of an escaped form are kept in `media_paths.path_bytes`; sql/011
    brought earlier catalogues to this form."""
    if "\\" not in path:
        if path.isascii():
            return path
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _retire(conn, key: str, path: str) -> None:
    """`path` no longer holds content `key`: when no other path does, the content and every
    row derived from it (vectors, captions, transcripts, JSON tables) are deleted, so search
    never returns a file that is not on disk; otherwise another path becomes primary. A
    path marked missing still holds its content (the file may come back; search leaves
    the content out meanwhile)."""
    others = conn.execute(sa.text(
        "SELECT path FROM media_paths WHERE key = :k AND status IN ('registered', 'missing') "
        "ORDER BY status = 'registered' DESC, first_seen_at LIMIT 1"), {"k": key}).scalar()
    if others is None:
        conn.execute(sa.text("DELETE FROM media_files WHERE key = :k"), {"k": key})
    else:
        conn.execute(sa.text("UPDATE media_files SET primary_path = :p WHERE key = :k "
                             "AND primary_path = :old"), {"p": others, "k": key, "old": path})


def _ts(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


class FileStore:
    """The `media_files` / `media_paths` tables."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # -- registration -----------------------------------------------------------------
    def known_paths(self, paths: Iterable[str]) -> dict[str, tuple[int | None, int | None, str]]:
        """path -> (size, mtime_ns, status) for the paths already recorded."""
        by_text = {display_path(p): p for p in paths}
        if not by_text:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT path, size_bytes, mtime_ns, status FROM media_paths "
                "WHERE path = ANY(:p)"), {"p": list(by_text)}).all()
        return {by_text[r.path]: (r.size_bytes, r.mtime_ns, r.status) for r in rows}

    def register_content(self, path: str, sha256: str, size: int, mtime_ns: int,
                         ctime_ns: int | None, result: Registration) -> str:
        """Record that `path` holds content `sha256`; returns its partition key."""
        key = sha256[:16]
        with self.engine.begin() as conn:
            inserted = conn.execute(sa.text(
                "INSERT INTO media_files (key, sha256, size_bytes, primary_path, "
                " file_modified_at, file_changed_at) VALUES (:k, :s, :n, :p, :m, :c) "
                "ON CONFLICT (key) DO NOTHING RETURNING key"),
                {"k": key, "s": sha256, "n": size, "p": display_path(path), "m": _ts(mtime_ns),
                 "c": _ts(ctime_ns)}).scalar()
            primary = None
            if inserted is None:
                stored, primary = conn.execute(sa.text(
                    "SELECT sha256, primary_path FROM media_files WHERE key = :k"),
                    {"k": key}).one()
                if stored != sha256:  # 64-bit prefix collision: astronomically rare, never silent
                    raise ValueError(f"partition key collision for {key}: {stored} vs {sha256}")
            self._upsert_path(conn, path, key, size, mtime_ns, "registered", None)
        if inserted:
            result.new_keys.append(key)
        elif primary == display_path(path):  # another ingest registered this very path
            result.unchanged += 1
        else:
            result.aliases.append((path, key))
        return key

    def record_problem(self, path: str, status: str, error: str, size: int | None,
                       mtime_ns: int | None, result: Registration) -> None:
        """A path that cannot become a partition (refused symlink, unreadable, empty)."""
        with self.engine.begin() as conn:
            self._upsert_path(conn, path, None, size, mtime_ns, status, error)
        result.problems.append((path, status, error))

    @staticmethod
    def _upsert_path(conn, path, key, size, mtime_ns, status, error) -> None:
        text = display_path(path)
        before = conn.execute(sa.text("SELECT key FROM media_paths WHERE path = :p FOR UPDATE"),
                              {"p": text}).scalar()
        conn.execute(sa.text(
            "INSERT INTO media_paths (path, path_bytes, key, size_bytes, mtime_ns, status, error)"
            " VALUES (:p, :b, :k, :n, :m, :s, :e) ON CONFLICT (path) DO UPDATE SET "
            " key = EXCLUDED.key, size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns,"
            " status = EXCLUDED.status, error = EXCLUDED.error, last_seen_at = now()"),
            {"p": text, "b": os.fsencode(path) if text != path else None, "k": key,
             "n": size, "m": mtime_ns, "s": status, "e": safe_text(error) if error else None})
        if before is not None and before != key:
            _retire(conn, before, text)

    # -- per-file results -------------------------------------------------------------
    def get(self, keys: Sequence[str]) -> dict[str, FileRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT key, sha256, size_bytes, primary_path, kind, status, error, mime_type, "
                "details FROM media_files WHERE key = ANY(:k)"), {"k": list(keys)}).all()
        return {r.key: FileRow(**r._mapping) for r in rows}

    def _registered(self, key: str) -> list[tuple[str, int | None]]:
        """(path as the file system names it, registered mtime) of a content key's
        registered paths, the primary one first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT p.path, p.path_bytes, p.mtime_ns FROM media_paths p "
                "JOIN media_files f USING (key) WHERE p.key = :k AND p.status = 'registered' "
                "ORDER BY (p.path = f.primary_path) DESC, p.first_seen_at"), {"k": key}).all()
        return [(os.fsdecode(bytes(r.path_bytes)) if r.path_bytes is not None else r.path,
                 r.mtime_ns) for r in rows]

    def paths_of(self, key: str) -> list[str]:
        """Registered paths of a content key (as the file system names them), the primary
        one first."""
        return [path for path, _ in self._registered(key)]

    def readable_paths(self, key: str, size: int | None = None,
                       ) -> tuple[list[str], str, bool]:
        """What to open for a content key, primary first, and why nothing when the list is
        empty. A path counts while it is still what was registered: a regular file of the
        registered size, or a symlink to a registered file. A FIFO or a symlink swapped in
        after registration is never opened; a file that changed is looked at again by the
        next scan (it becomes a new version, or the same content again): `changed` says so,
        and the caller leaves the file for then instead of failing it."""
        out, reasons = [], []
        for path, mtime_ns in self._registered(key):
            target, why = self._still_registered(path, size, mtime_ns)
            if target is not None:
                out.append(target)
            else:
                reasons.append(why)
        changed = bool(reasons) and all(r.startswith(CHANGED) for r in reasons)
        return out, (reasons[0] if reasons else
                     "no readable path is recorded for this content (moved or deleted?)"), changed

    def _still_registered(self, path: str, size: int | None,
                          mtime_ns: int | None = None) -> tuple[str | None, str]:
        try:
            st = os.lstat(path)
        except OSError:
            return None, "the file was moved or deleted after registration"
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            with self.engine.connect() as conn:
                known = conn.execute(sa.text(
                    "SELECT 1 FROM media_paths WHERE path = :p AND status = 'registered'"),
                    {"p": display_path(target)}).first()
            if known is None or target == path:
                return None, (f"the path became a symlink after registration (to "
                              f"{display_path(target)}); it is not followed")
            return self._still_registered(target, size)  # the target's own mtime differs
        if not stat.S_ISREG(st.st_mode):
            return None, ("the path is no longer a regular file (a FIFO, socket or device); "
                          "it is not opened")
        # Size and modification time as registered: content written in between (an editor's
        # save, a sync) is not this key's content. The next scan hashes it again: it differs
        # from what media_paths recorded, so nothing needs writing here (a read, such as
        # GET /files/{key}/content, stays a read).
        if (size is not None and st.st_size != size) or (
                mtime_ns is not None and st.st_mtime_ns != mtime_ns):
            return None, (f"{CHANGED} ({size} -> {st.st_size} bytes); the next scan "
                          "registers it again")
        return path, ""

    def record_probe(self, key: str, *, kind: str, status: str, error: str | None,
                     mime_type: str | None, details: dict, taken_at: datetime | None,
                     processing_ms: float) -> None:
        """What the probe found. Values PostgreSQL refuses (NUL, NaN, invalid Unicode) are
        repaired first, and `details.repaired` says what was changed."""
        notes: set[str] = set()
        text = json_text(details, notes)
        if notes:
            text = json_text({**details, "repaired": sorted(notes)}, set())
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE media_files SET kind = :kind, status = :status, error = :error, "
                " mime_type = :mime, details = CAST(:details AS jsonb), taken_at = :taken, "
                " processed_at = now(), processing_ms = :ms WHERE key = :key"),
                {"kind": kind, "status": status, "error": safe_text(error) if error else None,
                 "mime": safe_text(mime_type) if mime_type else None,
                 "details": text, "taken": taken_at,
                 "ms": processing_ms, "key": key})

    def entry(self, path: str) -> dict | None:
        """One path's row of `catalog_entries` (key, kind, status, error), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT path, key, kind, status, error, is_alias FROM catalog_entries "
                "WHERE path = :p"), {"p": path}).first()
        return dict(row._mapping) if row else None

    def all_keys(self) -> list[str]:
        """Every content key, oldest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT key FROM media_files ORDER BY first_seen_at, key")).scalars())

    def pending_keys(self) -> list[str]:
        """Content registered but never probed, oldest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT key FROM media_files WHERE status = 'pending' "
                "ORDER BY first_seen_at, key")).scalars())

    # -- reporting --------------------------------------------------------------------
    def counts(self, paths: Sequence[str] | None = None) -> dict[tuple[str, str], int]:
        """(kind, status) -> number of paths; all paths, or only those given."""
        where, params = (("WHERE path = ANY(:p)", {"p": [display_path(p) for p in paths]})
                         if paths is not None else ("", {}))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                f"SELECT kind, status, count(*) AS n FROM catalog_entries {where} "
                "GROUP BY kind, status ORDER BY kind, status"), params).all()
        return {(r.kind, r.status): r.n for r in rows}

    def failures(self, paths: Sequence[str] | None = None, limit: int = 1000) -> list[dict]:
        where = "AND path = ANY(:p)" if paths is not None else ""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT path, key, kind, status, error FROM catalog_entries "
                f"WHERE status IN ('failed', 'refused', 'unsupported') {where} "
                "ORDER BY path LIMIT :lim"),
                {"p": [display_path(p) for p in paths or []], "lim": limit}).all()
        return [dict(r._mapping) for r in rows]


def recorded_paths(engine: sa.Engine, key: str) -> list[str]:
    """Every path recorded for a content key, in display form, first seen first."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT path FROM media_paths WHERE key = :k ORDER BY first_seen_at, path"),
            {"k": key}).scalars())
