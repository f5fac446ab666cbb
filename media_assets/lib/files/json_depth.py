"""How deeply a JSON document nests, found in one pass over its bytes in constant memory.

Parsers keep something per open level: ijson's prefixes make that grow with the square of
the depth (100k levels inside a 32 MB file took 5.7 GB), and Python's `json` recurses. This
scan runs before any parser sees a UTF-8 document: brackets outside strings are counted in
1 MB blocks with numpy, so memory is a few block-sized arrays whatever the depth or size.

Strings are followed as JSON defines them (a quote preceded by an odd run of backslashes is
escaped). On invalid JSON the count is exact up to the first invalid byte, which is as far
as a parser gets before it stops, so a parser never sees more depth than the scan reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_JSON_DEPTH = 512  # deeper documents are refused before parsing (README "Memory bounds")
BLOCK = 1 << 20

# Every byte but the four that matter maps to 0 (bytes.translate runs at memory speed);
# numpy then works on those positions alone.
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = 1, 2, 3, 4
_TABLE = bytearray(256)
_TABLE[ord("[")] = _TABLE[ord("{")] = _OPEN
_TABLE[ord("]")] = _TABLE[ord("}")] = _CLOSE
_TABLE[ord('"')] = _QUOTE
_TABLE[ord("\\")] = _BACKSLASH
_TABLE = bytes(_TABLE)


def json_depth(path: str | Path, stop_above: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of arrays and objects in a UTF-8 JSON (or NDJSON) file; stops
    reading as soon as it passes `stop_above` and returns the depth reached then."""
    depth = deepest = 0
    in_string = 0
    backslashes = 0  # the run of backslashes that ended the previous block
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            marks = np.frombuffer(block.translate(_TABLE), np.uint8)
            pos = np.flatnonzero(marks)
            if not len(pos):
                backslashes = 0
                continue
            kind = marks[pos]
            quote = kind == _QUOTE
            slash = kind == _BACKSLASH
            if slash.any():
                qidx = np.flatnonzero(quote)
                qpos = pos[qidx]
                # Only a quote right after a backslash can be escaped: few, in real JSON.
                after = marks[np.maximum(qpos - 1, 0)] == _BACKSLASH
                after[qpos == 0] = backslashes > 0
                escaped, backslashes = _escaped(qpos[after], pos[slash], backslashes,
                                                len(block))
                quote[qidx[after][escaped]] = False
            else:
                if backslashes % 2 and pos[0] == 0 and quote[0]:
                    quote[0] = False  # escaped by the run the last block ended with
                backslashes = 0
            # String quotes before each mark (carried state included): odd means inside.
            inside = (np.cumsum(quote, dtype=np.int64) - quote + in_string) % 2 == 1
            step = np.where(kind == _OPEN, 1, np.where(kind == _CLOSE, -1, 0)).astype(np.int64)
            step[inside | quote] = 0
            levels = np.cumsum(step) + depth
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
            in_string = (in_string + int(quote.sum())) % 2
            if deepest > stop_above:
                return deepest
    return deepest


def _escaped(quotes: np.ndarray, slashes: np.ndarray, carried: int,
             size: int) -> tuple[np.ndarray, int]:
    """Which quotes follow an odd run of backslashes, and the run the block ends with."""
    new_run = np.ones(len(slashes), bool)
    new_run[1:] = np.diff(slashes) != 1
    starts = slashes[new_run]
    ends = slashes[np.append(new_run[1:], True)]
    lengths = ends - starts + 1
    if starts[0] == 0:
        lengths[0] += carried  # a run that began in the block before
    k = np.minimum(np.searchsorted(ends, quotes - 1), len(ends) - 1)
    escaped = (ends[k] == quotes - 1) & (lengths[k] % 2 == 1)
    if len(quotes) and quotes[0] == 0 and carried % 2 == 1:
        escaped[0] = True
    return escaped, int(lengths[-1]) if ends[-1] == size - 1 else 0



def too_deep_message(depth: int, limit: int = MAX_JSON_DEPTH) -> str:
    return (f"JSON nested more than {limit} levels deep (at least {depth}): refused before "
            "parsing, since a parser's memory grows with the depth")
