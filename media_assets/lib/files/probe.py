"""What a file is, decided from its content, and the facts a catalog records about it.

Order of evidence: magic bytes (`filetype`), then the decoders themselves (Pillow for images,
PyAV for audio/video containers), then text heuristics (JSON, NDJSON, plain text). The file
name is never trusted. Every probe either returns a `Probe` or raises `ProbeError`, whose
status and message go into the catalog against that file.
"""

from __future__ import annotations

import codecs
import json
import os
from itertools import islice
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import filetype
from PIL import Image, UnidentifiedImageError

from media_assets.lib.files.exif import read_exif
from media_assets.lib.files.inbox import open_regular
from media_assets.lib.files.kinds import HEAD_BYTES, JSON_SUFFIXES, document_kind
from media_assets.lib.imaging import TooLargeToDecode, check_decodes, decode_mode
from media_assets.lib.files.json_depth import MAX_JSON_DEPTH, json_depth, too_deep_message
from media_assets.lib.files.json_read import (PARSE_ERRORS, STREAM_BYTES, ndjson_shapes,
                                              open_binary, open_text, read_bytes)


class ProbeError(Exception):
    """A file that cannot be catalogued; `status` is failed, refused or unsupported."""

    def __init__(self, status: str, message: str, kind: str = "unknown", mime: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.mime = status, kind, mime


class NotJson(ProbeError):
    """Content that opens as JSON does but does not parse."""

    def __init__(self, message: str):
        super().__init__("failed", message, "json", "application/json")


class FileVanished(ProbeError):
    """The path held no file when it was opened (moved or deleted meanwhile): another path
    of the same content may still be there."""

    def __init__(self):
        super().__init__("failed", "the file disappeared before it could be read")


@dataclass
class Probe:
    kind: str
    mime_type: str | None
    details: dict = field(default_factory=dict)
    taken_at: datetime | None = None


@dataclass(frozen=True)
class Limits:
    max_image_pixels: int = 250_000_000
    max_json_bytes: int = 512 * 1024 * 1024
    max_text_bytes: int = 64 * 1024 * 1024


def probe_file(path: str | os.PathLike, limits: Limits = Limits()) -> Probe:
    path = Path(path)
    try:
        # As hashing opens it (inbox.open_regular): O_NOFOLLOW | O_NONBLOCK, and fstat of
        # what was opened, so a symlink or FIFO swapped in is refused, never read.
        with open_regular(str(path)) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(HEAD_BYTES)
    except PermissionError as exc:
        raise ProbeError("failed", f"permission denied: cannot read the file ({exc.strerror}); "
                                   "give the catalog's user read access") from exc
    except FileNotFoundError as exc:
        raise FileVanished() from exc
    except OSError as exc:  # ELOOP (a symlink now), EINVAL (a FIFO, socket or device now)
        raise ProbeError("failed", "the path is no longer a regular file (a symlink, FIFO, "
                                   f"socket or device); it is not read ({exc.strerror})") from exc
    if size == 0:
        raise ProbeError("failed", "empty file (0 bytes): nothing to catalog")

    guess = filetype.guess(head)
    mime = guess.mime if guess else None
    if mime and mime.startswith("image/"):
        return probe_image(path, mime, limits)
    if mime and (mime.startswith(("video/", "audio/")) or mime == "application/ogg"):
        return probe_av(path, mime)
    if guess is None and looks_like_text(head):
        return probe_text(path, head, limits)
    if guess is None:
        # Containers without a magic number filetype knows (MPEG-TS, raw AAC/ADTS, AMR...).
        try:
            return probe_av(path, None)
        except ProbeError:
            pass
    raise ProbeError("unsupported",
                     f"unsupported file type ({mime or 'unrecognised content'}): not an image, "
                     "audio, video, JSON or text file", "other", mime)


# -- images -------------------------------------------------------------------------------
def probe_image(path: Path, mime: str | None, limits: Limits) -> Probe:
    # Pillow refuses at open above twice this (before reading pixel data); our own check
    # below refuses anything above it once the header is read.
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        # Image.open reads only the header: the pixel count is known before any decoding.
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limits.max_image_pixels:
                raise ProbeError(
                    "refused",
                    f"image too large: {width}x{height} = {width * height / 1e6:.0f} megapixels "
                    f"exceeds the limit of {limits.max_image_pixels / 1e6:.0f} (possible "
                    "decompression bomb; raise MEDIA_ASSETS_MAX_IMAGE_PIXELS to accept it)",
                    "image", mime)
            details = {"width": width, "height": height, "format": img.format,
                       "mode": img.mode, "frames": getattr(img, "n_frames", 1)}
            # Pillow reads a PNG's EXIF after the image data by decoding it all: a PNG
            # decoded in bands keeps only EXIF placed before its image data.
            banded = decode_mode(img) == "bands"
            exif = read_exif(img) if not banded or "exif" in img.info else {}
            if exif:
                details["exif"] = exif
            # A full decode is what proves the file is not truncated or corrupt: at reduced
            # scale for JPEG (corruption still shows), in bands for a large PNG, refused for
            # other formats too large to decode whole (lib/imaging.py: the memory bound).
            check_decodes(img)
            # libjpeg pads a JPEG whose data stops early with grey and only warns: a header
            # far larger than its data is caught by size. Even a flat grey JPEG takes about
            # 0.75 bytes per 8x8 block; ten times less cannot hold the image it announces.
            data_bytes = path.stat().st_size
            if img.format == "JPEG" and data_bytes < width * height / 64 * 0.075:
                raise ProbeError(
                    "failed", f"truncated image: the header says {width}x{height} but the file "
                    f"holds only {data_bytes} bytes", "image", mime)
    except ProbeError:
        raise
    except TooLargeToDecode as exc:
        raise ProbeError("refused", f"image too large to decode: {exc}", "image", mime) from exc
    except Image.DecompressionBombError as exc:
        raise ProbeError("refused", f"image refused before decoding (possible decompression "
                         f"bomb): {exc}; raise MEDIA_ASSETS_MAX_IMAGE_PIXELS to accept it",
                         "image", mime) from exc
    except UnidentifiedImageError as exc:
        raise ProbeError("failed", f"corrupt or unsupported image ({mime}): Pillow cannot "
                                   "identify it", "image", mime) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ProbeError("failed", f"corrupt or truncated image: {exc}", "image", mime) from exc
    taken = exif.get("taken_at")
    return Probe("image", mime or Image.MIME.get(details["format"]), details,
                 datetime.fromisoformat(taken) if taken else None)


# -- audio and video ----------------------------------------------------------------------
_AV_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
            "matroska,webm": "video/x-matroska", "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
            "aac": "audio/aac", "mpegts": "video/mp2t", "avi": "video/x-msvideo"}


