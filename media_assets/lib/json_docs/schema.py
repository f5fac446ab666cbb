"""Schema inference for JSON documents, and a storage design: SQL columns, JSONB, or both.

Per top-level field, from a sample of records (like DuckDB's `sample_size`): the types seen
(a union when more than one), nullable versus required (presence ratio), enums (few distinct
strings), formats inside strings (date, timestamp, UUID, email, URL), integer versus float
versus decimal, nested objects and arrays, and maps (objects whose keys vary from record to
record). Then the design: stable scalar fields become typed columns; nested, sparse or mixed
fields go to JSONB; `storage_type` is `sql` when every field is a column, `jsonb` when few are,
`hybrid` otherwise (columns plus an `_extra` JSONB column for the rest).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

MAX_ENUM_VALUES = 20
MAX_DISTINCT_TRACKED = 200
MAX_ENUM_VALUE_LEN = 64
REQUIRED_PRESENCE = 0.98
COLUMN_PRESENCE = 0.5      # rarer fields go to JSONB
MAX_COLUMNS = 1590         # PostgreSQL's limit is 1600, our own columns included
MAP_MIN_KEYS = 20          # an object field with this many distinct keys...
MAP_MAX_KEY_PRESENCE = 0.5  # ...each present in under half the records, is a map
MAX_DEPTH = 8              # deeper nesting is kept as JSONB without inspecting it
# PostgreSQL stores a row in one 8 KB page: 8160 bytes at most, header included ("row is
# too big" past it). Fixed-width values stay whole. Text, numeric and JSONB values longer
# than 24 bytes are moved out of line (TOAST) when a row is wide, leaving an 18-byte
# pointer, and shorter ones stay: so each costs at most 24 bytes, whatever its length.
# Columns are kept, in field order, while that widest possible row fits; the rest go to
# the _extra JSONB column. No record can then make a row too big.
ROW_LIMIT = 8160
ROW_BUDGET = 8000          # what a design may plan for: the rest is margin
VARLENA_MAX = 24
# pg type -> (bytes, alignment) for fixed-width types.
_FIXED = {"bigint": (8, 8), "double precision": (8, 8), "boolean": (1, 1), "date": (4, 4),
          "timestamptz": (8, 8), "uuid": (16, 1)}

_FORMATS = [
    ("uuid", re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12}$")),
    ("timestamp", re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                             r"(Z|[+-]\d{2}:?\d{2})?$")),
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")),
    ("url", re.compile(r"^https?://[^\s]+$")),
]
_MONEY = re.compile(r"(price|amount|cost|total|balance|fee|tax|usd|eur|gbp|salary|revenue)",
                    re.I)
PG_TYPES = {"boolean": "boolean", "integer": "bigint", "float": "double precision",
            "decimal": "numeric", "string": "text", "date": "date",
            "timestamp": "timestamptz", "uuid": "uuid", "email": "text", "url": "text",
            "enum": "text", "object": "jsonb", "array": "jsonb", "map": "jsonb",
            "mixed": "jsonb", "null": "jsonb", "bigint_overflow": "numeric"}


@dataclass
class FieldStats:
    name: str
    present: int = 0
    nulls: int = 0
    types: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    distinct: set = field(default_factory=set)
    distinct_overflow: bool = False
    max_len: int = 0
    max_scale: int = 0
    scales: set = field(default_factory=set)
    big_int: bool = False
    unique_values: bool = True
    sub_keys: Counter = field(default_factory=Counter)
    objects: int = 0
    depth_exceeded: bool = False


@dataclass
class FieldSchema:
    name: str
    type: str            # logical: integer, float, decimal, boolean, string, date, ..., mixed
    pg_type: str
    nullable: bool
    required: bool
    presence: float
    union: list[str] = field(default_factory=list)
    enum: list[str] | None = None
    format: str | None = None
    column: bool = True  # a typed column (else it lives in JSONB)
    unique: bool = False
    description: str = ""


@dataclass
class SchemaDesign:
    table_name: str
    storage_type: str  # sql | jsonb | hybrid
    reasoning: str
    fields: list[FieldSchema]
    indexes: list[dict]
    sample_size: int
    record_count: int

    def contract(self) -> dict:
        """The analyze-json-schema response (docs/contracts.md)."""
        return {"table_name": self.table_name, "storage_type": self.storage_type,
                "reasoning": self.reasoning,
                "fields": {f.name: f.description for f in self.fields},
                "indexes": self.indexes}

    def to_json(self) -> dict:
        return {**self.contract(), "columns": [asdict(f) for f in self.fields],
                "sample_size": self.sample_size, "record_count": self.record_count}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, Decimal)):
        if isinstance(value, Decimal) and value == value.to_integral_value() and \
                value.as_tuple().exponent == 0:
            return "integer"
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _scale(value: float | Decimal) -> int:
    """Digits after the decimal point as written: repr() of a float is the shortest text that
    reads back the same, so 19.99 -> 2 and 12.5 -> 1 without parsing JSON as Decimal."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0
    text = repr(value)
    if "e" in text or "E" in text or "inf" in text or "nan" in text:
        return 99  # scientific notation or special: not a decimal column
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def _depth(value: Any, limit: int) -> int:
    depth, level = 0, [value]
    while level and depth <= limit:
        nxt = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        if not nxt:
            break
        depth += 1
        level = nxt
    return depth


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def value_width(pg_type: str) -> tuple[int, int]:
    """(bytes, alignment) one value of the type takes in a row at most, once PostgreSQL
    has moved what it can out of line."""
    return _FIXED.get(pg_type, (VARLENA_MAX, 1))


