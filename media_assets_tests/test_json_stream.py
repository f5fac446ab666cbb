"""Large JSON documents are probed and loaded in a stream (ijson) with the same result as
the in-memory path; the stream threshold is lowered here so small files take that path."""

import json

import pytest

from media_assets.lib.files import probe
from media_assets.lib.json_docs import load
from media_assets.lib.json_docs.schema import infer_schema

RECORDS = [{"id": i, "name": f"n{i}", "price": i * 1.25, "tags": ["a"] * (i % 3)}
           for i in range(300)]


@pytest.mark.parametrize("doc,path", [(RECORDS, None), ({"meta": {"v": 1}, "data": RECORDS},
                                                        "data")])
def test_streamed_and_in_memory_agree(tmp_path, monkeypatch, doc, path):
    f = tmp_path / "big.json"
    f.write_text(json.dumps(doc, indent=1))
    whole = probe.probe_file(f).details
    monkeypatch.setattr(probe, "STREAM_BYTES", 1024)
    monkeypatch.setattr(load, "STREAM_BYTES", 1024)
    streamed = probe.probe_file(f).details
    assert streamed["records"] == whole["records"] == 300
    assert streamed.get("records_path") == whole.get("records_path") == path
    records = list(load.iter_records(f, streamed))
    assert records == RECORDS  # floats stay floats, order kept
    design = infer_schema(load.sample_records(f, streamed, 50), "big", total=300)
    assert design.record_count == 300 and {x.name for x in design.fields} >= {"id", "price"}


def test_ndjson_is_read_line_by_line_with_bad_lines_as_rejects(tmp_path):
    f = tmp_path / "events.ndjson"
    f.write_text("\ufeff" + "\n".join(json.dumps(r) for r in RECORDS[:5]) + "\n{oops\n"
                 + json.dumps({"id": 99, "text": "line\u2028separator inside"}) + "\n")
    details = probe.probe_file(f).details
    assert details["format"] == "ndjson" and details["records"] == 6
    assert details["invalid_lines"] == [6]
    items = list(load.iter_records(f, details))
    rejects = [i for i in items if isinstance(i, load.Reject)]
    assert len(items) == 7 and [r.line for r in rejects] == [6]
    assert items[-1]["text"] == "line\u2028separator inside"  # not split at U+2028


def test_the_probes_fast_parser_gives_jsons_verdict_on_every_line():
    """The probe reads NDJSON lines with orjson and falls back to json: the verdict
    (valid or not) and the top-level type are json's, line by line, for what the two
    parsers treat differently."""
    from media_assets.lib.files.json_read import PARSE_ERRORS, shape_of_line

    lines = ['{"a": 1, "a": 2}', '{"x": NaN}', '{"x": -Infinity}', '{"x": "\\ud800"}',
             '123456789012345678901234567890', '{"x": 18446744073709551616}',
             "[" * 600 + "]" * 600, "[" * 5000 + "]" * 5000, '{"x": 1', "nul\x00",
             '"\u2028"', "  [1, 2]  ", "{'single': 1}", "[1,]", "tru", "1e400"]

    def verdict(parse, text):
        try:
            return type(parse(text)).__name__.replace("float", "int")
        except PARSE_ERRORS:
            return "invalid"

    assert [verdict(shape_of_line, t) for t in lines] == [verdict(json.loads, t)
                                                          for t in lines]


def test_the_probes_pass_over_a_file_gives_each_lines_verdict_as_the_line_reader_does(
        tmp_path):
    """`ndjson_shapes` (the probe's fast pass) and `ndjson_lines` with `shape_of_line` agree
    on every line's number, verdict and type: a BOM, blank and whitespace-only lines (a
    no-break space too), CRLF and a lone CR, U+2028 inside a string, invalid UTF-8, NaN,
    deep and long lines."""
    from media_assets.lib.files.json_read import ndjson_lines, ndjson_shapes, shape_of_line

    lines = [b'\xef\xbb\xbf{"a": 1}', b"", b"   ", "\u00a0".encode(), b'{"x": NaN}',
             b'[1, 2]\r', b'"lone\rcr"', '{"t": "a\u2028b"}'.encode(), b'{"bad": "\xff\xfe"}',
             b"5", b"1e400", b"123456789012345678901234567890", b"[" * 600 + b"]" * 600,
             b"[" * 300 + b"]" * 300, b'{"long": "' + b"x" * 2000 + b'"}', b"{oops", b"nul\x00",
             b"[" * 5000 + b"]" * 5000,
             b'{"x": -Infinity}', b"\t", b"null"]
    path = tmp_path / "odd.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = [(line.number, None if line.error else type(line.value))
                for line in ndjson_lines(path, "utf-8", shape_of_line)]
    assert list(ndjson_shapes(path, "utf-8")) == expected
    # The lone CR ends a line (universal newlines), so both halves are invalid; then {oops,
    # the NUL and the 5000-deep line.
    assert [n for n, kind in expected if kind is None] == [7, 8, 17, 18, 19]


