"""NDJSON loaded by the server: the raw lines are COPYed into a temporary table, and one
INSERT … SELECT parses, checks and casts them in SQL (README "JSON to tables").

Python then only reads lines and hands them to COPY, as a bare COPY does; the per-value work
(parsing, type checks, casts, `_extra`) runs in PostgreSQL's C code. Each check is a SQL
predicate (`pg_input_is_valid`, PostgreSQL 16+), so a record that does not fit gets a reason
instead of failing the statement; `load.load_table` takes the Python path on older servers.

The verdicts match the Python path (`load.rows`): the few lines PostgreSQL would read
differently from Python — NaN and infinities, `\\u0000`, `\\ud800`-style escapes, raw NUL,
very deep nesting — are converted in Python first (repaired, or rejected with its reason), so
only JSON both agree on reaches the server's parser.

A large file's lines are converted in two halves at once, on two connections
(`convert_in_parallel`): one statement runs on one core, and an INSERT … SELECT gets no
parallel workers from PostgreSQL.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import psycopg
from psycopg import sql

from media_assets.lib.files.json_read import PARSE_ERRORS, open_text
from media_assets.lib.db.values import json_text, safe_text
from media_assets.lib.json_docs.schema import FieldSchema, SchemaDesign

MIN_SERVER_VERSION = 160000  # pg_input_is_valid, pg_input_error_info
STAGE = "json_stage"
REJECTS = "json_stage_rejects"
# Lines longer than this with more brackets than DEEP are checked by Python: its parser
# rejects what nests past its recursion limit, and PostgreSQL's would stop the statement.
LONG_LINE, DEEP = 1000, 400
# Dates and timestamps start as ISO 8601 does (a LIKE costs far less than a regex), so
# words PostgreSQL would also read ('today', 'epoch', 'Jan 5') are rejected as Python does.
_ISO_DAY = "____-__-__%"


def supported(cur, details: dict) -> bool:
    """NDJSON in UTF-8 on a server with `pg_input_is_valid`."""
    encoding = (details.get("encoding") or "utf-8").lower().replace("_", "-")
    return (details.get("format") == "ndjson" and encoding.startswith("utf-8")
            and cur.connection.info.server_version >= MIN_SERVER_VERSION)


def _needs_python(line: str) -> bool:
    """Lines whose JSON PostgreSQL reads differently from Python, or refuses."""
    return ("NaN" in line or "Infinity" in line or "\x00" in line
            or ("\\u" in line and ("\\u0000" in line or "\\ud" in line or "\\uD" in line))
            or (len(line) > LONG_LINE and line.count("[") + line.count("{") > DEEP))


def stage_lines(cur, path: Path, details: dict, python_verdict,
                stage: str | None = None) -> int:
    """COPY each non-blank line into `json_stage (n, line, reason)` (or into `stage`, a
    table of that shape the caller made): n is the line number, reason is set for a line
    Python already rejected; a line Python repaired is staged as its repaired JSON. Read in
    a stream: memory holds a line and COPY's buffer. Returns the last line's number."""
    if stage is None:
        stage = STAGE
        cur.execute(f"CREATE TEMP TABLE {STAGE} (n bigint, line text, reason text) "
                    "ON COMMIT DROP")
    encoding = details.get("encoding") or "utf-8"
    lineno = 0
    with cur.copy(f"COPY {stage} (n, line, reason) FROM STDIN") as copy, \
            open_text(path, encoding) as fh:  # as the probe reads it (json_read.py)
        write = copy.write_row
        for lineno, line in enumerate(fh, 1):
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line or line.isspace():
                continue
            if not _needs_python(line):
                write((lineno, line, None))
                continue
            try:
                rec = json.loads(line)
            except PARSE_ERRORS as exc:
                write((lineno, safe_text(line[:2000]),
                       f"line {lineno}: invalid JSON: {exc}"))
                continue
            reason = python_verdict(rec)
            if reason is not None:
                write((lineno, safe_text(line[:2000]), safe_text(reason)))
            else:
                write((lineno, json_text(rec), None))
    return lineno


def _lit(conn, value: str) -> str:
    return sql.Literal(value).as_string(conn)


_PYTYPE = ("CASE jsonb_typeof({v}) WHEN 'string' THEN 'str' WHEN 'boolean' THEN 'bool' "
           "WHEN 'array' THEN 'list' WHEN 'object' THEN 'dict' "
           "ELSE CASE WHEN {v}::text ~ '^-?[0-9]+$' THEN 'int' ELSE 'float' END END")


def _fits(f: FieldSchema, v: str) -> tuple[str, str]:
    """(fits, value) for the optimistic pass: `fits` tests only the JSON type (and the ISO
    shape of dates), and `value` casts without a check, so a value of the right type that
    does not convert (an integer past int8, 2024-02-30) stops the statement and the load
    falls back to the checked pass (`convert`)."""
    s, t = f"({v} #>> '{{}}')", f"jsonb_typeof({v})"
    t_ = f.type
    if t_ == "boolean":
        fits, value = f"{t} = 'boolean'", f"({v})::boolean"
    elif t_ == "integer":
        # A jsonb number with no fraction digits (1.5 and 1.0 go to the checked pass). A
        # scale test costs a quarter of a regex over the number's text (bench_json), and
        # past int8 the cast stops the statement, so the checked pass takes the file.
        fits = f"{t} = 'number' AND scale(({v})::numeric) = 0"
        value = f"({v})::bigint"
    elif t_ == "float":
        fits, value = f"{t} = 'number'", f"({v})::float8"
    elif t_ in ("decimal", "bigint_overflow"):
        fits, value = f"{t} = 'number'", f"({v})::numeric"
    elif t_ in ("string", "enum", "email", "url"):
        fits, value = f"{t} = 'string'", s
    elif t_ == "date":
        fits = f"{t} = 'string' AND length({s}) = 10 AND {s} LIKE '{_ISO_DAY}'"
        value = f"{s}::date"
    elif t_ == "timestamp":
        fits, value = f"{t} = 'string' AND {s} LIKE '{_ISO_DAY}'", f"{s}::timestamptz"
    elif t_ == "uuid":
        fits, value = f"{t} = 'string'", f"{s}::uuid"
    else:
        raise ValueError(f"no SQL conversion for {t_}")
    return f"({v} IS NULL OR {t} = 'null' OR ({fits}))", value


def _column(conn, f: FieldSchema, v: str) -> tuple[str, str, str]:
    """(ok, value, reason) SQL expressions for one typed column read from jsonb `v`."""
    s = f"({v} #>> '{{}}')"
    t = f"jsonb_typeof({v})"
    t_ = f.type
    if t_ == "boolean":
        ok, value = f"{t} = 'boolean'", f"({v})::boolean"
    elif t_ == "integer":
        ok, value = (f"{t} = 'number' AND pg_input_is_valid({v}::text, 'int8')",
                     f"({v}::text)::bigint")
    elif t_ == "float":
        # Out of float8's range (1e400): null, as Python reads it as an infinity.
        ok = f"{t} = 'number'"
        # Below its range (1e-400): 0.0, as Python reads it.
        value = (f"CASE WHEN pg_input_is_valid({v}::text, 'float8') THEN ({v})::float8 "
                 f"WHEN abs(({v})::numeric) < 1 THEN 0.0::float8 END")
    elif t_ in ("decimal", "bigint_overflow"):
        ok, value = f"{t} = 'number'", f"({v})::numeric"
    elif t_ in ("string", "enum", "email", "url"):
        ok, value = f"{t} = 'string'", s
    elif t_ == "date":
        ok = (f"{t} = 'string' AND length({s}) = 10 AND {s} LIKE '{_ISO_DAY}' "
              f"AND pg_input_is_valid({s}, 'date')")
        value = f"{s}::date"
    elif t_ == "timestamp":
        ok = (f"{t} = 'string' AND {s} LIKE '{_ISO_DAY}' "
              f"AND pg_input_is_valid({s}, 'timestamptz')")
        value = f"{s}::timestamptz"
    elif t_ == "uuid":
        ok, value = f"{t} = 'string' AND pg_input_is_valid({s}, 'uuid')", f"{s}::uuid"
    else:
        raise ValueError(f"no SQL conversion for {t_}")
    ok = f"({v} IS NULL OR {t} = 'null' OR ({ok}))"
    field = _lit(conn, f"field {f.name[:60]!r}: ")
    got = (f"'expected {t_}, got ' || {_PYTYPE.format(v=v)} || ' ' || "
           f"quote_literal(left({s}, 40))")
    if t_ in ("date", "timestamp", "uuid"):
        kind = {"date": "a date", "timestamp": "a timestamp", "uuid": "a UUID"}[t_]
        got = (f"CASE WHEN {t} = 'string' THEN quote_literal(left({s}, 40)) || "
               f"' is not {kind}' ELSE {got} END")
    return ok, value, f"{field} || {got}"


def _extract(conn, fields: list[FieldSchema], vs: list[str]) -> str:
    """Each field's value as jsonb, a JSON null as SQL NULL: a cast of 'null' to a column's
    type would stop the statement."""
    return "".join(f", nullif(doc -> {_lit(conn, f.name)}, 'null'::jsonb) AS {v}"
                   for f, v in zip(fields, vs))


def _spare(columns: list[str]) -> list[str]:
    """The passes' helper column names (misfit flag, reason, raw line), which no data column
    has (a JSON field may be called anything)."""
    used = set(columns)
    names = ("__misfit", "__reason", "__raw")
    while any(f'"{n}"' in used for n in names):
        names = tuple(n + "_" for n in names)
    return list(names)


def add_helpers(cur, table_sql: str, columns: list[str]) -> None:
    """The passes' helper columns on the table being filled (dropped by `drop_helpers`)."""
    misfit, reason, raw = _spare(columns)
    cur.execute(f'ALTER TABLE {table_sql} ADD COLUMN "{misfit}" boolean, '
                f'ADD COLUMN "{reason}" text, ADD COLUMN "{raw}" text')


