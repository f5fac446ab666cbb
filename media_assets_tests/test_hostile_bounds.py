"""Hostile input meets a bound: memory that stays flat whatever the nesting or the pixel
count, wide JSON that still loads, values PostgreSQL would take but that are not true
(NaN, latitude 4000°), and file names that only differ in bytes. Each test is named after
the behaviour it checks."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest

from media_assets.lib.files.json_depth import MAX_JSON_DEPTH, json_depth
from media_assets.lib.files.probe import ProbeError, probe_file


def _child(code: str, timeout: int = 120) -> dict:
    """Run `code` in a fresh interpreter whose address space is capped 1.5 GB above what
    its imports take (so a regression fails with MemoryError, not by taking the machine);
    it prints one JSON object, with `rss_growth_mb` from ru_maxrss."""
    prelude = textwrap.dedent("""
        import json, resource, sys
        from media_assets.lib.files.probe import probe_file, ProbeError, Limits
        from media_assets.lib import imaging
        def vm_kb():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
        cap = (vm_kb() + 1536 * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        def done(**kw):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(json.dumps({**kw, "rss_growth_mb": (peak - base) / 1024}))
    """)
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- JSON nesting ----------------------------------------------------------------------------
def test_a_32mb_json_nesting_100k_levels_is_refused_in_flat_memory(tmp_path):
    path = tmp_path / "deep.json"
    with open(path, "w") as fh:
        fh.write('{"pad": "' + "x" * (33 * 2**20) + '", "deep": ')
        fh.write("[" * 100_000 + "]" * 100_000 + "}")
    got = _child(f"""
        try:
            probe_file({str(path)!r})
            done(error=None)
        except ProbeError as exc:
            done(error=str(exc), status=exc.status)
    """)
    assert got["status"] == "failed" and "nested more than 512 levels" in got["error"], got
    assert got["rss_growth_mb"] < 64, got


@pytest.mark.parametrize("depth,refused", [(100_000, True), (MAX_JSON_DEPTH + 1, True),
                                           (MAX_JSON_DEPTH, False), (40, False)])
def test_json_nested_past_the_depth_limit_is_refused_with_a_reason(tmp_path, depth, refused):
    path = tmp_path / "nest.json"
    path.write_text('{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}")
    if refused:
        with pytest.raises(ProbeError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
            probe_file(path)
    else:
        assert probe_file(path).kind == "json"


def test_brackets_and_escaped_quotes_inside_strings_do_not_count_as_depth(tmp_path):
    doc = [{"s": "[[[[{{{{" * 200, "q": 'a\\"[[[' * 300, "b": "\\\\", "n": [[["x"]]]}]
    path = tmp_path / "strings.json"
    path.write_text(json.dumps(doc))
    assert json_depth(path) == 5  # list, object, and three lists under "n"
    assert probe_file(path).details["records"] == 1


# -- wide JSON and values that are not true --------------------------------------------------
def _load(catalog, records, name):
    import sqlalchemy as sa

    from media_assets.lib.json_docs.load import load_table
    from media_assets.lib.json_docs.schema import infer_schema

    design = infer_schema(records, name)
    result = load_table(catalog.engine, design, iter(records))
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT * FROM json_data."{result.table}" ORDER BY _row'))
        return design, result, [r._asdict() for r in rows]


@pytest.mark.parametrize("n", [1100, 1590])
def test_wide_integer_json_loads_without_row_too_big(catalog, n):
    records = [{f"f{j}": j * 1000 + i for j in range(n)} for i in range(3)]
    design, result, rows = _load(catalog, records, f"wide_int_{n}")
    assert result.row_count == 3 and result.reject_count == 0
    assert design.storage_type == "hybrid" and "8160-byte" in design.reasoning
    columns = [f for f in design.fields if f.column]
    assert 900 < len(columns) < n
    # Every value is there, in a column or in _extra.
    for i, row in enumerate(rows):
        values = {k: v for k, v in row.items() if k not in ("_row", "_extra")}
        values.update(row["_extra"])
        assert values == records[i]


def test_a_thousand_short_texts_load_as_columns_and_json(catalog):
    records = [{f"t{j}": f"v{i}-{j}-xxxxx" for j in range(1000)} for i in range(4)]
    design, result, rows = _load(catalog, records, "wide_text")
    assert (result.row_count, result.reject_count) == (4, 0)
    assert design.storage_type in ("hybrid", "jsonb")
    got = {k: v for k, v in rows[2].items() if k not in ("_row", "_extra", "_doc")}
    got.update(rows[2].get("_extra") or rows[2].get("_doc") or {})
    assert got == records[2]


def test_a_narrow_json_still_loads_as_plain_columns(catalog):
    records = [{"id": i, "name": f"n{i}", "price": 1.5 + i} for i in range(5)]
    design, result, _ = _load(catalog, records, "narrow")
    assert design.storage_type == "sql" and result.row_count == 5


def test_nan_and_infinity_are_null_in_typed_columns(catalog):
    text = ('[{"id": 1, "x": 1.5, "n": 7}, {"id": 2, "x": NaN, "n": Infinity},'
            ' {"id": 3, "x": -Infinity, "n": 3}, {"id": 4, "x": 2.0, "n": 4}]')
    records = json.loads(text)
    design, result, rows = _load(catalog, records, "nan_typed")
    kinds = {f.name: (f.column, f.pg_type) for f in design.fields}
    assert kinds["x"] == (True, "double precision")
    assert (result.row_count, result.reject_count) == (4, 0)
    assert [r["x"] for r in rows] == [1.5, None, None, 2.0]
    assert rows[1]["n"] is None


@pytest.mark.parametrize("gps,note", [((4000.0, 10.0), "latitude 4000° is outside -90..90"),
                                      ((45.0, -500.0), "longitude -500° is outside -180..180"),
                                      ((-33.8568, 151.2153), None)])
def test_gps_out_of_range_is_null_with_a_note(tmp_path, gps, note):
    from media_assets.lib.samples import solid_image

    path = solid_image(tmp_path / "where.jpg", exif={"gps": gps})
    exif = probe_file(path).details["exif"]
    if note:
        assert exif["gps"] is None and note in exif["gps_note"], exif
    else:
        assert exif["gps"]["lat"] == pytest.approx(gps[0], abs=1e-4) and "gps_note" not in exif


# -- names that differ only in bytes ---------------------------------------------------------
def test_a_byte_name_and_its_literal_escape_are_two_catalogued_files(catalog, tmp_path):
    import os

    from media_assets.lib.files.inbox import register, walk
    from media_assets.lib.files.probe import Limits
    from media_assets.lib.files.record import probe_and_record
    from media_assets.lib.files.store import FileStore, display_path

    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/x\xff.txt"         # the byte 0xFF
    literal = folder / "x\\xff.txt"                   # the four characters \ x f f
    with open(raw, "wb") as fh:
        fh.write(b"the byte\n")
    literal.write_text("the characters\n")
    (folder / "back\\slash.txt").write_text("a backslash\n")
    shown = {display_path(os.fsdecode(raw)), display_path(str(literal))}
    assert len(shown) == 2, shown

    store = FileStore(catalog.engine)
    first, _ = register(store, walk([folder]))
    assert len(first.new_keys) == 3, first
    outcomes = probe_and_record(store, first.new_keys, Limits())
    assert sorted(o.status for o in outcomes) == ["ok"] * 3
    by_bytes = {os.fsencode(store.paths_of(k)[0]): k for k in first.new_keys}
    assert raw in by_bytes and os.fsencode(literal) in by_bytes
    again, _ = register(store, walk([folder]))
    assert (again.new_keys, again.unchanged) == ([], 3), again
    assert store.pending_keys() == []


def test_migration_011_gives_old_display_forms_the_one_to_one_form(catalog):
    """A catalogue written before sql/011 (backslashreplace only) is brought over, and a
    file is found again under its new form."""
    import os
    from pathlib import Path

    import sqlalchemy as sa

    from media_assets.lib.db import SQL_DIR
    from media_assets.lib.files.store import display_path

    rows = [("/in/x\\xff", None),                       # the four characters, old form
            ("/in/\\xfe\\y", os.fsencode("/in/") + b"\xfe\\y"),  # byte 0xFE, then \y
            ("/in/plain ü", None)]
    keys = {path: f"{i:x}" * 16 for i, (path, _) in enumerate(rows, 10)}
    with catalog.engine.begin() as conn:
        for path, raw in rows:
            conn.execute(sa.text(
                "INSERT INTO media_files (key, sha256, size_bytes, primary_path) "
                "VALUES (:k, :s, 1, :p)"), {"k": keys[path], "s": keys[path] * 4, "p": path})
            conn.execute(sa.text(
                "INSERT INTO media_paths (path, path_bytes, key, size_bytes, status) "
                "VALUES (:p, :b, :k, 1, 'registered')"), {"p": path, "b": raw, "k": keys[path]})
        sql = next(Path(SQL_DIR).glob("011_*.sql")).read_text()
        conn.connection.cursor().execute(sql)
        got = dict(conn.execute(sa.text("SELECT key, path FROM media_paths")).all())
        primary = dict(conn.execute(sa.text("SELECT key, primary_path FROM media_files")).all())
        raw = dict(conn.execute(sa.text("SELECT key, path_bytes FROM media_paths")).all())
    old = {keys[p]: p for p in keys}
    # The exact bytes are kept for every escaped form: the file is opened by them.
    assert bytes(raw[keys["/in/x\\xff"]]) == b"/in/x\\xff"
    assert bytes(raw[keys["/in/\\xfe\\y"]]) == rows[1][1] and raw[keys["/in/plain ü"]] is None
    got = {old[k]: v for k, v in got.items()}
    assert got["/in/x\\xff"] == display_path("/in/x\\xff") == "/in/x\\\\xff"
    assert got["/in/\\xfe\\y"] == display_path(os.fsdecode(rows[1][1])) == "/in/\\xfe\\\\y"
    assert got["/in/plain ü"] == "/in/plain ü"
    assert {old[k]: v for k, v in primary.items()} == got


# -- images larger than the decode bound -----------------------------------------------------
def big_png(path, w: int, h: int, pixel: bytes = bytes((90, 140, 200)), depth: int = 8,
            colour: int = 2):
    """A solid PNG of w x h pixels (RGB by default) written in about a second, a few
    hundred KB: one compressed run of rows, made independent of what came before it (a
    full flush) and repeated; the checksum is computed over what the rows really are."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    k = 256
    rows = (b"\x00" + pixel * w) * k
    comp = zlib.compressobj(9)
    first = comp.compress(rows) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(rows) + comp.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(h, k)
    last = rows[: rest * (len(rows) // k)]
    tail = comp.compress(last) + comp.flush()[:-4]  # its own checksum is for other data
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(rows, adler)
    adler = zlib.adler32(last, adler)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n"
                 + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)))
        fh.write(chunk(b"IDAT", first + repeat * (n - 1) + tail + struct.pack(">I", adler)))
        fh.write(chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("w,h", [(9000, 8000), pytest.param(17000, 14650, marks=pytest.mark.slow)])
def test_a_png_over_the_decode_bound_is_probed_and_reduced_in_flat_memory(tmp_path, w, h):
    """72 megapixels (288 MB if decoded whole) and the issue's 249 (1 GB): ingest's probe
    and the models' reduced decode stay under 100 MB, and the picture is the picture."""
    path = big_png(tmp_path / "big.png", w, h)
    got = _child(f"""
        imaging.apply_pixel_limit(250_000_000)
        probe = probe_file({str(path)!r}, Limits())
        img = imaging.open_reduced({str(path)!r}, 448)
        done(size=[probe.details["width"], probe.details["height"]], reduced=list(img.size),
             pixel=list(img.getpixel((img.width // 2, img.height - 1))))
    """, timeout=300)
    assert got["size"] == [w, h] and max(got["reduced"]) == 448, got
    assert got["pixel"] == [90, 140, 200], got
    assert got["rss_growth_mb"] < 100, got


def test_a_banded_png_decodes_exactly_as_a_whole_decode(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from media_assets.lib import imaging

    monkeypatch.setattr(imaging, "BAND_PIXELS", 4000)  # many bands in a small picture
    rng = np.random.default_rng(7)
    noise = (np.cumsum(rng.integers(0, 255, (211, 157, 4), dtype=np.uint8), axis=1) // 5)
    for mode in ("RGB", "RGBA", "L", "P"):
        im = Image.fromarray(noise.astype(np.uint8), "RGBA").convert(
            "RGB" if mode == "P" else mode)
        im = im.quantize(50) if mode == "P" else im
        im.save(tmp_path / f"{mode}.png", optimize=True)  # all five PNG row filters
        with Image.open(tmp_path / f"{mode}.png") as whole:
            whole.load()
            expected = whole.convert("RGB")
        with Image.open(tmp_path / f"{mode}.png") as img:
            assert imaging.png_bands_ok(img)
            got = imaging._reduced_bands(img, 1)
        assert got.tobytes() == expected.tobytes(), mode


def test_a_truncated_png_over_the_bound_fails_with_a_reason(tmp_path):
    path = big_png(tmp_path / "cut.png", 9000, 8000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProbeError, match="truncated|broken") as exc:
        probe_file(path)
    assert exc.value.status == "failed"


def test_an_image_over_the_bound_that_cannot_be_decoded_reduced_is_refused(tmp_path):
    # 16-bit grey: Pillow decodes it only whole, so above the bound it is refused.
    path = big_png(tmp_path / "deep16.png", 9000, 8000, pixel=b"\x12\x34", depth=16,
                   colour=0)
    with pytest.raises(ProbeError, match="above 64 megapixels only JPEG") as exc:
        probe_file(path)
    assert exc.value.status == "refused"


def test_one_deeply_nested_ndjson_line_is_one_invalid_line_not_a_failed_file(tmp_path):
    path = tmp_path / "lines.ndjson"
    lines = [json.dumps({"id": i}) for i in range(5)]
    lines.insert(2, '{"deep": ' + "[" * 5000 + "]" * 5000 + "}")
    path.write_text("\n".join(lines) + "\n")
    details = probe_file(path).details
    assert details["format"] == "ndjson" and details["records"] == 5
    assert details["invalid_lines"] == [3]


def test_a_table_past_a_postgresql_limit_fails_its_load_with_the_reason(catalog):
    """A design forced past the row size (as an older design stored before the width rule
    could be) fails the load with a reason naming the limit, and leaves nothing behind."""
    from media_assets.lib.json_docs.load import load_table
    from media_assets.lib.json_docs.schema import infer_schema

    records = [{f"f{j}": j for j in range(1200)} for _ in range(2)]
    design = infer_schema(records, "forced_wide")
    for f in design.fields:
        f.column = True
    design.storage_type = "sql"
    with pytest.raises(ValueError, match="does not fit PostgreSQL's limits.*row is too big"):
        load_table(catalog.engine, design, iter(records))
