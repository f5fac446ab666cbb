"""Search, similar images, files by catalogue key (record, thumbnail, frame, content) and
the clusters. Files are only ever named by key, and served only while the path still holds
the catalogued content (`servable`)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, Response

from media_assets.api.body import CheckedRoute
from media_assets.api.media import BadInput, reduced
from media_assets.api.schemas import (COMMON_ERRORS, FILE_ERRORS, ClustersView, FileRecord,
                                      Problem, SearchPage, SimilarPage)
from media_assets.api.state import State
from media_assets.lib.files.store import FileRow, FileStore, display_path
from media_assets.lib.images.thumbnails import THUMB_PX

router = APIRouter(route_class=CheckedRoute, tags=["catalogue"], responses=COMMON_ERRORS)
Key = Path(description="A catalogue key: 16 hex characters.")
KEY = re.compile(r"^[0-9a-f]{16}$")
JPEG = {200: {"content": {"image/jpeg": {}}, "description": "a JPEG of at most 320 px"}}
# A key names content, so its pictures never change; a frame is snapped, so few URLs exist.
IMMUTABLE = {"Cache-Control": "private, max-age=86400"}


async def state(request: Request) -> State:
    return request.app.state.media


def hit_json(h) -> dict:
    at = h.frame_ms / 1000 if h.frame_ms >= 0 else None
    return {"key": h.key, "path": h.path, "kind": h.kind, "score": round(h.score, 4),
            "at_s": at, "text": h.caption, "source": h.source, "why": h.why,
            "thumbnail": f"/files/{h.key}/thumbnail" if h.kind in ("image", "video") else None,
            "frame": f"/files/{h.key}/frame?t={at}" if h.kind == "video" and at is not None
            else None}


@router.get("/search", responses={503: {"model": Problem}}, response_model=SearchPage)
async def search(st: State = Depends(state), q: str = Query(max_length=1000, description=
                 "what to look for; empty or only spaces: 422"),
                 k: int = Query(20, ge=1, le=200),
                 kind: list[Literal["image", "video", "audio", "json", "text"]] | None = Query(
                     None, description="only files of this kind; repeat for several "
                                       "(kind=image&kind=video: either)"),
                 after: datetime | None = None, before: datetime | None = None,
                 under: str | None = Query(None, max_length=4096),
                 min_duration: float | None = Query(None, ge=0, le=10**7),
                 max_duration: float | None = Query(None, ge=0, le=10**7),
                 lang: str | None = Query(None, max_length=100, description=
                                          "the spoken language: en, de, ..."),
                 speaker: str | None = Query(None, max_length=200, description=
                                             "only files where this speaker talks: a name "
                                             "given to a voice (any case) or a label S1, "
                                             "S2, ...")) -> dict:
    """Every search leg, fused (README "Search"), with the search filters. `results`: the
    relevant hits only, one per file with its moments and why in words, `count` of them;
    `visually_similar`: the nearest pictures nothing else made relevant; `hits`: the fused
    list as before (relevant first, then fillers scored 0)."""
    from media_assets.lib.search.explain import present
    from media_assets.lib.search.query import Filters, QueryError
    from media_assets.lib.search.query import search as run

    if not q.strip():
        raise HTTPException(422, "empty query: say what to look for")
    if lang is not None and not re.fullmatch(r"[a-z]{2,3}", lang):
        raise HTTPException(422, f"lang: a language code of 2 or 3 lower-case letters, such "
                                 f"as en or de (not {lang[:20]!r})")

    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise HTTPException(422, f"min_duration ({min_duration}) is above max_duration "
                                 f"({max_duration})")
    if after is not None and before is not None:
        try:
            empty = after >= before
        except TypeError:  # one with a time zone, one without
            raise HTTPException(422, "after and before: give both a time zone, or neither"
                                ) from None
        if empty:
            raise HTTPException(422, f"after ({after}) is not earlier than before ({before})")
    speaker = " ".join(speaker.split()) if speaker else None
    filters = Filters(tuple(kind or ()), after, before, under, min_duration, max_duration, lang,
                      speaker)
    try:
        result = await st.lanes.run("search", lambda: run(st.engine, st.models, q, k,
                                                           filters=filters))
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    notes = list(result.notes)
    if speaker:
        from media_assets.lib.speech.speaker_store import unknown_speaker_note

        notes += [n for n in [unknown_speaker_note(st.engine, speaker)] if n]
    results, similar = present(result.hits)
    for r in results:
        r["thumbnail"] = f"/files/{r['key']}/thumbnail" if r["kind"] in ("image", "video") \
            else None
        r["frame"] = (f"/files/{r['key']}/frame?t={r['at_s']}" if r["kind"] == "video"
                      and r["at_s"] is not None else None)
    return {"query": q, "model": result.model_ref, "notes": notes,
            "count": len(results), "results": results,
            "visually_similar": [hit_json(h) for h in similar],
            "hits": [hit_json(h) for h in result.hits]}


def _row(st: State, key: str) -> FileRow:
    if not KEY.match(key):
        raise HTTPException(404, "no such file: a key is 16 hex characters")
    row = FileStore(st.engine).get([key]).get(key)
    if row is None:
        raise HTTPException(404, f"no file with key {key} in the catalogue")
    return row


def servable(st: State, row: FileRow) -> str:
    """A path that still holds this key's content: registered size and modification time
    (`readable_paths`), and, through a symlink, a target catalogued under this same key.
    Otherwise 410: a path swapped for a link to another catalogued file must not serve
    that file's bytes under this key."""
    store = FileStore(st.engine)
    # No size passed: through a link, a size mismatch would mark the *target's* row as
    # changed; the target's key and size are compared here instead.
    paths, why, _ = store.readable_paths(row.key)
    for path in paths:
        entry = store.entry(display_path(path))
        try:
            size = os.stat(path).st_size
        except OSError:
            size = None
        if entry is not None and entry["key"] == row.key and size == row.size_bytes:
            return path
        why = (f"{display_path(path)} now holds other content (catalogued as "
               f"{entry['key'] if entry else 'nothing'}, {size} bytes), not {row.key}")
    raise HTTPException(410, f"the file is catalogued but its path no longer holds this "
                             f"content: {why}")