def drop_helpers(cur, table_sql: str, columns: list[str]) -> None:
    cur.execute(f"ALTER TABLE {table_sql} "
                + ", ".join(f'DROP COLUMN "{c}"' for c in _spare(columns)))


def convert(cur, table_sql: str, design: SchemaDesign, names: dict[str, str],
            columns: list[str], details: dict | None = None) -> tuple[int, int]:
    """Fill `table_sql` from the lines `stage_lines` staged, on this connection. Returns
    (rows loaded, records rejected); see `convert_part`."""
    add_helpers(cur, table_sql, columns)
    result = convert_part(cur, table_sql, design, names, columns, details)
    drop_helpers(cur, table_sql, columns)
    return result


def convert_part(cur, table_sql: str, design: SchemaDesign, names: dict[str, str],
                 columns: list[str], details: dict | None = None, stage: str = STAGE,
                 part: tuple[int, int] | None = None) -> tuple[int, int]:
    """Fill `table_sql` (with `add_helpers`' columns) from the staged lines in `stage`
    whose numbers are in `part` (all of them if None); records that do not fit go to the
    temporary `json_stage_rejects (record, reason, raw)`. Returns (rows loaded, records
    rejected).

    Two passes. The optimistic one parses each line once and tests only JSON types, so
    the checks that cost most (`pg_input_is_valid` per value and per line) run for no
    one: 25 % less server time on clean data (bench_json). What it sets aside — a type
    that does not match, a line that is not an object, a line Python already judged —
    goes through the checked pass, which gives each its reason. When a value of the right
    type does not convert (2024-02-30) or a line is not JSON, the optimistic statement
    stops; it is undone and the checked pass takes every line, as before. A file the
    probe found invalid lines in goes straight to the checked pass."""
    cur.execute("SET LOCAL TimeZone = 'UTC'")  # a timestamp without an offset is UTC
    lines = LinesSQL(stage, part)
    if (details or {}).get("invalid_line_count"):
        return _convert_checked(cur, table_sql, design, names, columns, lines=lines)
    cur.execute("SAVEPOINT json_fast")
    try:
        loaded, redo = _convert_fitting(cur, table_sql, design, names, columns, lines)
    except psycopg.DataError:
        cur.execute("ROLLBACK TO SAVEPOINT json_fast")
        return _convert_checked(cur, table_sql, design, names, columns, lines=lines)
    cur.execute("RELEASE SAVEPOINT json_fast")
    if not redo:
        cur.execute(f"CREATE TEMP TABLE {REJECTS} (record bigint, reason text, raw text) "
                    "ON COMMIT DROP")
        return loaded, 0
    more, rejected = _convert_checked(cur, table_sql, design, names, columns,
                                      only=f"n IN (SELECT n FROM {REDO})", lines=lines)
    return loaded + more, rejected


