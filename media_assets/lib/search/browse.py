"""The library as a person browses it: a timeline of every catalogued file by the date it was
taken (EXIF, else the file's modification time), newest first, paged by keyset so the
hundredth page costs what the first does (an index on the same expression, sql/016), with
counts by kind and the folders and clusters to filter by.

Also the small previews the viewer shows: a text note's first characters and a JSON
document's first loaded rows.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

# The timeline's date; the same expression as the index in sql/016 (or it is not used).
WHEN = "coalesce(f.taken_at, f.file_modified_at, f.first_seen_at)"
# Probed content only: a file still waiting for its probe has no kind yet.
SHOWN = "f.status <> 'pending' AND EXISTS (SELECT 1 FROM media_paths p WHERE p.key = f.key)"
MAX_PAGE = 200


class CursorError(ValueError):
    """A cursor this module did not write."""


@dataclass(frozen=True)
class BrowseFilters:
    kind: str | None = None
    after: datetime | None = None  # taken on or after
    before: datetime | None = None  # taken before
    under: str | None = None  # a folder: files below it
    cluster: int | None = None  # a cluster id

    def sql(self) -> tuple[str, dict]:
        under = self.under.rstrip("/") + "/" if self.under else None
        where, params = [SHOWN], {}
        for cond, name, value in (
                ("f.kind = :kind", "kind", self.kind),
                (f"{WHEN} >= :after", "after", self.after),
                (f"{WHEN} < :before", "before", self.before),
                ("starts_with(f.primary_path, :under)", "under", under),
                ("EXISTS (SELECT 1 FROM cluster_members m WHERE m.key = f.key "
                 "AND m.cluster_id = :cluster)", "cluster", self.cluster)):
            if value is not None:
                where.append(cond)
                params[name] = value
        return " AND ".join(where), params


def encode_cursor(when: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, key = raw.split("|")
        return datetime.fromisoformat(when), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("cursor: not one this server gave (start again without it)") from None


def _item(r) -> dict:
    d = r.details or {}
    exif = d.get("exif") or {}
    path = r.primary_path
    return {"key": r.key, "kind": r.kind, "status": r.status, "error": r.error,
            "path": path, "name": path.rsplit("/", 1)[-1],
            "folder": path.rsplit("/", 1)[0] + "/" if "/" in path else "",
            "taken": r.when.isoformat(), "taken_from": "exif" if r.taken_at else "file time",
            "size_bytes": r.size_bytes, "mime_type": r.mime_type,
            "duration_s": d.get("duration_s"), "camera": exif.get("camera"),
            "on_disk": bool(r.on_disk)}


def timeline(engine: sa.Engine, filters: BrowseFilters, cursor: str | None = None,
             limit: int = 60) -> dict:
    """One page, newest first: {items, next_cursor (None at the end)}."""
    limit = max(1, min(limit, MAX_PAGE))
    where, params = filters.sql()
    if cursor:
        params["c_when"], params["c_key"] = decode_cursor(cursor)
        where += f" AND ({WHEN}, f.key) < (:c_when, :c_key)"
    sql = (f"SELECT f.key, f.kind, f.status, f.error, f.primary_path, f.size_bytes, "
           f"f.mime_type, f.details, f.taken_at, {WHEN} AS when, "
           f"EXISTS (SELECT 1 FROM media_paths p WHERE p.key = f.key "
           f"        AND p.status = 'registered') AS on_disk "
           f"FROM media_files f WHERE {where} ORDER BY {WHEN} DESC, f.key DESC "
           f"LIMIT :limit")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), {**params, "limit": limit + 1}).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_item(r) for r in rows],
            "next_cursor": encode_cursor(rows[-1].when, rows[-1].key) if more else None}


def facets(engine: sa.Engine, filters: BrowseFilters) -> dict:
    """Counts by kind (under the other filters), the total, the folders holding files
    (most files first, at most 50) and the clusters (named ones by name)."""
    by_kind = BrowseFilters(None, filters.after, filters.before, filters.under, filters.cluster)
    where, params = by_kind.sql()
    with engine.connect() as conn:
        kinds = {r.kind: r.n for r in conn.execute(sa.text(
            f"SELECT f.kind, count(*) AS n FROM media_files f WHERE {where} GROUP BY f.kind"),
            params)}
        folders = [{"folder": r.folder, "count": r.n} for r in conn.execute(sa.text(
            "SELECT regexp_replace(f.primary_path, '[^/]*$', '') AS folder, count(*) AS n "
            f"FROM media_files f WHERE {SHOWN} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50"))]
        clusters = [{"id": r.id, "name": r.name, "size": r.size} for r in conn.execute(sa.text(
            "SELECT c.id, l.cluster_name AS name, c.size FROM clusters c "
            "LEFT JOIN cluster_labels l ON l.cluster_id = c.id "
            "WHERE c.model_id = (SELECT model_id FROM cluster_runs ORDER BY id DESC LIMIT 1) "
            "ORDER BY c.size DESC, c.id LIMIT 100"))]
        dates = conn.execute(sa.text(
            f"SELECT min({WHEN}) AS first, max({WHEN}) AS last FROM media_files f "
            f"WHERE {SHOWN}")).one()
    return {"kinds": kinds, "total": sum(kinds.values()) if filters.kind is None
            else kinds.get(filters.kind, 0), "folders": folders, "clusters": clusters,
            "first": dates.first.isoformat() if dates.first else None,
            "last": dates.last.isoformat() if dates.last else None}


def json_rows(engine: sa.Engine, key: str, n: int = 5) -> dict | None:
    """The first `n` loaded rows of a JSON document's table: {table, columns, rows,
    row_count}, or None when it has no loaded table."""
    with engine.connect() as conn:
        t = conn.execute(sa.text("SELECT table_name, row_count FROM json_tables WHERE key = :k"),
                         {"k": key}).first()
        if t is None:
            return None
        ident = '"' + t.table_name.replace('"', '""') + '"'
        try:
            res = conn.execute(sa.text(f"SELECT * FROM json_data.{ident} LIMIT :n"), {"n": n})
        except sa.exc.ProgrammingError:  # replaced between the two reads
            return None
        cols = list(res.keys())
        rows = [[_cell(v) for v in r] for r in res]
    return {"table": f"json_data.{t.table_name}", "columns": cols, "rows": rows,
            "row_count": t.row_count}


def _cell(v) -> str | int | float | bool | None:
    if v is None or isinstance(v, (bool, int, float)):
        return v
    text = v if isinstance(v, str) else str(v)
    return text if len(text) <= 200 else text[:199] + "…"


def text_head(path: str, limit: int = 20000) -> dict:
    """A text file's first `limit` bytes, decoded (UTF-8, else Latin-1), and whether there
    is more."""
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    more = len(raw) > limit
    raw = raw[:limit]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut through a multi-byte character at the end is not a different encoding.
        text = (raw[:exc.start].decode("utf-8") if exc.start >= len(raw) - 3
                else raw.decode("latin-1"))
    return {"text": text.replace("\x00", ""), "truncated": more}