# -- NDJSON loaded by the server (raw lines by COPY, cast in SQL) -----------------------------
def _messy_ndjson(path):
    """Lines with every value the typed columns must refuse or repair."""
    good = [{"id": i, "price": i + 0.25, "at": "2024-03-01T10:00:00" + ("Z" if i % 2 else ""),
             "day": "2024-03-02", "ref": f"8c6f1b9e-3a2d-4c5e-9f10-{i:012d}",
             "status": ["new", "paid"][i % 2], "ok": bool(i % 2), "score": i / 3,
             "name": f"n{i}", "meta": {"k": i}} for i in range(40)]
    lines = [json.dumps(r) for r in good]
    lines += [
        '{"id": 40, "price": 1.5, "score": NaN, "name": "nan score", "meta": {"x": Infinity}}',
        '{"id": 41, "price": 2.5, "name": "bad\\u0000name"}',          # NUL in text: rejected
        '{"id": 42, "price": 3.5, "name": "lone \\ud800 surrogate"}',  # repaired to U+FFFD
        '{"id": "forty-three", "price": 4.5}',                         # wrong type
        '{"id": 44, "day": "2024-02-30"}',                             # not a date
        '{"id": 45, "ref": "not-a-uuid"}',
        '{"id": 46, "at": "yesterday"}',
        '{"id": 47, "price": 1e400, "score": -Infinity}',              # infinities: null
        '{"id": 48, "ok": "yes"}',
        '{"id": 49, "name": "x", "new_field": [1, 2], "other": {"a": 1}}',  # to _extra
        "{broken",
        "",
        '{"id": 50, "name": "ünïcödé ✓", "meta": {"deep": [[[1]]]}}',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _loaded(catalog, path, server_side, name, sample=40):
    import sqlalchemy as sa

    details = probe.probe_file(path).details
    design = infer_schema(load.sample_records(path, details, sample), name,
                          total=details["records"])
    result = load.load_table(catalog.engine, design, load.iter_records(path, details),
                             server_side=server_side)
    with catalog.engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(sa.text(
            f'SELECT * FROM json_data."{result.table}" ORDER BY _row'))]
        rejects = conn.execute(sa.text(
            f'SELECT record, reason FROM json_data."{result.table}__rejects" ORDER BY record'
        )).all()
    return design, result, rows, rejects


def test_server_load_matches_the_python_path(catalog, tmp_path):
    path = _messy_ndjson(tmp_path / "messy.ndjson")
    design, fast, rows, rejects = _loaded(catalog, path, True, "messy_server")
    _, slow, rows_py, rejects_py = _loaded(catalog, path, False, "messy_python")
    assert design.storage_type == "hybrid"
    assert (fast.row_count, fast.reject_count, fast.input_count) == \
        (slow.row_count, slow.reject_count, slow.input_count) == (45, 7, 52)
    # Same values, column by column (the server path numbers rows by line: _row differs
    # once the blank and the broken line are behind).
    strip = [{k: v for k, v in r.items() if k != "_row"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "_row"} for r in rows_py]
    reasons = [r.reason for r in rejects]
    assert [r.split(":")[0] for r in reasons] == [r.split(":")[0] for r in
                                                   (x.reason for x in rejects_py)], reasons
    by_id = {r["id"]: r for r in rows}
    assert by_id[40]["score"] is None and by_id[40]["_extra"] == {"meta": {"x": None}}
    assert by_id[42]["name"] == "lone \ufffd surrogate"
    assert by_id[47]["price"] is None and by_id[47]["score"] is None
    assert by_id[0]["at"].isoformat() == "2024-03-01T10:00:00+00:00"  # naive read as UTC
    assert by_id[49]["_extra"] == {"new_field": [1, 2], "other": {"a": 1}}
    assert by_id[50]["name"] == "ünïcödé ✓"
    assert any("NUL" in r for r in reasons) and any("expected integer" in r for r in reasons)
    assert any("'2024-02-30' is not a date" in r for r in reasons), reasons
    assert any("'not-a-uuid' is not a UUID" in r for r in reasons), reasons
    assert any("'yesterday' is not a timestamp" in r for r in reasons), reasons
    assert any("expected boolean" in r for r in reasons), reasons
    assert [r.record for r in rejects if "invalid JSON" in r.reason] == [51]
    assert "line 51: invalid JSON" in next(r for r in reasons if "invalid JSON" in r)