REDO = "json_stage_redo"

# From this size a file's lines are converted in two halves at once, on two connections:
# the conversion is PostgreSQL's CPU, and one statement uses one core (an INSERT … SELECT
# gets no parallel workers). Below it the second connection is not worth its setup.
PARALLEL_MIN_BYTES = 16 * 2**20


def on_connections(connect, jobs: list) -> list:
    """Run each `job(cursor)` at once, each on a connection of its own from `connect()`,
    committed when it returns. Returns their results in order, or raises the first one's
    error once all have stopped."""
    def run(job):
        raw = connect()
        try:
            result = job(raw.cursor())
            raw.commit()
            return result
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    with ThreadPoolExecutor(len(jobs), thread_name_prefix="json-load") as pool:
        futures = [pool.submit(run, job) for job in jobs]
        wait(futures)
    return [f.result() for f in futures]


def convert_in_parallel(connect, table_sql: str, design: SchemaDesign,
                        names: dict[str, str], columns: list[str], details: dict,
                        stage: str, rejects: str, last_line: int) -> tuple[int, int]:
    """Fill `table_sql` from the lines staged in `stage`, both halves at once, each on a
    connection of its own from `connect()` that commits its half: the table, its helper
    columns, `stage` and `rejects (record, reason, raw)` must be committed before. Each
    half's rejects are copied into `rejects`. Returns (rows loaded, records rejected), or
    raises the first half's error once both have stopped (the caller drops or empties the
    table: a half may have committed)."""
    mid = last_line // 2
    parts = [(1, mid), (mid + 1, max(last_line, mid + 1))]

    def half(part):
        def job(cur):
            done = convert_part(cur, table_sql, design, names, columns, details, stage, part)
            if done[1]:
                cur.execute(f"INSERT INTO {rejects} SELECT * FROM {REJECTS}")
            return done
        return job

    done = on_connections(connect, [half(part) for part in parts])
    return sum(d[0] for d in done), sum(d[1] for d in done)