@router.get("/similar/{key}", responses=FILE_ERRORS, response_model=SimilarPage)
def similar(key: str = Key, st: State = Depends(state), k: int = Query(20, ge=1, le=200),
            ) -> dict:
    """The images and frames nearest a catalogued image (its stored CLIP vector)."""
    from media_assets.lib.images.vectors import stored_vector
    from media_assets.lib.search.query import nearest

    _row(st, key)
    model_ref = st.clip_ref()
    vec = stored_vector(st.engine, key, model_ref)
    if vec is None:
        raise HTTPException(404, f"{key} has no CLIP vector in {model_ref} (not an image, "
                                 "or not embedded yet)")
    hits = [h for h in nearest(st.engine, vec, model_ref, k + 1) if h.key != key]
    return {"key": key, "model": model_ref, "hits": [hit_json(h) for h in hits[:k]]}


@router.get("/files/{key}", responses=FILE_ERRORS, response_model=FileRecord)
def file_record(key: str = Key, st: State = Depends(state)) -> dict:
    """Everything the catalogue knows about one file: its record and EXIF, analysis,
    transcript (with the speaker of each segment), speakers and turns, text read in the
    picture, video frames, JSON table design, clusters and per-asset results."""
    from media_assets.lib.clusters.store import clusters_of_file
    from media_assets.lib.files.results import results_of
    from media_assets.lib.files.store import recorded_paths
    from media_assets.lib.images.store import analysis_of
    from media_assets.lib.images.text_store import picture_text_of
    from media_assets.lib.json_docs.store import load_design
    from media_assets.lib.speech.speaker_store import speakers_of
    from media_assets.lib.speech.store import transcript_of
    from media_assets.lib.video.store import frames_of

    row = _row(st, key)
    engine = st.engine
    transcript = transcript_of(engine, key)
    voices = speakers_of(engine, key) if row.kind in ("audio", "video") else None
    if transcript and voices:
        _speaker_per_segment(engine, key, transcript, voices)
    design = load_design(engine, key) if row.kind == "json" else None
    results = [{"asset": asset, "status": r["status"], "error": r["error"],
                "version": r["version"]} for asset, r in results_of(engine, key).items()]
    out = {"key": row.key, "sha256": row.sha256, "size_bytes": row.size_bytes,
            "path": row.primary_path, "paths": recorded_paths(engine, key), "kind": row.kind,
            "mime_type": row.mime_type, "status": row.status, "error": row.error,
            "details": row.details, "analysis": analysis_of(engine, [key]).get(key),
            "transcript": transcript, "speakers": voices,
            "picture_text": picture_text_of(engine, key) if row.kind in ("image", "video")
            else None,
            "frames": frames_of(engine, key) if row.kind == "video" else None,
            "json_design": design.to_json() if design else None,
            "clusters": clusters_of_file(engine, key), "results": results,
            "thumbnail": f"/files/{key}/thumbnail" if row.kind in ("image", "video")
            else None}
    out.update(viewer_extras(st, row, out))
    return out


def _speaker_per_segment(engine, key: str, transcript: dict, voices: dict) -> None:
    """`speaker` (the label of most of the segment) and `speaker_name` on each segment."""
    from media_assets.lib.speech.speaker_store import segment_speakers

    by_idx = segment_speakers(engine, key)
    names = {s["label"]: s["name"] for s in voices["speakers"]}
    for i, seg in enumerate(transcript["segments"]):
        seg["speaker"] = by_idx.get(i)
        seg["speaker_name"] = names.get(by_idx.get(i))


