"""What a file says, as units of text to search: each with where it is in the file.

A unit is a transcript moment, an image or frame caption, a visual answer, a chunk of a text
file (character offsets), what a JSON table is about, or a chunk of a JSON file's records
(record numbers). Units are short on purpose: a sentence vector of a whole page is the
average of everything on it, and a todo item in a long note would be lost in it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from media_assets.lib.db.values import safe_text

CHUNK_CHARS = 240  # about 60 tokens: one thought, well under the text model's 512
MAX_CHUNKS = 2000  # per file: a 64 MB log is not embedded whole (the rest stays unread)
MAX_TABLE_TEXT = 600
# Text in pictures is lines that need not belong together (a screenshot's settings, a
# receipt's items): two or three lines per vector.
PICTURE_CHUNK = 100
MAX_VALUE_CHARS = 200
DATE_LIKE = re.compile(r"^[\d\s:./+TZ-]+$")
WORD = re.compile(r"[^\W\d_]{2,}")


def says_something(text: str) -> bool:
    """Words, not noise: a decoder's garbage (replacement characters, one token repeated,
    "BBBBBBBB") sits close to every query in a sentence model's space, so it is left out."""
    words = WORD.findall(text)
    if not words:
        return False
    letters = sum(len(w) for w in words)
    if letters < 0.4 * len("".join(text.split())):
        return False
    if any(len(w) > 12 and len(set(w.lower())) <= 3 for w in words):
        return False
    return len(words) < 3 or len({w.lower() for w in words}) > 1


@dataclass(frozen=True)
class Unit:
    source: str  # speech, caption, answer, picture_text, text, json_table, json_records
    text: str
    at_ms: int = -1  # the moment in audio or video; -1: the whole file
    start: int | None = None  # text: character offsets; json_records: record numbers
    end: int | None = None

    def __post_init__(self) -> None:
        # Text from files may hold NUL or lone surrogates (JSON escapes, undecodable bytes):
        # neither can be hashed as UTF-8 nor stored by PostgreSQL.
        object.__setattr__(self, "text", safe_text(self.text))

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.source}\x00{self.text}".encode()).hexdigest()[:24]