class LinesSQL:
    """Which staged lines a pass reads (`stage` table, line numbers in `part`), as SQL: a
    predicate on the stage's `n` and the same on the filled table's `_row`."""

    def __init__(self, stage: str = STAGE, part: tuple[int, int] | None = None):
        self.stage = stage
        lo, hi = part or (None, None)
        self.n = "true" if part is None else f"n BETWEEN {int(lo)} AND {int(hi)}"
        self.row = "true" if part is None else f"_row BETWEEN {int(lo)} AND {int(hi)}"


def _convert_fitting(cur, table_sql: str, design: SchemaDesign, names: dict[str, str],
                     columns: list[str], lines: LinesSQL) -> tuple[int, int]:
    """The optimistic pass: every line that is a JSON object whose values have their
    column's type, cast without checks; the others' line numbers go to `json_stage_redo`.
    Returns (rows loaded, lines left for the checked pass)."""
    conn = cur.connection
    fields = [f for f in design.fields if f.column] if design.storage_type != "jsonb" else []
    bad_col = _spare(columns)[0]
    vs = [f"v{i}" for i in range(len(fields))]
    keys = "ARRAY[" + ", ".join(_lit(conn, f.name) for f in fields) + "]::text[]"
    parts = [_fits(f, v) for f, v in zip(fields, vs)]
    fits = ["jsonb_typeof(doc) = 'object'"] + [ok for ok, _ in parts]
    # A line that is not an object (5, "x") has no keys to take away: CASE, not AND, as
    # the order in which AND evaluates is not promised.
    if design.storage_type == "sql":
        fits.append(f"CASE WHEN jsonb_typeof(doc) = 'object' THEN (doc - {keys}) = "
                    "'{}'::jsonb ELSE false END")
    # Each test is computed once, as k0..kn in a level of its own: the value's CASE and the
    # misfit flag both read it (written twice, the tests cost twice).
    oks = [f"k{i}" for i in range(len(fields))]
    select = ["n"]
    if design.storage_type == "jsonb":
        select.append("doc")
    else:
        select += [f"CASE WHEN {k} THEN {value} END" for k, (_, value) in zip(oks, parts)]
        if design.storage_type == "hybrid":
            select.append(f"CASE WHEN {fits[0]} THEN nullif(doc - {keys}, '{{}}'::jsonb) END")
    extract = _extract(conn, fields, vs)
    tests = "".join(f", {ok} AS {k}" for k, (ok, _) in zip(oks, parts))
    flag = " AND ".join([fits[0], *oks, *fits[len(parts) + 1:]])
    # OFFSET 0: each line parsed once (see _convert_checked).
    cur.execute(
        f"INSERT INTO {table_sql} ({', '.join(columns)}, \"{bad_col}\") "
        f"SELECT {', '.join(select)}, NOT ({flag}) FROM ("
        f" SELECT *{tests} FROM ("
        f"  SELECT n, doc{extract} FROM ("
        f"   SELECT n, line::jsonb AS doc FROM {lines.stage} WHERE reason IS NULL AND "
        f"   {lines.n} OFFSET 0) a "
        f"  OFFSET 0) b OFFSET 0) c")
    inserted = cur.rowcount
    cur.execute(f"CREATE TEMP TABLE {REDO} (n bigint) ON COMMIT DROP")
    cur.execute(f"WITH gone AS (DELETE FROM {table_sql} WHERE \"{bad_col}\" AND "
                f"{lines.row} RETURNING _row) INSERT INTO {REDO} SELECT _row FROM gone")
    misfits = cur.rowcount
    cur.execute(f"INSERT INTO {REDO} SELECT n FROM {lines.stage} WHERE reason IS NOT NULL "
                f"AND {lines.n}")
    judged = cur.rowcount
    return inserted - misfits, misfits + judged