def _both_paths_agree(catalog, tmp_path, lines: list[str], name: str):
    """Load `lines` by the server path and by the Python path; assert the same rows (but
    `_row`) and rejects; return the server path's (design, rows, rejects)."""
    path = tmp_path / f"{name}.ndjson"
    path.write_text("\n".join(lines) + "\n")
    design, fast, rows, rejects = _loaded(catalog, path, True, f"{name}_server")
    _, slow, rows_py, rejects_py = _loaded(catalog, path, False, f"{name}_python")
    assert (fast.row_count, fast.reject_count) == (slow.row_count, slow.reject_count)
    strip = [{k: v for k, v in r.items() if k != "_row"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "_row"} for r in rows_py]
    assert [r.reason for r in rejects] == [r.reason for r in rejects_py]
    return design, rows, rejects


@pytest.fixture
def passes(monkeypatch) -> list[str]:
    """The lines each checked pass of the server load took (its `only` filter), in order."""
    from media_assets.lib.json_docs import server_load

    seen: list[str] = []
    checked = server_load._convert_checked

    def spy(*args, only="true", **kw):
        seen.append(only)
        return checked(*args, only=only, **kw)

    monkeypatch.setattr(server_load, "_convert_checked", spy)
    return seen


@pytest.mark.parametrize("case", ["misfits only", "a value that does not convert"])
def test_the_optimistic_pass_and_its_fallback_give_the_python_paths_rows(
        catalog, tmp_path, passes, case):
    """Valid JSON lines go through the optimistic pass (types tested, casts unchecked);
    what it sets aside (wrong types, non-objects, lines Python judged) gets its reason
    from the checked pass. A value of the right type that does not convert (2024-02-30)
    stops the optimistic statement and the checked pass takes every line. Either way the
    rows and rejects are the Python path's."""
    lines = [json.dumps({"id": i, "name": f"n{i}", "day": "2024-03-02", "n": i / 4})
             for i in range(40)]
    lines += ['{"id": "forty", "name": "x"}',            # a type that does not match
              '[1, 2, 3]',                                # not an object
              '{"id": 41, "name": "nan", "n": NaN}',       # judged by Python: null
              '{"id": 42, "name": "bad\\u0000name"}',     # judged by Python: rejected
              '{"id": 43, "name": "x", "day": "today"}']  # not ISO: set aside
    if case == "a value that does not convert":
        lines.append('{"id": 44, "name": "y", "day": "2024-02-30"}')
    design, rows, rejects = _both_paths_agree(catalog, tmp_path, lines, "fast")
    assert any("expected integer" in r.reason for r in rejects)
    assert any("'today' is not a date" in r.reason for r in rejects)
    if case == "misfits only":  # the checked pass saw only the lines set aside
        assert passes == ["n IN (SELECT n FROM json_stage_redo)"]
    else:
        assert passes == ["true"]
        assert any("'2024-02-30' is not a date" in r.reason for r in rejects)


def test_sql_design_rejects_fields_not_in_the_table_on_the_server(catalog, tmp_path):
    path = tmp_path / "flat.ndjson"
    lines = [json.dumps({"id": i, "label": f"l{i}"}) for i in range(30)]
    lines.append(json.dumps({"id": 30, "label": "x", "surprise": 1}))
    path.write_text("\n".join(lines) + "\n")
    design, result, rows, rejects = _loaded(catalog, path, True, "flat_server", 30)
    assert design.storage_type == "sql" and result.row_count == 30
    assert rejects == [(31, "fields not in the table: 'surprise'")]


def test_a_server_without_pg_input_is_valid_loads_in_python(catalog, tmp_path, monkeypatch):
    """PostgreSQL before 16 lacks pg_input_is_valid: the Python path loads the file."""
    from media_assets.lib.json_docs import server_load

    monkeypatch.setattr(server_load, "MIN_SERVER_VERSION", 10**9)
    path = _messy_ndjson(tmp_path / "old.ndjson")
    staged = []
    monkeypatch.setattr(server_load, "stage_lines", lambda *a: staged.append(a))
    _, result, rows, rejects = _loaded(catalog, path, True, "messy_old_server")
    assert not staged and (result.row_count, result.reject_count) == (45, 7)
    assert len(rows) == 45 and len(rejects) == 7


