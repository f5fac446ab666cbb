"""Reading JSON records, and loading them into the table a SchemaDesign describes.

Identifiers from data or from an LLM never reach SQL unquoted: table names must match
`^[a-z_][a-z0-9_]{0,62}$`; column names are any key up to 63 bytes without NUL, always
double-quoted with quotes doubled. Values are converted in Python before COPY, so a record
that does not fit goes to the rejects table with its reason instead of failing the load.
Re-loading builds a new table and swaps it in within one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from media_assets.lib.db.values import json_text, safe_text
from media_assets.lib.files.json_depth import MAX_JSON_DEPTH, json_depth, too_deep_message
from media_assets.lib.files.json_read import STREAM_BYTES, ndjson_lines, open_binary, read_bytes
from media_assets.lib.json_docs import server_load
from media_assets.lib.json_docs.schema import FieldSchema, SchemaDesign

SCHEMA = "json_data"
# Table names never hold "__": names with it (rejects, indexes, staging) are ours alone, so
# no data file's table can take one.
TABLE_NAME = re.compile(r"^(?!.*__)[a-z_][a-z0-9_]{0,62}$")
RESERVED = {"_row", "_extra", "_doc"}
# PostgreSQL's system columns: a key with one of these names cannot be a column as it is.
SYSTEM_COLUMNS = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"}


class IdentifierError(ValueError):
    """A name that must not reach SQL."""


def quote_ident(name: str) -> str:
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise IdentifierError(f"invalid SQL identifier {name[:80]!r}")
    return '"' + name.replace('"', '""') + '"'


def cut_bytes(name: str, limit: int) -> str:
    """`name` shortened to at most `limit` UTF-8 bytes, never inside a character."""
    return name.encode()[:limit].decode("utf-8", "ignore")


def _name_tag(table: str) -> str:
    """A short hash of the full table name: derived names stay unique when two long table
    names share their first 40 characters."""
    return hashlib.sha256(table.encode()).hexdigest()[:6]


def rejects_table_name(table: str) -> str:
    """`<table>__rejects`, or a shortened name with the table's hash when that is too long."""
    name = f"{table}__rejects"
    return name if len(name) <= 63 else f"{table[:44]}__{_name_tag(table)}_rejects"


def check_table_name(name: str) -> str:
    if not TABLE_NAME.match(name or ""):
        raise IdentifierError(f"table name {name!r} must match {TABLE_NAME.pattern}")
    return name


@dataclass
class Reject:
    line: int          # 1-based record number (NDJSON: line number)
    reason: str
    raw: str           # the record's text, truncated


class RecordStream:
    """The records of one file (`iter_records`), iterable once per `iter()`; it also tells
    `load_table` which file it reads, so an NDJSON file can be loaded by the server."""

    def __init__(self, path: Path, details: dict):
        self.path, self.details = path, details
        # The fields beside a wrapped record list ({"exported_by": ..., "items": [...]}),
        # filled once iteration starts on a file read whole (a streamed one leaves it empty).
        self.envelope: dict[str, Any] = {}

    def __iter__(self) -> Iterator[Any]:
        return _iter_records(self.path, self.details, self.envelope)


def iter_records(path: Path, details: dict) -> RecordStream:
    """Each record of a JSON or NDJSON file, in order (see `_iter_records`)."""
    return RecordStream(path, details)