def _convert_checked(cur, table_sql: str, design: SchemaDesign, names: dict[str, str],
                     columns: list[str], only: str = "true",
                     lines: LinesSQL | None = None) -> tuple[int, int]:
    """The checked pass over the staged lines `only` selects, in one INSERT … SELECT:
    every value checked by a SQL predicate, so a record that does not fit gets its reason
    instead of failing the statement."""
    conn = cur.connection
    fields = [f for f in design.fields if f.column] if design.storage_type != "jsonb" else []
    lines = lines or LinesSQL()
    _, reason_col, raw_col = _spare(columns)
    vs = [f"v{i}" for i in range(len(fields))]
    keys = "ARRAY[" + ", ".join(_lit(conn, f.name) for f in fields) + "]::text[]"
    parts = [_column(conn, f, v) for f, v in zip(fields, vs)]
    oks = [f"k{i}" for i in range(len(fields))]
    select = ["n"]
    if design.storage_type == "jsonb":
        select.append("coalesce(doc, 'null'::jsonb)")
    else:
        select += [f"CASE WHEN {k} THEN {value} END" for k, (_, value, _) in zip(oks, parts)]
        if design.storage_type == "hybrid":
            select.append(f"nullif(doc - {keys}, '{{}}'::jsonb)")
    whens = [f"WHEN NOT {k} THEN {reason}" for k, (_, _, reason) in zip(oks, parts)]
    if design.storage_type == "sql":
        whens.append(
            f"WHEN (doc - {keys}) <> '{{}}'::jsonb THEN 'fields not in the table: ' || "
            f"(SELECT string_agg(quote_literal(left(k, 40)), ', ') FROM "
            f"(SELECT k FROM jsonb_object_keys(doc - {keys}) k LIMIT 5) ks)")
    reason = ("coalesce(pre, CASE WHEN doc IS NULL THEN 'line ' || n || ': invalid JSON: ' "
              "|| (pg_input_error_info(line, 'json')).message "
              + " ".join(whens) + " END)")
    extract = _extract(conn, fields, vs)
    checks = "".join(f", {ok} AS {k}" for k, (ok, _, _) in zip(oks, parts))
    # OFFSET 0 keeps each level a subquery of its own: the planner would otherwise copy
    # the parse into every expression that uses it, and parse each line once per column.
    cur.execute(
        f"INSERT INTO {table_sql} ({', '.join(columns)}, \"{reason_col}\", \"{raw_col}\") "
        f"SELECT {', '.join(select)}, r, CASE WHEN r IS NOT NULL THEN left(line, 2000) END "
        f"FROM (SELECT *, {reason} AS r FROM ("
        f" SELECT *{checks} FROM ("
        f"  SELECT n, pre, line, doc{extract} FROM ("
        f"    SELECT n, pre, line, CASE WHEN jsonb_typeof(raw) = 'object' THEN raw "
        f"      WHEN raw IS NOT NULL THEN jsonb_build_object('value', raw) END AS doc FROM ("
        f"      SELECT n, reason AS pre, line, CASE WHEN reason IS NULL AND "
        f"        pg_input_is_valid(line, 'json') THEN line::jsonb END AS raw "
        f"      FROM {lines.stage} WHERE {only} AND {lines.n} OFFSET 0) a OFFSET 0) b OFFSET 0) c OFFSET 0) e "
        "OFFSET 0) d")
    inserted = cur.rowcount
    cur.execute(f"CREATE TEMP TABLE {REJECTS} (record bigint, reason text, raw text) "
                "ON COMMIT DROP")
    cur.execute(f"WITH gone AS (DELETE FROM {table_sql} WHERE \"{reason_col}\" IS NOT NULL "
                f"AND {lines.row} RETURNING _row, \"{reason_col}\", \"{raw_col}\") "
                f"INSERT INTO {REJECTS} SELECT * FROM gone")
    rejected = cur.rowcount
    return inserted - rejected, rejected