def test_a_deeply_nested_line_is_one_reject_on_the_server_path(catalog, tmp_path):
    """A line nested past Python's parser limit is rejected with its reason (PostgreSQL's
    parser would stop the whole statement at its stack limit); the others load."""
    path = tmp_path / "deep.ndjson"
    lines = [json.dumps({"id": i, "tree": []}) for i in range(4)]
    lines.insert(2, '{"id": 99, "tree": ' + "[" * 50_000 + "]" * 50_000 + "}")
    path.write_text("\n".join(lines) + "\n")
    _, result, rows, rejects = _loaded(catalog, path, True, "deep_server", 4)
    assert (result.row_count, result.reject_count) == (4, 1)
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    assert rejects[0].record == 3 and "line 3: invalid JSON" in rejects[0].reason


@pytest.mark.parametrize("case", ["nulls, scalars and fractions", "a number under float8",
                                  "a number past numeric", "integers at int8's edge"])
def test_nulls_scalar_lines_and_odd_numbers_load_as_the_python_path_does(
        catalog, tmp_path, passes, case):
    """A JSON null in a typed column is SQL NULL (its cast would stop the statement); a
    line that is a bare 5 or "x", and 1.5 in an integer column, are set aside for the
    checked pass, not a reason to redo every line. 1e-400 is 0.0 as Python reads it, and
    a number PostgreSQL cannot hold even as jsonb sends the file to the Python path."""
    lines = [json.dumps({"id": i, "n": i * 3, "ok": i % 2 == 0, "score": i / 4,
                         "tag": f"t{i}", **({"meta": {"x": i}} if i % 4 == 0 else {})})
             for i in range(40)]
    lines += ['{"id": 41, "n": null, "ok": null, "score": null, "tag": null}',
              '5', '"x"',
              '{"id": 42, "n": 1.5, "ok": true, "score": 1.0, "tag": "a"}',
              '{"id": 43, "n": 3, "ok": false, "score": 0.5, "tag": "b", "more": 1}']
    if case == "a number under float8":
        lines.append('{"id": 44, "n": 4, "ok": true, "score": 1e-400, "tag": "c"}')
    if case == "a number past numeric":
        lines.append('{"id": 45, "n": 5, "ok": true, "score": 1e200000, "tag": "d"}')
    if case == "integers at int8's edge":  # 19 digits fit; 2**63 is refused; 2.0 is a float
        lines += ['{"id": 46, "n": 9223372036854775807, "ok": true, "score": 1, "tag": "e"}',
                  '{"id": 47, "n": -9223372036854775808, "ok": true, "score": 1, "tag": "e"}',
                  '{"id": 48, "n": 9223372036854775808, "ok": true, "score": 1, "tag": "e"}',
                  '{"id": 49, "n": 2.0, "ok": true, "score": 1, "tag": "e"}']
    design, rows, rejects = _both_paths_agree(catalog, tmp_path, lines, "odd")
    assert design.storage_type == "hybrid"
    by_id = {r["id"]: r for r in rows}
    assert [by_id[41][k] for k in ("n", "ok", "score", "tag")] == [None] * 4
    assert by_id[43]["_extra"] == {"more": 1}
    assert any("expected integer, got float" in r.reason for r in rejects)
    if case == "a number under float8":  # the optimistic cast stops: the checked pass
        assert by_id[44]["score"] == 0.0 and passes == ["true"]
    elif case == "a number past numeric":  # no jsonb holds it: the Python path
        assert by_id[45]["score"] is None  # Python reads an infinity
    elif case == "integers at int8's edge":  # 2**63 stops the optimistic cast
        assert (by_id[46]["n"], by_id[47]["n"]) == (2**63 - 1, -2**63)
        assert 48 not in by_id and 49 not in by_id and passes == ["true"]
    else:
        assert passes == ["n IN (SELECT n FROM json_stage_redo)"]


# -- large files: two connections convert the two halves at once ------------------------------
def _work_tables(catalog) -> list[str]:
    """json_data tables of a load in progress (or left by one): `__new_`, `__stage_`,
    `__rej_`."""
    import sqlalchemy as sa

    with catalog.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'json_data' AND "
            "(tablename LIKE '%\\_\\_new\\_%' OR tablename LIKE '%\\_\\_stage\\_%' "
            "OR tablename LIKE '%\\_\\_rej\\_%')"))]