def _iter_records(path: Path, details: dict, envelope: dict | None = None) -> Iterator[Any]:
    """Each record of a JSON or NDJSON file, in order, or a `Reject` for an NDJSON line
    that does not parse. NDJSON is read line by line; a large JSON array in a stream.

    Numbers are parsed as floats (C speed); decimal columns get `Decimal(repr(x))`, which is
    exact for what was written, since repr() is the shortest text that reads back the same.
    """
    encoding = details.get("encoding") or "utf-8"
    if details.get("format") == "ndjson":  # the probe's reader (lib/files/json_read.py)
        for line in ndjson_lines(path, encoding):
            yield line.value if line.error is None else Reject(
                line.number, f"line {line.number}: invalid JSON: {line.error}", line.text[:2000])
        return
    where = details.get("records_path")
    if (path.stat().st_size > STREAM_BYTES and encoding.startswith("utf-8")
            and (where or details.get("shape", "").startswith("array"))):
        import ijson

        # The probe refused deeper documents; a file changed since is checked again, since
        # ijson's memory grows with the square of the depth.
        depth = json_depth(path, MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise ValueError(too_deep_message(depth))
        with open_binary(path) as fh:
            yield from ijson.items(fh, f"{where}.item" if where else "item", use_float=True)
        return
    text = read_bytes(path).decode(encoding, errors="replace").lstrip("\ufeff")
    doc = json.loads(text)
    del text
    if isinstance(doc, list):
        yield from doc
    elif isinstance(doc, dict) and where in doc:
        if envelope is not None:
            envelope.update((k, v) for k, v in doc.items() if k != where)
        yield from doc[where]
    elif isinstance(doc, dict) and (column := details.get("records_map")):
        # An object of records keyed by id (probe.map_key_column): a row each, the key in
        # a column of its own.
        for key, value in doc.items():
            yield {column: key, **value} if isinstance(value, dict) else value
    else:
        yield doc


def read_records(path: Path, details: dict) -> tuple[list, list[Reject]]:
    """All records of a file in memory, and the bad NDJSON lines (small files, tests)."""
    records, rejects = [], []
    for item in iter_records(path, details):
        (rejects if isinstance(item, Reject) else records).append(item)
    return records, rejects


def sample_records(path: Path, details: dict, n: int) -> list:
    """The first `n` records (what schema inference and the LLM see)."""
    return list(islice((r for r in iter_records(path, details) if not isinstance(r, Reject)),
                       n))


def column_names(design: SchemaDesign) -> dict[str, str]:
    """field name -> column name: the key itself, unless it collides with our own columns or
    is too long for PostgreSQL (then shortened, made unique, and still quoted)."""
    out, used = {}, set(RESERVED)
    for f in design.fields:
        if not f.column:
            continue
        name = safe_text(f.name)
        if name in used or not name or name in SYSTEM_COLUMNS:
            name = f"{name}_field" if name else "field"
        name = cut_bytes(name, 63)
        base, i = name, 2
        while name in used:
            suffix = f"_{i}"
            name = cut_bytes(base, 63 - len(suffix)) + suffix
            i += 1
        used.add(name)
        out[f.name] = name
    return out


def _convert(value, f: FieldSchema):
    """The value as the column's type, or raise ValueError with the reason."""
    if value is None:  # columns are nullable: a field required in the sample may still be null
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities: null in any typed column (README "JSON to tables")
    t = f.type
    if t == "boolean":
        if isinstance(value, bool):
            return value
    elif t == "integer":
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) and -2**63 <= value < 2**63:
            return value
        elif isinstance(value, Decimal) and value == value.to_integral_value() \
                and -2**63 <= value < 2**63:
            return int(value)
    elif t in ("float", "decimal", "bigint_overflow"):
        if isinstance(value, bool):
            pass
        elif t == "float" and isinstance(value, (int, float, Decimal)):
            return float(value)
        elif isinstance(value, float):
            return Decimal(repr(value))
        elif isinstance(value, (int, Decimal)):
            return Decimal(value)
    elif t in ("string", "enum", "email", "url"):
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("text contains a NUL character, which PostgreSQL refuses")
            return safe_text(value)  # a lone surrogate becomes U+FFFD
    elif t == "date":
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value[:40]!r} is not a date") from None
    elif t == "timestamp":
        if isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value[:40]!r} is not a timestamp") from None
            # The column is timestamptz: a timestamp without an offset is read as UTC
            # (README "JSON to tables"), so naive and aware values can share a column.
            return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
    elif t == "uuid":
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                raise ValueError(f"{value[:40]!r} is not a UUID") from None
    raise ValueError(f"expected {f.type}, got {type(value).__name__} {str(value)[:40]!r}")


def _converter(f: FieldSchema):
    """A per-column converter: plain checks for the common types, `_convert` for the rest."""
    if f.type == "integer":
        def conv(v):
            if v is None or (type(v) is int and -2**63 <= v < 2**63):
                return v
            return _convert(v, f)
    elif f.type in ("string", "enum", "email", "url"):
        def conv(v):
            if v is None or (type(v) is str and "\x00" not in v and v.isascii()):
                return v
            return _convert(v, f)
    elif f.type == "float":
        def conv(v):
            if v is None or (type(v) is float and v - v == 0.0):  # finite: NaN/inf -> null
                return v
            return _convert(v, f)
    else:
        def conv(v):
            return _convert(v, f)
    return conv