def _split_long(line: str, offset: int, size: int) -> Iterator[tuple[int, int, str]]:
    """A line longer than `size` cut at sentence ends, else at spaces, else hard."""
    start = 0
    while start < len(line):
        end = min(len(line), start + size)
        if end < len(line):
            cut = max(line.rfind(". ", start, end), line.rfind("! ", start, end),
                      line.rfind("? ", start, end))
            cut = cut + 1 if cut > start else line.rfind(" ", start, end)
            end = cut if cut > start else end
        piece = line[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            yield offset + start + lead, offset + end, piece.strip()
        start = end


def chunk_text(text: str, size: int = CHUNK_CHARS,
               limit: int = MAX_CHUNKS) -> list[tuple[int, int, str]]:
    """(start, end, text) chunks of whole lines up to `size` characters; a blank line
    ends a chunk; offsets index `text`."""
    chunks: list[tuple[int, int, str]] = []
    cur_start = cur_end = None
    parts: list[str] = []

    def flush():
        nonlocal cur_start, cur_end, parts
        if parts:
            chunks.append((cur_start, cur_end, "\n".join(parts)))
        cur_start, cur_end, parts = None, None, []

    pos = 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            flush()
        elif len(line) > size:
            flush()
            chunks.extend(_split_long(line, pos, size))
        else:
            if parts and sum(len(p) + 1 for p in parts) + len(stripped) > size:
                flush()
            lead = len(line) - len(line.lstrip())
            if cur_start is None:
                cur_start = pos + lead
            cur_end = pos + len(line.rstrip())
            parts.append(stripped)
        pos += len(raw)
        if len(chunks) >= limit:
            return chunks[:limit]
    flush()
    return chunks[:limit]


def text_file_units(path: Path, encoding: str | None, max_chars: int) -> list[Unit]:
    with open(path, encoding=encoding or "utf-8", errors="replace") as fh:
        text = fh.read(max_chars)
    text = text.lstrip("\ufeff").replace("\x00", " ")
    return [Unit("text", t, -1, s, e) for s, e, t in chunk_text(text)]


def _strings(value, prefix: str = "") -> Iterator[str]:
    """A record's words: its string leaves with their field names (numbers, dates and
    identifiers carry no meaning to embed)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for v in value[:50]:
            yield from _strings(v, prefix)
    elif isinstance(value, str):
        v = " ".join(value.split())[:MAX_VALUE_CHARS]
        if v and any(c.isalpha() for c in v) and not DATE_LIKE.match(v):
            yield f"{prefix}: {v}" if prefix else v


def json_record_units(records: Iterable, size: int = CHUNK_CHARS,
                      limit: int = MAX_CHUNKS) -> list[Unit]:
    """Records with words in them, grouped into chunks of about `size` characters; a
    chunk's start and end are record numbers (0-based, inclusive)."""
    units: list[Unit] = []
    parts: list[str] = []
    first = last = -1
    for i, record in enumerate(records):
        if not isinstance(record, (dict, list, str)):
            continue  # a Reject (an unparsable line) or a bare number
        line = "; ".join(_strings(record))
        if not line:
            continue
        if parts and sum(len(p) + 1 for p in parts) + len(line) > size:
            units.append(Unit("json_records", "\n".join(parts), -1, first, last))
            parts = []
            if len(units) >= limit:
                return units
        if not parts:
            first = i
        parts.append(line)
        last = i
    if parts:
        units.append(Unit("json_records", "\n".join(parts), -1, first, last))
    return units


def json_table_unit(design) -> Unit:
    """What a JSON table is about: its name, the design's reasoning, its fields and their
    descriptions."""
    name = design.table_name.replace("_", " ")
    fields = ", ".join(f.name + (f" ({f.description})" if f.description else "")
                       for f in design.fields[:60])
    return Unit("json_table", f"{name}. Fields: {fields}"[:MAX_TABLE_TEXT])


def catalogued_units(engine: sa.Engine, key: str) -> list[Unit]:
    """What the other assets found in the file: transcript moments, image caption and
    answers, frame captions (a frame repeating the previous caption adds nothing)."""
    units: list[Unit] = []
    with engine.connect() as conn:
        for r in conn.execute(sa.text(
                "SELECT start_s, text FROM transcript_segments WHERE key = :k ORDER BY idx"),
                {"k": key}):
            units.append(Unit("speech", r.text, int(round(r.start_s * 1000))))
        row = conn.execute(sa.text(
            "SELECT caption, answers FROM image_analysis WHERE key = :k"), {"k": key}).first()
        if row is not None:
            if row.caption:
                units.append(Unit("caption", row.caption))
            answers = row.answers if isinstance(row.answers, dict) else {}
            for answer in dict.fromkeys(str(a).strip() for a in answers.values()):
                if answer and answer != row.caption:
                    units.append(Unit("answer", answer))
        previous = None
        for r in conn.execute(sa.text(
                "SELECT frame_ms, caption FROM video_frames WHERE key = :k ORDER BY frame_ms"),
                {"k": key}):
            if r.caption and r.caption != previous:
                units.append(Unit("caption", r.caption, int(r.frame_ms)))
            previous = r.caption
        for r in conn.execute(sa.text(
                "SELECT frame_ms, text FROM picture_texts WHERE key = :k ORDER BY frame_ms"),
                {"k": key}):
            units += picture_text_units(r.text, int(r.frame_ms))
    return units


def picture_text_units(text: str, frame_ms: int = -1, size: int = PICTURE_CHUNK) -> list[Unit]:
    """Text read in a picture (one line per line read), in chunks of whole lines of about
    `size` characters: a screenshot's eight unrelated lines would blur into one vector that
    means none of them."""
    units: list[Unit] = []
    lines: list[str] = []
    for line in (x.strip() for x in text.splitlines()):
        if not line:
            continue
        if lines and sum(len(x) + 3 for x in lines) + len(line) > size:
            units.append(Unit("picture_text", " / ".join(lines), frame_ms))
            lines = []
        lines.append(line)
    if lines:
        units.append(Unit("picture_text", " / ".join(lines), frame_ms))
    return units


def json_units(path: Path, details: dict, design) -> list[Unit]:
    from media_assets.lib.json_docs.load import iter_records

    units = [json_table_unit(design)] if design is not None else []
    records = iter_records(path, details)
    record_units = json_record_units(records)
    # The fields beside a wrapped record list (who exported it, the account) were in no
    # unit: the records become rows and the rest was dropped. The loader keeps them from
    # its one parse; a file it streams (over 32 MB) has none.
    if envelope := "; ".join(_strings(records.envelope)):
        units.append(Unit("json_table", envelope[:MAX_TABLE_TEXT]))
    return units + record_units


def units_of(engine: sa.Engine, key: str, kind: str, path: Path, details: dict,
             max_text_chars: int = 16 * 2**20) -> list[Unit]:
    """Every unit of one file, in a stable order."""
    if kind == "text":
        units = text_file_units(path, details.get("encoding"), max_text_chars)
    elif kind == "json":
        from media_assets.lib.json_docs.store import load_design

        units = json_units(path, details, load_design(engine, key))
    else:
        units = catalogued_units(engine, key)
    return [u for u in units if says_something(u.text)]


def describe(unit: Unit) -> dict:
    """Where a unit is, for a hit's `why`."""
    if unit.source == "text":
        return {"offset": [unit.start, unit.end]}
    if unit.source == "json_records":
        return {"records": [unit.start, unit.end]}
    return {}