def row_width(widths: list[tuple[int, int]], extra: bool) -> int:
    """Bytes of the widest row: header with null bitmap, `_row`, the columns in order with
    their alignment, and the `_extra` pointer."""
    natts = len(widths) + 1 + extra
    offset = _align(23 + -(-natts // 8), 8) + 8
    for size, alignment in widths:
        offset = _align(offset, alignment) + size
    return offset + (VARLENA_MAX if extra else 0)


def _fit_row(fields: list[FieldSchema]) -> list[str]:
    """Columns beyond what fits in a row go to JSONB (in field order: the first stay);
    the names of those moved."""
    columns = [f for f in fields if f.column]
    widths = [value_width(f.pg_type) for f in columns]
    extra = len(columns) < len(fields)
    if row_width(widths, extra) <= ROW_BUDGET:
        return []
    keep = 0
    while keep < len(widths) and row_width(widths[:keep + 1], True) <= ROW_BUDGET:
        keep += 1
    moved = columns[keep:]
    for f in moved:
        f.column = False
    return [f.name for f in moved]


def observe(stats: dict[str, FieldStats], record: dict) -> None:
    for key, value in record.items():
        st = stats.get(key)
        if st is None:
            st = stats[key] = FieldStats(key)
        st.present += 1
        kind = _kind(value)
        if kind == "null":
            st.nulls += 1
            continue
        st.types[kind] += 1
        if kind == "integer":
            if abs(int(value)) >= 2**63:
                st.big_int = True
        elif kind == "float":
            st.scales.add(_scale(value))
            st.max_scale = max(st.max_scale, _scale(value))
        elif kind == "string":
            st.max_len = max(st.max_len, len(value))
            fmt = next((name for name, rx in _FORMATS if len(value) < 300 and rx.match(value)),
                       None)
            st.formats[fmt or "plain"] += 1
        elif kind == "object":
            st.objects += 1
            st.sub_keys.update(value.keys())
            if _depth(value, MAX_DEPTH) >= MAX_DEPTH:
                st.depth_exceeded = True
        if kind in ("string", "integer", "boolean") or (kind == "float"):
            marker = value if not isinstance(value, str) or len(value) <= MAX_ENUM_VALUE_LEN \
                else ("long", hash(value))
            if marker in st.distinct:
                st.unique_values = False
            elif len(st.distinct) < MAX_DISTINCT_TRACKED:
                st.distinct.add(marker)
            else:
                st.distinct_overflow = True


def _logical_type(st: FieldStats) -> tuple[str, list[str], str | None, list[str] | None]:
    """(type, union members, format, enum values)."""
    kinds = sorted(st.types)
    if not kinds:
        return "null", [], None, None
    if kinds == ["float", "integer"]:
        kinds = ["float"]  # JSON writes 12.0 as 12: a number column, not a union
    if len(kinds) > 1:
        return "mixed", kinds, None, None
    kind = kinds[0]
    if kind == "integer":
        return ("bigint_overflow" if st.big_int else "integer"), [], None, None
    if kind == "float":
        money = bool(_MONEY.search(st.name))
        exact = st.scales and max(st.scales) <= 4 and (money or st.scales == {2})
        return ("decimal" if exact else "float"), [], None, None
    if kind == "string":
        strings = st.types["string"]
        fmts = {f: n for f, n in st.formats.items() if f != "plain"}
        if fmts and sum(fmts.values()) == strings and len(fmts) == 1:
            fmt = next(iter(fmts))
            return fmt, [], fmt, None
        if fmts and st.formats.get("plain", 0) == 0 and set(fmts) == {"date", "timestamp"}:
            return "timestamp", [], "timestamp", None
        values = [v for v in st.distinct if isinstance(v, str)]
        if (not st.distinct_overflow and 1 < len(values) <= MAX_ENUM_VALUES
                and strings >= 2 * len(values) and st.max_len <= MAX_ENUM_VALUE_LEN):
            return "enum", [], None, sorted(values)
        return "string", [], None, None
    if kind == "object":
        if st.depth_exceeded:
            return "object", [], None, None
        many = len(st.sub_keys) >= MAP_MIN_KEYS
        sparse = st.objects and max(st.sub_keys.values()) / st.objects < MAP_MAX_KEY_PRESENCE
        return ("map" if many and sparse else "object"), [], None, None
    return kind, [], None, None


def _describe(f: FieldSchema) -> str:
    parts = {"integer": "whole number", "float": "number", "decimal": "exact decimal number",
             "boolean": "true/false flag", "string": "text", "date": "calendar date",
             "timestamp": "date and time", "uuid": "UUID identifier", "email": "email address",
             "url": "web address", "enum": "category", "object": "nested object",
             "array": "list", "map": "key-value map with varying keys",
             "mixed": "value of mixed types", "null": "always null",
             "bigint_overflow": "very large whole number"}
    text = parts.get(f.type, f.type)
    if f.enum:
        text += " (one of: " + ", ".join(f.enum[:8]) + ("…" if len(f.enum) > 8 else "") + ")"
    if f.union:
        text += " (" + " or ".join(f.union) + ")"
    text += "; present in every record" if f.required else f"; present in {f.presence:.0%}"
    if f.nullable:
        text += ", may be null"
    if f.unique:
        text += "; unique in the sample"
    return f"{f.name}: {text}"


def snake_case(name: str, fallback: str = "records") -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    if not s:
        s = fallback
    if s[0].isdigit():
        s = "t_" + s
    return s[:55]


def infer_schema(records: list, name: str, sample_size: int = 2000,
                 total: int | None = None) -> SchemaDesign:
    """Infer fields and a storage design from (a sample of) the records."""
    sample = records[:sample_size]
    stats: dict[str, FieldStats] = {}
    wrapped = False
    for rec in sample:
        if not isinstance(rec, dict):
            rec, wrapped = {"value": rec}, True
        observe(stats, rec)
    n = max(1, len(sample))
    fields: list[FieldSchema] = []
    for st in stats.values():
        kind, union, fmt, enum = _logical_type(st)
        presence = st.present / n
        f = FieldSchema(
            name=st.name, type=kind, pg_type=PG_TYPES[kind], nullable=st.nulls > 0,
            required=presence >= REQUIRED_PRESENCE and st.nulls == 0, presence=round(presence, 4),
            union=union, enum=enum, format=fmt,
            unique=st.unique_values and not st.distinct_overflow and st.present == n and
            st.nulls == 0 and kind in ("integer", "string", "uuid", "email", "url"))
        f.column = PG_TYPES[kind] != "jsonb" and presence >= COLUMN_PRESENCE
        f.description = _describe(f)
        fields.append(f)
    too_wide = _fit_row(fields) if len(
        [f for f in fields if f.column]) <= MAX_COLUMNS else []
    columns = [f for f in fields if f.column]
    if len(columns) > MAX_COLUMNS:
        storage = "jsonb"
        why = (f"{len(columns)} stable scalar fields are more columns than PostgreSQL allows "
               f"in a table (1600): documents stay whole as JSONB, queried with a GIN index")
        for f in fields:
            f.column = False
    elif not fields:
        storage, why = "jsonb", "no records to learn from: each document is kept whole as JSONB"
    elif len(columns) == len(fields):
        storage = "sql"
        why = (f"all {len(fields)} fields are stable scalars (each a single type, present in "
               f"at least {COLUMN_PRESENCE:.0%} of records): plain typed columns")
    elif len(columns) < max(1, len(fields) * 0.3):
        storage = "jsonb"
        why = (f"only {len(columns)} of {len(fields)} fields are stable scalars; the rest are "
               "nested, sparse or of mixed types: documents stay as JSONB, queried with a "
               "GIN index")
        for f in fields:
            f.column = False
    else:
        storage = "hybrid"
        rest = [f.name for f in fields if not f.column]
        why = (f"{len(columns)} stable scalar fields become typed columns; "
               f"{len(rest)} nested, sparse or mixed fields ({', '.join(rest[:6])}"
               f"{'…' if len(rest) > 6 else ''}) go to an _extra JSONB column")
    if too_wide and storage != "sql":
        why += (f"; {len(too_wide)} more fields would make a row wider than PostgreSQL's "
                f"{ROW_LIMIT}-byte limit, so they stay in JSONB too")
    if wrapped:
        why += "; records that are not objects are stored under the field 'value'"
    indexes = suggest_indexes(fields, storage)
    base = snake_case(name)
    return SchemaDesign(base, storage, why, fields, indexes, len(sample),
                        total if total is not None else len(records))


def suggest_indexes(fields: list[FieldSchema], storage: str) -> list[dict]:
    out = []
    for f in fields:
        if not f.column:
            continue
        idlike = f.name.lower() in ("id", "uuid", "key") or f.name.lower().endswith(("_id", "id"))
        if f.unique and idlike and f.required:
            out.append({"columns": [f.name], "type": "btree", "unique": True,
                        "reason": f"{f.name} identifies a record"})
        elif f.type in ("date", "timestamp"):
            out.append({"columns": [f.name], "type": "btree", "unique": False,
                        "reason": f"range filters and sorting on {f.name}"})
        elif f.type == "enum":
            out.append({"columns": [f.name], "type": "btree", "unique": False,
                        "reason": f"filters by {f.name} category"})
        elif idlike and f.type in ("integer", "string", "uuid"):
            out.append({"columns": [f.name], "type": "btree", "unique": False,
                        "reason": f"joins and lookups on {f.name}"})
    if storage in ("jsonb", "hybrid"):
        out.append({"columns": ["_doc" if storage == "jsonb" else "_extra"], "type": "gin",
                    "unique": False, "reason": "containment queries (@>) inside the JSONB"})
    return out
