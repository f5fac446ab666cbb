"""The kinds of file a name can hold, known before the probe has read a byte.

The run planner uses it to leave out the assets that have no work in a batch: a run of
photos need not start the speech, video and JSON steps (each empty step still costs its
start, its events and a materialisation per partition). The probe decides the real kind
from the content; a name is only a hint, so each suffix stands for every kind its content
might turn out to be (a `.mp4` may hold sound alone). A name that misleads (a `.jpg` that
holds JSON) costs time, never work: the assets it missed are planned again by the resume
pass (`ingest` runs one at its end, the schedule every night). An unknown suffix means any
kind.
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


def possible_kinds(path: str) -> frozenset[str] | None:
    """The kinds a file of this name may be; None when the name does not say."""
    return BY_SUFFIX.get(PurePath(path).suffix.lower())


def kinds_of_batch(paths: list[str]) -> frozenset[str] | None:
    """Every kind the files may be; None as soon as one name does not say."""
    kinds: set[str] = set()
    for path in paths:
        found = possible_kinds(path)
        if found is None:
            return None
        kinds |= found
    return frozenset(kinds)