def probe_av(path: Path, mime: str | None) -> Probe:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise ProbeError("failed", f"corrupt or truncated media file: {exc}",
                         _kind_from_mime(mime), mime) from exc
    with container:
        streams = []
        for s in container.streams:
            info = {"index": s.index, "type": s.type, "codec": s.codec_context.name
                    if s.codec_context else None}
            if s.type == "audio":
                info.update(sample_rate=s.codec_context.sample_rate,
                            channels=s.codec_context.channels)
            elif s.type == "video":
                info.update(width=s.codec_context.width, height=s.codec_context.height,
                            fps=float(s.average_rate) if s.average_rate else None,
                            cover_art=bool(s.disposition & av.stream.Disposition.attached_pic))
            streams.append(info)
        video = [s for s in container.streams.video
                 if not s.disposition & av.stream.Disposition.attached_pic]
        audio = list(container.streams.audio)
        if not video and not audio:
            raise ProbeError("unsupported", "media container without audio or video streams",
                             "other", mime)
        kind = "video" if video else "audio"
        duration = container.duration / 1e6 if container.duration else None
        main = video[0] if video else audio[0]
        decoded_to = _check_decodes(container, main, duration)
    details = {"container": container.format.name, "duration_s": duration, "streams": streams,
               "decoded_to_s": decoded_to}
    if duration and decoded_to is not None and decoded_to < duration * 0.9 - 1.0:
        raise ProbeError("failed", f"truncated {kind}: media data stops at {decoded_to:.1f} s "
                                   f"of the declared {duration:.1f} s", kind, mime)
    return Probe(kind, mime or _AV_MIME.get(container.format.name), details)


