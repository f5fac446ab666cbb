"""The kinds of file a name can hold, known before the probe has read a byte.

The run planner uses it to leave out the assets that have no work in a batch: a run of
photos need not start the speech, video and JSON steps (each empty step still costs its
start, its events and a materialisation per partition). The probe decides the real kind
from the content; a name is only a hint, so each suffix stands for every kind its content
might turn out to be (a `.mp4` may hold sound alone). A name that misleads (a `.jpg` that
holds JSON) costs time, never work: the assets it missed are planned again by the resume
pass (`ingest` runs one at its end, the schedule every night). An unknown suffix means any
kind. A document's name (`.txt`, `.json`, `.md` ...) says only "JSON or text"; its first
bytes say which, by the probe's own rule (`document_kind`), so a batch of notes does not
start the JSON steps and a batch of exports does not start text-only work.
"""

from __future__ import annotations

from pathlib import PurePath

IMAGE = frozenset({"image"})
AUDIO = frozenset({"audio"})
AUDIO_OR_VIDEO = frozenset({"audio", "video"})
DOCUMENT = frozenset({"json", "text"})  # the probe reads the content: JSON or plain text

BY_SUFFIX: dict[str, frozenset[str]] = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff",
                     ".heic", ".heif", ".avif"), IMAGE),
    **dict.fromkeys((".wav", ".mp3", ".m4a", ".flac", ".opus", ".aac", ".wma", ".aif",
                     ".aiff"), AUDIO),
    **dict.fromkeys((".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".mpg",
                     ".mpeg", ".3gp", ".ts", ".ogg", ".oga", ".ogv"), AUDIO_OR_VIDEO),
    **dict.fromkeys((".json", ".ndjson", ".jsonl", ".geojson", ".txt", ".md", ".csv",
                     ".log"), DOCUMENT),
}


HEAD_BYTES = 8192  # what the probe reads first, and decides a document's kind from
# Names that promise JSON: content that does not parse is a broken JSON file. Under any
# other name (a `.md` task list "[ ] water the plants", a note opening with a link) it is
# text (probe.probe_text).
JSON_SUFFIXES = frozenset({".json", ".ndjson", ".jsonl", ".geojson"})


def document_kind(head: bytes) -> str:
    """'json' or 'text': how the probe first reads a document whose file starts with `head`
    (JSON when the first character after a BOM and white space opens an object or an
    array; a file not named as JSON whose content then does not parse is read as text)."""
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):  # UTF-16, as the probe decodes it (probe._decode)
            text = head[2:len(head) - len(head) % 2].decode(encoding, errors="replace")
            return "json" if text.lstrip(" \t\r\n")[:1] in ("{", "[") else "text"
    return "json" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") else "text"


def possible_kinds(path: str, peek: bool = False) -> frozenset[str] | None:
    """The kinds a file of this name may be; None when the name does not say. With
    `peek`, a document's first bytes narrow "JSON or text" to the one the probe will find
    (a file that cannot be opened as a regular file keeps both)."""
    found = BY_SUFFIX.get(PurePath(path).suffix.lower())
    if peek and found is DOCUMENT:
        from media_assets.lib.files.inbox import open_regular

        try:
            with open_regular(path) as fh:
                kind = document_kind(fh.read(HEAD_BYTES))
        except OSError:
            return found
        if kind == "json" and PurePath(path).suffix.lower() not in JSON_SUFFIXES:
            return found  # a note may open with "[" or "{": only parsing it tells
        return frozenset({kind})
    return found


def kinds_of_batch(paths: list[str], peek: bool = False) -> frozenset[str] | None:
    """Every kind the files may be; None as soon as one name does not say (`peek`: see
    `possible_kinds`)."""
    kinds: set[str] = set()
    for path in paths:
        found = possible_kinds(path, peek)
        if found is None:
            return None
        kinds |= found
    return frozenset(kinds)