def rows(items: Iterable, design: SchemaDesign, names: dict[str, str],
         rejects: list[Reject]) -> Iterator[tuple[int, tuple | None, str | None, Any]]:
    """(record number, row tuple or None, reject reason or None, record) per record; the
    `Reject`s among `items` (bad NDJSON lines) go to `rejects`."""
    columns = [(f, _converter(f)) for f in design.fields if f.column]
    extra = design.storage_type == "hybrid"
    i = 0
    for rec in items:
        if isinstance(rec, Reject):
            rejects.append(rec)
            continue
        i += 1
        if not isinstance(rec, dict):
            rec = {"value": rec}
        if design.storage_type == "jsonb":
            yield i, (i, Jsonb(rec, dumps=json_text)), None, rec
            continue
        if not names.keys() >= rec.keys() and any(safe_text(k) != k for k in rec):
            # Keys with NUL or invalid Unicode were stored repaired in the design.
            rec = {safe_text(k): v for k, v in rec.items()}
        try:
            values = []
            for f, conv in columns:
                try:
                    values.append(conv(rec.get(f.name)))
                except ValueError as exc:
                    raise ValueError(f"field {f.name[:60]!r}: {exc}") from None
            rest = {k: v for k, v in rec.items() if k not in names}
            if rest and not extra:
                raise ValueError("fields not in the table: " +
                                 ", ".join(repr(k[:40]) for k in list(rest)[:5]))
        except ValueError as exc:
            yield i, None, str(exc), rec
            continue
        row = [i, *values]
        if extra:
            row.append(Jsonb(rest, dumps=json_text) if rest else None)
        yield i, tuple(row), None, rec


@dataclass
class LoadResult:
    table: str
    row_count: int
    reject_count: int
    input_count: int
    indexes: list[str]


_BINARY_TYPE = {"bigint": "int8", "double precision": "float8", "numeric": "numeric",
                "boolean": "bool", "text": "text", "date": "date", "timestamptz": "timestamptz",
                "uuid": "uuid", "jsonb": "jsonb"}


def _copy_types(design: SchemaDesign) -> list[str]:
    if design.storage_type == "jsonb":
        return ["int8", "jsonb"]
    types = ["int8"] + [_BINARY_TYPE[f.pg_type] for f in design.fields if f.column]
    return types + (["jsonb"] if design.storage_type == "hybrid" else [])


def _create_sql(table: str, design: SchemaDesign, names: dict[str, str]) -> str:
    cols = ['"_row" bigint NOT NULL']  # the primary key is added after the load
    if design.storage_type == "jsonb":
        cols.append('"_doc" jsonb NOT NULL')
    else:
        for f in design.fields:
            if f.column:
                cols.append(f"{quote_ident(names[f.name])} {f.pg_type}")
        if design.storage_type == "hybrid":
            cols.append('"_extra" jsonb')
    return f"CREATE TABLE {SCHEMA}.{quote_ident(table)} ({', '.join(cols)})"


def _index_sql(design: SchemaDesign, names: dict[str, str], table: str, tag: str,
               target: str) -> list[tuple[str, str | None]]:
    """(CREATE INDEX, the plain one to build if a unique one fails) for each of the
    design's indexes, named `<table>__<tag>_i<n>_new` until the swap."""
    out = []
    for n, idx in enumerate(design.indexes):
        cols = ", ".join(quote_ident(c if c in RESERVED else names.get(c, c))
                         for c in idx["columns"])
        iname = quote_ident(f"{table[:40]}__{tag}_i{n}_new")
        method = "gin" if idx.get("type") == "gin" else "btree"
        plain = f"CREATE INDEX {iname} ON {target} USING {method} ({cols})"
        # A unique index the full data violates: the plain one instead.
        out.append((f"CREATE UNIQUE INDEX {iname} ON {target} USING {method} ({cols})", plain)
                   if idx.get("unique") else (plain, None))
    return out


def _build_indexes(cur, statements: list[tuple[str, str | None]]) -> None:
    for sql, fallback in statements:
        if fallback is None:
            cur.execute(sql)
            continue
        cur.execute("SAVEPOINT idx")
        try:
            cur.execute(sql)
            cur.execute("RELEASE SAVEPOINT idx")
        except psycopg.Error:
            cur.execute("ROLLBACK TO SAVEPOINT idx")
            cur.execute(fallback)


# A load's own tables beside `<table>`: the new table, and on the parallel path the staged
# lines and the rejects (`<table>__<kind>_<hex>`; data tables never hold "__").
WORK_KINDS = ("new", "stage", "rej")


def _work_table(table: str, kind: str, hex_id: str = "") -> str:
    """The name of a load's work table (with `hex_id` empty: the prefix of every such)."""
    return f"{table[:40]}__{kind}_{hex_id}"


def _two_lanes(builds: list[tuple[int, tuple]]) -> list[list[tuple]]:
    """The index builds (weight, statement) split in two lanes of about equal weight, the
    heaviest first (a GIN build costs about three btree builds)."""
    lanes: list[list[tuple]] = [[], []]
    weight = [0, 0]
    for w, stmt in sorted(builds, key=lambda b: -b[0]):
        lane = weight.index(min(weight))
        lanes[lane].append(stmt)
        weight[lane] += w
    return lanes