def viewer_extras(st: State, row: FileRow, record: dict) -> dict:
    """What the viewer shows beside the record: whether the file is still on disk (and
    why not), the date taken, camera and lens, coordinates with a map link, a text note's
    text and a JSON document's first rows."""
    from media_assets.lib.search.browse import json_rows, text_head

    d = row.details or {}
    exif = d.get("exif") or {}
    gps = exif.get("gps") if isinstance(exif.get("gps"), dict) else None
    try:
        path, gone = servable(st, row), None
    except HTTPException as exc:
        path, gone = None, str(exc.detail)
    extras: dict = {
        "on_disk": path is not None,
        "gone": None if path else {"last_path": row.primary_path, "why": gone},
        "taken": exif.get("taken_at"), "camera": exif.get("camera"), "lens": exif.get("lens"),
        "gps": gps, "map_url": (f"https://www.openstreetmap.org/?mlat={gps['lat']}"
                                f"&mlon={gps['lon']}#map=15/{gps['lat']}/{gps['lon']}")
        if gps else None,
        "content": f"/files/{row.key}/content" if path and row.status == "ok" else None,
        "text": None, "json_rows": None}
    if path and row.kind == "text" and row.status == "ok":
        try:
            extras["text"] = text_head(path)
        except OSError as exc:
            extras["gone"] = {"last_path": row.primary_path, "why": str(exc)}
    if row.kind == "json" and record.get("json_design"):
        extras["json_rows"] = json_rows(st.engine, row.key)
    return extras


async def _picture(st: State, row: FileRow, name: str, frame_ms: int) -> Response:
    from media_assets.lib.video.frames import frame_at

    def work() -> bytes:
        path = servable(st, row)

        def make():
            return reduced(path, THUMB_PX) if frame_ms < 0 else frame_at(path, frame_ms)

        try:
            return st.pictures.get(name, make)
        except (HTTPException, BadInput):
            raise
        except Exception as exc:  # a file broken since it was catalogued: PIL, PyAV
            at = f" at {frame_ms / 1000:g} s" if frame_ms >= 0 else ""
            raise HTTPException(422, f"cannot make a picture{at}: {type(exc).__name__}: "
                                     f"{exc}"[:300]) from None

    data = await st.lanes.run("pictures", work)
    return Response(data, media_type="image/jpeg", headers=IMMUTABLE)


@router.get("/files/{key}/thumbnail", response_class=Response,
            responses={**FILE_ERRORS, **JPEG})
async def thumbnail(key: str = Key, st: State = Depends(state)):
    """A JPEG of at most 320 px, made from the original on first request and cached (the
    original is only read)."""
    from starlette.concurrency import run_in_threadpool

    row = await run_in_threadpool(_row, st, key)
    if row.kind not in ("image", "video"):
        raise HTTPException(404, f"a {row.kind} file has no picture")
    return await _picture(st, row, key, 0 if row.kind == "video" else -1)


def snap_ms(t: float, stored_ms: list[int], duration: float | None) -> int:
    """The frame time served for `t` seconds: the nearest stored frame within half a
    second, else the whole second; past the end of the video, 422."""
    if duration is not None and t > duration + 1e-3:
        raise HTTPException(422, f"t={t:g} s is past the end of the video ({duration:g} s)")
    ms = round(t * 1000)
    if stored_ms:
        near = min(stored_ms, key=lambda f: abs(f - ms))
        if abs(near - ms) <= 500:
            return near
    return int(t) * 1000


@router.get("/files/{key}/frame", response_class=Response, responses={**FILE_ERRORS, **JPEG})
async def frame(key: str = Key, st: State = Depends(state),
                t: float = Query(0.0, ge=0, le=86400)):
    """The video frame at `t` seconds (snapped to a stored frame time, or to the whole
    second), as a cached JPEG of at most 320 px; past the end of the video, 422."""
    from starlette.concurrency import run_in_threadpool

    from media_assets.lib.video.store import frames_of

    def look() -> tuple[FileRow, int]:
        row = _row(st, key)
        if row.kind != "video":
            raise HTTPException(404, f"a {row.kind} file has no frames")
        duration = (row.details or {}).get("duration_s")
        stored = [f["frame_ms"] for f in frames_of(st.engine, key)]
        return row, snap_ms(t, stored, duration if isinstance(duration, (int, float))
                            else None)

    row, ms = await run_in_threadpool(look)
    return await _picture(st, row, f"{key}_{ms}", ms)


@router.get("/files/{key}/content", response_class=FileResponse,
            responses={**FILE_ERRORS, 200: {"description": "the original file's bytes"}})
def content(key: str = Key, st: State = Depends(state)):
    """The original file, by key only (range requests: a video opens at its moment)."""
    row = _row(st, key)
    return FileResponse(servable(st, row), media_type=row.mime_type
                        or "application/octet-stream")


@router.get("/clusters", response_model=ClustersView)
def clusters(st: State = Depends(state)) -> dict:
    """Every cluster: name, size, folder, tags, hierarchy, representatives."""
    from media_assets.lib.clusters.store import overview

    view = overview(st.engine)
    for c in view["clusters"]:
        for r in c["representatives"]:
            r["thumbnail"] = (f"/files/{r['key']}/frame?t={r['frame_ms'] / 1000}"
                              if r["frame_ms"] >= 0 else f"/files/{r['key']}/thumbnail")
    return view