def _check_decodes(container, stream, duration: float | None) -> float | None:
    """Decode the first frame and the last seconds; returns where the data really ends.

    Decoding only the ends keeps an hour-long file cheap to probe, and still catches a
    header that promises more than the file holds.
    """
    import av

    try:
        first = next(container.decode(stream), None)
        if first is None:
            raise ProbeError("failed", f"no decodable {stream.type} frames: corrupt file",
                             "video" if stream.type == "video" else "audio")
        end = None
        if duration and duration > 4:
            container.seek(int((duration - 3) * 1e6), any_frame=False, backward=True)
        for frame in container.decode(stream):
            if frame.time is not None:
                dur = (frame.samples / frame.sample_rate) if stream.type == "audio" else 0
                end = max(end or 0.0, frame.time + dur)
        return end
    except av.error.FFmpegError as exc:
        raise ProbeError("failed", f"corrupt {stream.type} data: {exc}",
                         "video" if stream.type == "video" else "audio") from exc


def _kind_from_mime(mime: str | None) -> str:
    if mime and mime.startswith("video/"):
        return "video"
    if mime and mime.startswith("audio/"):
        return "audio"
    return "unknown"


# -- JSON and text ------------------------------------------------------------------------
def looks_like_text(head: bytes) -> bool:
    """Mostly printable once decoded. A stray NUL or two (a note saved by a buggy editor)
    does not make a file binary; binary formats hold many (UTF-16 is told by its BOM)."""
    if head.count(b"\x00") > max(2, len(head) // 200) and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    text = _decode(head)[0]
    if text is None:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def _decode(data: bytes) -> tuple[str | None, str | None]:
    """(text, encoding); UTF-8 first since it is nearly always right and strict."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                return None, None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        # The head may cut a multi-byte character in two.
        if exc.start >= len(data) - 3:
            return data[:exc.start].decode("utf-8"), "utf-8"
    if (western := _western(data)) is not None:
        return western, "cp1252"
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is not None and not best.encoding.startswith("cp125"):
        # Windows code pages are what notes that are not UTF-8 are mostly written in: one
        # that reads the bytes as cleanly wins over a Mac or ISO page ("ѕривет", Mac
        # Cyrillic's reading of Windows-1251's "Привет").
        best = next((m for m in matches if m.encoding.startswith("cp125")
                     and m.chaos <= best.chaos + 0.01), best)
    return (str(best), best.encoding) if best is not None else (None, None)


_WESTERN_MARKS = frozenset("€“”‘’‚„–—…•«»°£§©®±·×÷¿¡¢¥¶†‰")


def _western(data: bytes) -> str | None:
    """`data` as Windows-1252 (Latin-1's superset, what Western European notes that are
    not UTF-8 are written in) when it reads as such: every byte defined, non-ASCII letters
    a minority of the letters (Cyrillic or Greek read this way is nearly all accented
    letters), and no symbol inside a word (Polish in Windows-1250 reads "Za¿ó³æ").
    charset_normalizer, asked first, read short French or Spanish as Windows-1250 or
    Urdu ("crčme brűlée", "Naﺅve cafﻠ")."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = [ch for ch in text if ch.isalpha()]
    foreign = sum(not ch.isascii() for ch in letters)
    if foreign > 0.3 * len(letters) or (not foreign and any(
            not ch.isascii() and ch not in _WESTERN_MARKS for ch in text)):
        return None
    for i in range(1, len(text) - 1):
        ch = text[i]
        if (not ch.isascii() and not ch.isalpha() and text[i - 1].isalpha()
                and text[i + 1].isalpha()):
            return None
    return text


def probe_text(path: Path, head: bytes, limits: Limits) -> Probe:
    """Encoding, characters, lines and words, read in a stream: memory stays bounded for
    any size, and text over the size limit is refused."""
    if document_kind(head) == "json":  # the planner decides by the same rule (kinds.py)
        try:
            return probe_json(path, limits)
        except NotJson:
            if path.suffix.lower() in JSON_SUFFIXES:
                raise
            # A note that only opens as JSON does: "[ ] water the plants", "[a link](...)".
    size = path.stat().st_size
    if size > limits.max_text_bytes:
        raise ProbeError("refused", f"text file of {size / 2**20:.0f} MB exceeds the limit of "
                         f"{limits.max_text_bytes / 2**20:.0f} MB (MEDIA_ASSETS_MAX_TEXT_MB)",
                         "text", "text/plain")
    encoding = _decode(head)[1]
    if encoding is None:
        raise ProbeError("failed", "text file in an encoding that cannot be determined", "text",
                         "text/plain")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    chars = lines = words = 0
    in_word = False
    with open_binary(path) as fh:
        while block := fh.read(1 << 20):
            text = decoder.decode(block)
            chars += len(text)
            lines += text.count("\n")
            parts = text.split()
            if parts:  # a word cut by the block boundary is counted once
                words += len(parts) - (1 if in_word and not text[0].isspace() else 0)
            in_word = bool(text) and not text[-1].isspace()
    details = {"encoding": encoding, "characters": chars, "lines": lines + 1, "words": words}
    return Probe("text", "text/plain", details)


def probe_json(path: Path, limits: Limits) -> Probe:
    size = path.stat().st_size
    if size > limits.max_json_bytes:
        raise ProbeError("refused", f"JSON file of {size / 2**20:.0f} MB exceeds the limit of "
                         f"{limits.max_json_bytes / 2**20:.0f} MB (MEDIA_ASSETS_MAX_JSON_MB)",
                         "json", "application/json")
    with open_binary(path) as fh:
        head = fh.read(HEAD_BYTES)
    encoding = _decode(head)[1]
    if encoding is None:
        raise ProbeError("failed", "JSON file in an unknown encoding", "json", "application/json")
    if _first_line_is_a_document(path, encoding):
        # Each line on its own, by `json` (a line nested too deeply is one invalid line).
        return _probe_ndjson(path, encoding)
    if encoding.startswith("utf-8"):
        # Before any parser: its memory grows with the depth (linear scan, constant memory).
        depth = json_depth(path, MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise ProbeError("failed", too_deep_message(depth), "json", "application/json")
    if size > STREAM_BYTES and encoding.startswith("utf-8"):
        details = {"format": "json", "encoding": encoding, **_stream_shape(path)}
        return Probe("json", "application/json", details)
    text, _ = _decode(read_bytes(path))
    try:
        doc = json.loads(text)
    except RecursionError as exc:
        raise ProbeError("failed", "JSON nested too deeply to parse", "json",
                         "application/json") from exc
    except json.JSONDecodeError as exc:
        raise NotJson(f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                      f"{exc.msg}") from exc
    details = {"format": "json", "encoding": encoding, **describe_shape(doc)}
    return Probe("json", "application/json", details)


def _first_line_is_a_document(path: Path, encoding: str) -> bool:
    """NDJSON: the first line is a whole JSON value, and more lines follow."""
    with open_text(path, encoding) as fh:
        first = fh.readline(1 << 20).lstrip("\ufeff")
        try:
            json.loads(first)
        except PARSE_ERRORS:
            return False
        return any(line.strip() for line in islice(fh, 100))


def _stream_shape(path: Path) -> dict:
    """`describe_shape` for a document too large to hold: the top level read as events."""
    import ijson

    try:
        with open_binary(path) as fh:
            events = ijson.parse(fh, use_float=True)
            _, first, _ = next(events)
            if first == "start_array":
                kinds, n = set(), 0
                for prefix, event, _ in events:
                    if prefix == "item" and event not in ("end_map", "end_array", "map_key"):
                        n += 1
                        kinds.add(_EVENT_KINDS.get(event, "items"))
                return {"records": n, "shape": f"array of {n} " + "/".join(sorted(kinds))}
            if first != "start_map":
                return {"records": 1, "shape": "single value"}
            keys, objects = 0, {}
            for prefix, event, value in events:
                if prefix == "" and event == "map_key":
                    keys += 1
                elif prefix.endswith(".item") and prefix.count(".") == 1:
                    if event == "start_map":
                        objects[prefix[:-5]] = objects.get(prefix[:-5], 0) + 1
                    elif event not in ("end_map", "end_array", "map_key"):
                        objects[prefix[:-5]] = -10**18  # not an array of objects only
    except ijson.JSONError as exc:
        raise NotJson(f"invalid JSON: {exc}") from exc
    arrays = {k: n for k, n in objects.items() if n > 0}
    if len(arrays) == 1:
        (name, n), = arrays.items()
        return {"records": n, "records_path": name,
                "shape": f"object with {keys} keys; {n} records under {name!r}"}
    return {"records": 1, "shape": f"object with {keys} keys"}


_EVENT_KINDS = {"start_map": "object", "start_array": "array", "string": "string",
                "number": "number", "integer": "number", "double": "number",
                "boolean": "boolean", "null": "null"}


def _probe_ndjson(path: Path, encoding: str) -> Probe:
    """Each line parsed on its own, in a stream."""
    good, bad, types = 0, [], set()
    for number, kind in ndjson_shapes(path, encoding):
        if kind is None:
            bad.append(number if len(bad) < 100 else None)
            continue
        good += 1
        types.add(kind)
    shapes = {t.__name__ for t in types}
    invalid = [n for n in bad if n is not None]
    if good == 0 or len(bad) > good:
        raise NotJson(f"invalid JSON: not one document and not NDJSON "
                      f"({len(bad)} of {good + len(bad)} lines do not parse)")
    details = {"format": "ndjson", "encoding": encoding, "records": good,
               "shape": f"{good} lines of " + "/".join(sorted(_TYPE_NAMES.get(s, s) for s in shapes)),
               "invalid_lines": invalid, "invalid_line_count": len(bad)}
    return Probe("json", "application/x-ndjson", details)


_TYPE_NAMES = {"dict": "object", "list": "array", "str": "string", "int": "number",
               "float": "number", "bool": "boolean", "NoneType": "null"}


MAP_MIN_RECORDS = 10


def map_key_column(doc: dict) -> str | None:
    """For an object of records keyed by id (a Firebase or settings-per-user export:
    `{"u0001": {"name": ...}, ...}`), the column its keys go in (`id`, else `key`...);
    None for an object that is one document. A map: at least 10 entries, every value an
    object, and most values sharing most of the commonest value's fields (a document's
    sections have fields of their own)."""
    if len(doc) < MAP_MIN_RECORDS or not all(isinstance(v, dict) and v for v in doc.values()):
        return None
    from collections import Counter

    fields = Counter(k for v in doc.values() for k in v)
    common = {k for k, n in fields.items() if n >= len(doc) / 2}
    if not common or sum(len(common & v.keys()) >= len(common) / 2
                         for v in doc.values()) < 0.8 * len(doc):
        return None
    return next(c for c in ("id", "key", "map_key", "record_key", "_map_key")
                if c not in fields)


def describe_shape(doc) -> dict:
    """Record count and a one-line description of the top level."""
    if isinstance(doc, list):
        kinds = sorted({_TYPE_NAMES[type(v).__name__] for v in doc})
        return {"records": len(doc), "shape": f"array of {len(doc)} " + ("/".join(kinds) or "items")}
    if isinstance(doc, dict):
        # A wrapper such as {"data": [...]} holds its records one level down.
        arrays = {k: v for k, v in doc.items() if isinstance(v, list) and v and
                  all(isinstance(x, dict) for x in v)}
        if len(arrays) == 1:
            (name, records), = arrays.items()
            return {"records": len(records), "records_path": name,
                    "shape": f"object with {len(doc)} keys; {len(records)} records under {name!r}"}
        if (column := map_key_column(doc)) is not None:
            return {"records": len(doc), "records_map": column,
                    "shape": f"object of {len(doc)} records keyed by {column}"}
        return {"records": 1, "shape": f"object with {len(doc)} keys"}
    return {"records": 1, "shape": f"single {_TYPE_NAMES[type(doc).__name__]}"}
