"""Probe a batch of catalogued files and store what was found, one file's failure at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from media_assets.lib.files.store import FileStore
from media_assets.lib.files.probe import FileVanished, Limits, ProbeError, probe_file


@dataclass(frozen=True)
class Outcome:
    key: str
    path: str | None
    kind: str
    status: str
    error: str | None
    mime_type: str | None
    details: dict
    ms: float


def probe_and_record(files: FileStore, keys: Sequence[str], limits: Limits,
                     on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Probe each key's file (the first readable path), record the result, never raise for one file."""
    outcomes = []
    rows = files.get(keys)
    for key in keys:
        start = time.perf_counter()
        row = rows.get(key)
        paths, why_none, changed = files.readable_paths(key, row.size_bytes if row else None)
        if changed:  # left pending: the next scan registers what the file holds now
            continue
        kind, status, error, mime, details, taken = "unknown", "failed", None, None, {}, None
        path = None
        if not paths:
            error = why_none
        for path in paths:
            try:
                probe = probe_file(path, limits)
            except ProbeError as exc:
                kind, status, error, mime = exc.kind, exc.status, str(exc), exc.mime
                if isinstance(exc, FileVanished):
                    continue  # another alias of the same content may still be there
                break
            except Exception as exc:  # a decoder bug must not stop the batch
                kind, status, error = "unknown", "failed", f"unexpected error: {exc!r}"
                break
            kind, status, error = probe.kind, "ok", None
            mime, details, taken = probe.mime_type, probe.details, probe.taken_at
            break
        ms = (time.perf_counter() - start) * 1000
        try:
            files.record_probe(key, kind=kind, status=status, error=error, mime_type=mime,
                               details=details, taken_at=taken, processing_ms=ms)
        except Exception as exc:  # a value the database still refuses: this file fails alone
            kind, status, details = "unknown", "failed", {}
            error = f"could not record what the probe found: {type(exc).__name__}: {exc}"[:2000]
            files.record_probe(key, kind=kind, status=status, error=error, mime_type=None,
                               details=details, taken_at=None, processing_ms=ms)
        outcome = Outcome(key, path, kind, status, error, mime, details, ms)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def describe(o: Outcome) -> str:
    """One line of what a probe found, for previews."""
    d = o.details
    if o.kind == "image" and "width" in d:
        exif = d.get("exif", {})
        extra = ", ".join(f"{k} {v}" for k, v in exif.items() if k in ("camera", "taken_at"))
        return f"{d['width']}x{d['height']} {d.get('format', '')}" + (f" ({extra})" if extra else "")
    if o.kind in ("audio", "video") and d.get("duration_s") is not None:
        codecs = ", ".join(s["codec"] or "?" for s in d.get("streams", []))
        return f"{d['duration_s']:.1f} s [{codecs}]"
    if o.kind == "json":
        return d.get("shape", "")
    if o.kind == "text":
        return f"{d.get('characters')} chars, {d.get('encoding')}"
    return ""
