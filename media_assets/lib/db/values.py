"""Values made safe for PostgreSQL before they are written.

PostgreSQL refuses, in text and jsonb: NUL (`\\u0000`), lone UTF-16 surrogates (what Python
keeps for undecodable bytes and for `"\\ud800"` in JSON), and, in jsonb, NaN and infinities.
Real files carry all of them (EXIF with NUL padding, GPS 0/0 rationals, JSON exports from
JavaScript). One such value must not fail a file, let alone a batch: it is repaired here,
and the repair is reported so the caller can note it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(s: str, notes: set[str] | None = None) -> str:
    """`s` without NUL, with lone surrogates replaced by U+FFFD."""
    if "\x00" in s:
        s = s.replace("\x00", "")
        if notes is not None:
            notes.add("NUL characters removed")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            # In a Python str every surrogate is a lone one (pairs are decoded as one code
            # point); undecodable file-name bytes arrive this way too.
            s = _SURROGATE.sub(REPLACEMENT, s)
            if notes is not None:
                notes.add("invalid Unicode replaced")
    return s


def pg_safe(value: Any, notes: set[str] | None = None) -> Any:
    """A copy of a JSON-like value that PostgreSQL accepts as jsonb: strings (keys too)
    through `safe_text`, NaN and infinities as null, other objects as their text."""
    if isinstance(value, str):
        return safe_text(value, notes)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if notes is not None:
            notes.add("NaN or infinity stored as null")
        return None
    if isinstance(value, dict):
        return {safe_text(str(k), notes): pg_safe(v, notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [pg_safe(v, notes) for v in value]
    return safe_text(str(value), notes)


def json_text(value: Any, notes: set[str] | None = None) -> str:
    """JSON text PostgreSQL accepts as jsonb. The common case costs one `json.dumps`; only a
    document with something to repair is walked."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
        if "\\u0000" not in text:
            text.encode("utf-8")
            return text
    except (ValueError, UnicodeEncodeError):
        pass
    return json.dumps(pg_safe(value, notes), ensure_ascii=False, default=str)