@pytest.mark.parametrize("case", ["messy, with an invalid line", "misfits in both halves",
                                  "a number past numeric in the second half"])
def test_a_large_file_converted_in_two_halves_gives_the_same_table(catalog, tmp_path,
                                                                   monkeypatch, case):
    """Two connections convert the halves of the staged lines at once (a file from 16 MB);
    the rows, `_row` numbers and rejects are those one connection gives, the work tables
    are gone after the swap, and the load lock is released."""
    import sqlalchemy as sa

    from media_assets.lib.json_docs import server_load

    if case.startswith("messy"):
        path = _messy_ndjson(tmp_path / "messy.ndjson")
    else:
        # Misfits after the 40 lines the design is inferred from, one in each half.
        lines = [json.dumps({"id": i, "n": i * 3, "tag": f"t{i}"}) for i in range(120)]
        lines[45] = '{"id": 45, "n": 1.5, "tag": "fraction"}'
        lines[100] = '{"id": 100, "n": "fifty", "tag": "a word"}'
        if case.startswith("a number past"):  # no jsonb holds it: the Python path
            lines[110] = '{"id": 110, "n": 4, "tag": "x", "big": 1e200000}'
        path = tmp_path / "halves.ndjson"
        path.write_text("\n".join(lines) + "\n")
    _, one, rows_one, rejects_one = _loaded(catalog, path, True, "halves_one")
    monkeypatch.setattr(server_load, "PARALLEL_MIN_BYTES", 0)
    parts: list = []
    real = server_load.convert_part

    def spy(*args, **kw):
        parts.append(args[7])
        return real(*args, **kw)

    monkeypatch.setattr(server_load, "convert_part", spy)
    _, two, rows_two, rejects_two = _loaded(catalog, path, True, "halves_two")
    last = len(path.read_text().splitlines())
    assert sorted(parts) == [(1, last // 2), (last // 2 + 1, last)]
    assert (two.row_count, two.reject_count) == (one.row_count, one.reject_count)
    assert rows_two == rows_one and rejects_two == rejects_one
    if not case.startswith("messy"):
        past = {111} if case.startswith("a number past") else set()  # as Python reads it
        assert {r.record for r in rejects_two} == {46, 101} | past
    assert _work_tables(catalog) == []
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0


def test_a_parallel_load_killed_midway_leaves_nothing_the_next_load_trips_on(catalog,
                                                                           tmp_path):
    """The parallel path commits its work tables before the swap, so a process killed
    between (kill -9, the kernel's OOM killer) leaves them, with their indexes. The next
    load of that table drops them under its lock (their index names would clash with its
    own) and loads; the old table stayed readable throughout."""
    import subprocess
    import sys
    import textwrap

    import sqlalchemy as sa

    path = tmp_path / "orders.ndjson"
    path.write_text("\n".join(json.dumps({"id": i, "status": ["a", "b"][i % 2]})
                              for i in range(500)) + "\n")
    first = _loaded(catalog, path, True, "orders_killed")[1]
    url = catalog.engine.url.render_as_string(hide_password=False)
    script = textwrap.dedent(f"""
        import os, sqlalchemy as sa
        from pathlib import Path
        from media_assets.lib.files import probe
        from media_assets.lib.json_docs import load, server_load
        from media_assets.lib.json_docs.schema import infer_schema
        server_load.PARALLEL_MIN_BYTES = 0
        real, calls = server_load.on_connections, []
        def die_after_the_indexes(connect, jobs):
            out = real(connect, jobs)
            calls.append(1)
            if len(calls) == 2:  # the halves, then the indexes: both committed
                os._exit(9)
            return out
        server_load.on_connections = die_after_the_indexes
        path = Path({str(path)!r})
        details = probe.probe_file(path).details
        design = infer_schema(load.sample_records(path, details, 40), "orders_killed",
                              total=details["records"])
        load.load_table(sa.create_engine({url!r}), design, load.iter_records(path, details))
    """)
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    left = _work_tables(catalog)
    assert any("__stage_" in t for t in left) and any("__new_" in t for t in left), left
    with catalog.engine.connect() as conn:  # readers still see the first load
        assert conn.execute(sa.text(
            f'SELECT count(*) FROM json_data."{first.table}"')).scalar() == 500
    again = _loaded(catalog, path, True, "orders_killed")[1]
    assert (again.table, again.row_count, again.reject_count) == (first.table, 500, 0)
    assert _work_tables(catalog) == []
