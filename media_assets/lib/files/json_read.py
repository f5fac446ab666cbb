"""Reading JSON and NDJSON files, for the probe (shape and counts) and the loader (records).

One reader: both open the file as hashing does (`inbox.open_regular`: no symlink swapped
in is followed, no FIFO blocks), read NDJSON a line at a time with the same rules (the BOM
of the first line dropped, blank lines skipped, each line parsed on its own), and switch to
a stream (ijson) above the same size.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from media_assets.lib.files.inbox import open_regular

# A JSON document above this is read in a stream (ijson): memory stays bounded by the
# largest record, not the file. Below it, json.loads is faster.
STREAM_BYTES = 32 * 1024 * 1024
PARSE_ERRORS = (json.JSONDecodeError, RecursionError)  # a line nested too deeply: invalid


@dataclass(frozen=True)
class Line:
    """One non-blank NDJSON line: its value, or why it does not parse."""

    number: int  # 1-based
    text: str
    value: Any = None
    error: Exception | None = None


def open_binary(path: str | Path):
    return open_regular(str(path))


def open_text(path: str | Path, encoding: str):
    return io.TextIOWrapper(open_regular(str(path)), encoding=encoding, errors="replace")


def shape_of_line(text: str) -> Any:
    """An NDJSON line parsed for the probe, which needs only its verdict and its top-level
    type: orjson (about 3x json's speed, most of the probe's time on a large file), or
    `json` where orjson refuses (NaN, lone surrogates: `json` accepts them) and where the
    two could disagree on depth (a long line of many brackets), so each verdict is `json`'s.
    Not for values: orjson reads an integer past 64 bits as a float."""
    if len(text) > 1000 and text.count("[") + text.count("{") > 400:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def ndjson_lines(path: str | Path, encoding: str,
                 parse: Callable[[str], Any] = json.loads) -> Iterator[Line]:
    """Each non-blank line of an NDJSON file, parsed on its own (by `parse`)."""
    with open_text(path, encoding) as fh:
        for number, text in enumerate(fh, 1):
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            try:
                yield Line(number, text, parse(text))
            except PARSE_ERRORS as exc:
                yield Line(number, text, error=exc)


def ndjson_shapes(path: str | Path, encoding: str) -> Iterator[tuple[int, type | None]]:
    """(line number, its value's type, or None when it does not parse) for each non-blank
    line of an NDJSON file: `shape_of_line`'s verdicts, read as `ndjson_lines` reads the
    lines. The probe's pass over a whole file, so written for speed: no `Line` per line,
    orjson called directly for lines that cannot be too deep (0.82 -> 0.37 s for 400k
    lines)."""
    loads = orjson.loads
    with open_text(path, encoding) as fh:
        for number, text in enumerate(fh, 1):
            if number == 1:
                text = text.lstrip("\ufeff")
            try:
                value = loads(text) if len(text) <= 1000 else shape_of_line(text)
            except orjson.JSONDecodeError:  # json's verdict (NaN, lone surrogates), or blank
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except PARSE_ERRORS:
                    yield number, None
                    continue
            except PARSE_ERRORS:
                if text.strip():
                    yield number, None
                continue
            yield number, type(value)


def read_bytes(path: str | Path) -> bytes:
    with open_binary(path) as fh:
        return fh.read()