def _drop_leftovers(cur, table: str, ours: str) -> str:
    """Take this table's load lock for the session (`load_table` releases it) and drop the
    work tables a parallel load of it left when its process died (committed, so no rollback
    removed them, and their index names would clash with this load's): under the lock no
    other load is using them. Returns the lock's key."""
    key = f"json_data.{table[:40]}"
    cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (SCHEMA,))
    prefixes = tuple(_work_table(table, kind) for kind in WORK_KINDS)
    for (name,) in cur.fetchall():
        if name.startswith(prefixes) and name != ours:
            cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{quote_ident(name)}")
    return key


def load_table(engine: sa.Engine, design: SchemaDesign, records: Iterable,
               pre_rejects: Sequence[Reject] = (), server_side: bool = True) -> LoadResult:
    """Create, fill, index and swap in `json_data.<table>`; rejects go to `<table>__rejects`.
    `records` is consumed once, as a stream (`iter_records`): memory stays bounded.

    An NDJSON file's `iter_records` on PostgreSQL 16+ is loaded by the server (raw lines by
    COPY, cast in SQL: `server_load`); anything else, or `server_side=False`, is converted
    here and written by a typed binary COPY. Both give the same rows and rejects, except
    that the server path numbers `_row` and rejects by line (blank and bad lines count).
    From `server_load.PARALLEL_MIN_BYTES` the server converts the two halves of the lines at
    once on two connections, and two connections build the indexes: the new table and the
    staged lines are committed under names of ours (`__new_`, `__stage_`, `__rej_`) until
    the swap, and dropped on failure, or by the next load of the table if the process died.
    A load holds an advisory lock on its table's name throughout."""
    table = check_table_name(design.table_name)
    names = column_names(design)
    hex_id = uuid.uuid4().hex[:8]
    staging = _work_table(table, "new", hex_id)
    rejects_table = rejects_table_name(table)
    tag = _name_tag(table)
    columns = ['"_row"'] + ([] if design.storage_type != "jsonb" else ['"_doc"'])
    if design.storage_type != "jsonb":
        columns += [quote_ident(names[f.name]) for f in design.fields if f.column]
        if design.storage_type == "hybrid":
            columns.append('"_extra"')
    rejects = list(pre_rejects)
    loaded = server_rejects = 0
    server_rejects_from = server_load.REJECTS
    target = f"{SCHEMA}.{quote_ident(staging)}"
    # Tables the parallel path commits before the swap (dropped after it, or on failure).
    work: list[str] = []
    locked = ""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        locked = _drop_leftovers(cur, table, staging)
        cur.execute(_create_sql(staging, design, names))
        on_server = (server_side and isinstance(records, RecordStream)
                     and server_load.supported(cur, records.details))

        def verdict(rec):
            return next(rows([rec], design, names, []))[2]

        if on_server and records.path.stat().st_size >= server_load.PARALLEL_MIN_BYTES:
            # Raw lines by COPY, cast by the server in two halves at once: the table and
            # the staged lines are committed first so that two connections see them.
            # Readers still see the old table or the new one (the swap below is atomic).
            stage = f"{SCHEMA}.{quote_ident(_work_table(table, 'stage', hex_id))}"
            server_rejects_from = f"{SCHEMA}.{quote_ident(_work_table(table, 'rej', hex_id))}"
            work = [target, stage, server_rejects_from]
            cur.execute(f"CREATE UNLOGGED TABLE {stage} (n bigint, line text, reason text)")
            cur.execute(f"CREATE UNLOGGED TABLE {server_rejects_from} "
                        "(record bigint, reason text, raw text)")
            server_load.add_helpers(cur, target, columns)
            raw.commit()
            last = server_load.stage_lines(cur, records.path, records.details, verdict, stage)
            raw.commit()
            try:
                loaded, server_rejects = server_load.convert_in_parallel(
                    engine.raw_connection, target, design, names, columns, records.details,
                    stage, server_rejects_from, last)
            except psycopg.DataError:
                # As below: a value no jsonb holds sends the file to the Python path.
                cur.execute(f"TRUNCATE {target}")
                loaded = server_rejects = 0
                on_server = False
            server_load.drop_helpers(cur, target, columns)
        elif on_server:
            # Raw lines by COPY, parsed and cast by the server (faster: server_load.py).
            cur.execute("SAVEPOINT json_server")
            try:
                server_load.stage_lines(cur, records.path, records.details, verdict)
                loaded, server_rejects = server_load.convert(
                    cur, f"{SCHEMA}.{quote_ident(staging)}", design, names, columns,
                    records.details)
                cur.execute("RELEASE SAVEPOINT json_server")
            except psycopg.DataError:
                # A value the server cannot hold even as jsonb (1e200000 overflows
                # numeric) stops the statement: this file takes the Python path.
                cur.execute("ROLLBACK TO SAVEPOINT json_server")
                on_server = False
        if not on_server:
            copy_sql = (f"COPY {SCHEMA}.{quote_ident(staging)} ({', '.join(columns)}) "
                        "FROM STDIN (FORMAT BINARY)")
            with cur.copy(copy_sql) as copy:
                # Binary COPY with declared types: no text formatting and parsing per value.
                copy.set_types(_copy_types(design))
                for i, row, reason, rec in rows(records, design, names, rejects):
                    if row is None:
                        raw_text = json.dumps(rec, ensure_ascii=False, default=str)
                        rejects.append(Reject(i, reason, raw_text[:2000]))
                        continue
                    copy.write_row(row)
                    loaded += 1
        # The key and indexes after the rows: one sorted build each instead of an index
        # insert per row. On the parallel path the filled table is committed, so two
        # connections build them at once (CREATE INDEX takes a lock that does not conflict
        # with itself); PostgreSQL also gives each build its parallel workers.
        pkey = quote_ident(staging + "_pkey")
        builds = [(3 if idx.get("type") == "gin" else 1, stmt)
                  for idx, stmt in zip(design.indexes, _index_sql(design, names, table, tag,
                                                                  target))]
        builds.insert(0, (1, (f"CREATE UNIQUE INDEX {pkey} ON {target} (_row)", None)))
        if work:
            raw.commit()
            server_load.on_connections(engine.raw_connection, [
                (lambda c, stmts=stmts: _build_indexes(c, stmts))
                for stmts in _two_lanes(builds)])
        else:
            _build_indexes(cur, [stmt for _, stmt in builds])
        cur.execute(f"ALTER TABLE {target} ADD CONSTRAINT {pkey} PRIMARY KEY USING INDEX {pkey}")
        index_names = [f"{table[:40]}__{tag}_i{n}" for n in range(len(design.indexes))]
        # The swap: readers see the old table or the new one, never a half-loaded one.
        cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{quote_ident(table)} CASCADE")
        cur.execute(f"ALTER TABLE {SCHEMA}.{quote_ident(staging)} RENAME TO {quote_ident(table)}")
        cur.execute(f"ALTER TABLE {SCHEMA}.{quote_ident(table)} RENAME CONSTRAINT "
                    f"{quote_ident(staging + '_pkey')} TO {quote_ident(f'{table[:40]}__{tag}_pk')}")
        for iname in index_names:
            cur.execute(f"ALTER INDEX {SCHEMA}.{quote_ident(iname + '_new')} "
                        f"RENAME TO {quote_ident(iname)}")
        cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{quote_ident(rejects_table)}")
        cur.execute(f"CREATE TABLE {SCHEMA}.{quote_ident(rejects_table)} "
                    "(record integer NOT NULL, reason text NOT NULL, raw text NOT NULL)")
        if server_rejects:
            cur.execute(f"INSERT INTO {SCHEMA}.{quote_ident(rejects_table)} (record, reason, "
                        f"raw) SELECT record, reason, raw FROM {server_rejects_from} "
                        "ORDER BY record")
        if rejects:
            with cur.copy(f"COPY {SCHEMA}.{quote_ident(rejects_table)} (record, reason, raw) "
                          "FROM STDIN") as copy:
                for r in rejects:
                    copy.write_row((r.line, safe_text(r.reason), safe_text(r.raw)))
        for name in work[1:]:
            cur.execute(f"DROP TABLE {name}")
        raw.commit()
        work = []
    except Exception as exc:
        raw.rollback()
        if work:  # committed by the parallel path: not left behind
            raw.cursor().execute(f"DROP TABLE IF EXISTS {', '.join(work)}")
            raw.commit()
        if getattr(exc, "sqlstate", None) == "54000":  # program_limit_exceeded
            raise ValueError(f"the table does not fit PostgreSQL's limits ({exc}); the "
                             "file is not loaded") from exc
        raise
    finally:
        if locked:
            try:
                raw.cursor().execute("SELECT pg_advisory_unlock(hashtext(%s))", (locked,))
                raw.commit()
            except psycopg.Error:  # a connection that broke took its lock with it
                pass
        raw.close()
    n_rejects = len(rejects) + server_rejects
    return LoadResult(table, loaded, n_rejects, loaded + n_rejects, index_names)
