"""`media-assets serve`: the seed's contracts over HTTP, search and the catalogue by key, and
the web page at `/`. Every endpoint calls the `lib/` functions the assets call.

Models: one `ModelManager` for the process, in the machine-wide budget (the PostgreSQL
ledger, `lib/db/ledger.py`), one inference at a time (requests queue for the model and a
model is never loaded twice), idle models unloaded after MEDIA_ASSETS_API_IDLE_UNLOAD_S.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from media_assets.api.media import BadInput, cached_picture, decode_base64, probed
from media_assets.lib.files.probe import Limits
from media_assets.lib.models.locate import ModelNotFound, locate
from media_assets.lib.models.roles import ROLES, Role
from media_assets.lib.settings import Settings

STATIC = Path(__file__).parent / "static"
KEY = re.compile(r"^[0-9a-f]{16}$")
TASKS = ("caption", "objects", "scene", "colors")


# -- request and response shapes (docs/contracts.md) ----------------------------------
class AnalyzeImageRequest(BaseModel):
    image: str = Field(description="The image file, base64.")
    tasks: list[Literal["caption", "objects", "scene", "colors"]] = Field(
        default_factory=lambda: list(TASKS))


class LabelClusterRequest(BaseModel):
    images: list[str] = Field(min_length=1, max_length=5,
                              description="Up to 5 representative images, base64.")
    cluster_size: int = Field(ge=1)


class TranscribeOptions(BaseModel):
    timestamps: bool = True
    word_level: bool = False


class TranscribeRequest(BaseModel):
    audio: str = Field(description="An audio (or video) file, base64.")
    language: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3})$")
    options: TranscribeOptions = Field(default_factory=TranscribeOptions)


class GenerateRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=20000)
    max_tokens: int = Field(default=256, ge=1, le=2048)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stop_sequences: list[str] = Field(default_factory=list, max_length=8)


class JsonSchemaRequest(BaseModel):
    json_samples: list[Any] = Field(min_length=1, max_length=2000)
    user_comment: str | None = Field(default=None, max_length=2000)


class EnrichClusterRequest(BaseModel):
    cluster_name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    sample_captions: list[str] = Field(default_factory=list, max_length=20)


# -- the process's state -----------------------------------------------------------------
class State:
    """The catalogue, the model manager (with the ledger) and the inference queue."""

    def __init__(self, settings: Settings):
        from media_assets.lib.db import open_catalog
        from media_assets.lib.db.ledger import ModelLedger
        from media_assets.lib.models.registry import build_manager

        self.settings = settings
        self.catalog = open_catalog(settings)
        self.manager = build_manager(settings.models)
        self.ledger = (ModelLedger(self.catalog.engine, self.manager.device)
                       if settings.shared_budget else None)
        self.manager.ledger = self.ledger
        self.infer = threading.Lock()  # one inference at a time: requests queue for it
        self.limits = Limits(settings.max_image_pixels, settings.max_json_bytes,
                             settings.max_text_bytes)
        self.thumbs = settings.home / "thumbnails"
        self._stop = threading.Event()
        self._ttl = threading.Thread(target=self._unload_idle, daemon=True, name="idle-unload")
        self._ttl.start()

    def _unload_idle(self) -> None:
        ttl = self.settings.api_idle_unload_s
        while not self._stop.wait(max(1.0, min(ttl / 4, 30.0))):
            self.manager.unload_idle(ttl)

    def close(self) -> None:
        self._stop.set()
        self.manager.unload_all()
        if self.ledger is not None:
            self.ledger.close()
        self.catalog.dispose()

    def optional_llm(self):
        """(the LLM's role name when its weights are here, or None; why not)."""
        try:
            locate(Role.LLM, self.settings.models.model_id(Role.LLM))
            return Role.LLM, ""
        except ModelNotFound as exc:
            return None, f"no LLM: {exc}"[:300]


class BodyLimit:
    """ASGI middleware: a request body over the limit gets 413 before it is all read."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _too_large(self.max_bytes, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(self.max_bytes, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, send) -> None:
    body = (b'{"detail":"request body over %d MB (MEDIA_ASSETS_API_MAX_REQUEST_MB)"}'
            % (limit // 2**20))
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    holder: dict[str, State] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder["state"] = State(settings)
        app.state.media = holder["state"]
        yield
        holder.pop("state").close()

    app = FastAPI(title="media_assets", version="0.1.0", lifespan=lifespan,
                  description="The catalogue's model services (the seed's contracts), search, "
                              "and files by catalogue key. Local models only.")
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_request_mb * 2**20)

    def state() -> State:
        return holder["state"]

    def authorised(request: Request) -> None:
        """With MEDIA_ASSETS_API_TOKEN set, every endpoint but /health and the page's
        static files wants `Authorization: Bearer <token>` (or `?token=` for images)."""
        token = settings.api_token
        if not token:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given != token and request.query_params.get("token") != token:
            raise HTTPException(401, "missing or wrong token (MEDIA_ASSETS_API_TOKEN)")

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ModelNotFound)
    async def no_model(request: Request, exc: ModelNotFound):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    guarded = [Depends(authorised)]

    # -- health ------------------------------------------------------------------------
    @app.get("/health", tags=["health"])
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], dependencies=guarded)
    def ready(st: State = Depends(state)) -> JSONResponse:
        """The database reachable, and each model found or missing (as `doctor` says)."""
        import sqlalchemy as sa

        out: dict = {"database": "ok", "models": {}}
        try:
            with st.catalog.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            out["database"] = f"unreachable: {exc}"[:300]
        for role, spec in ROLES.items():
            model_id = settings.models.model_id(role)
            try:
                found = locate(role, model_id)
                out["models"][role] = {"status": "found", "id": model_id,
                                       "path": str(found.path), "required": spec.required}
            except ModelNotFound as exc:
                out["models"][role] = {"status": "missing", "id": model_id,
                                       "required": spec.required, "how": str(exc)[:500]}
        out["loaded"] = st.manager.loaded()
        ok = out["database"] == "ok" and all(m["status"] == "found" or not m["required"]
                                             for m in out["models"].values())
        out["status"] = "ready" if ok else "not ready"
        return JSONResponse(out, status_code=200 if ok else 503)

    # -- model services (docs/contracts.md) ----------------------------------------------
    @app.post("/analyze-image", tags=["models"], dependencies=guarded)
    def analyze_image(req: AnalyzeImageRequest, st: State = Depends(state)) -> dict:
        """Caption (BLIP-2), objects and scene (CLIP zero-shot) and dominant colours of one
        image. `bbox` is always null: CLIP zero-shot finds what is in the picture, not
        where, and no box is ever invented. Without the captioner the caption is CLIP-only
        and `degraded` says why."""
        from media_assets.lib.images.analysis import (AnalysisSettings, analyse_images,
                                                      open_thumbnail)

        raw = decode_base64(req.image, "image")
        tasks = set(req.tasks)
        with probed(raw, ("image",), st.limits, "image") as (path, _):
            img = open_thumbnail(path)
        with st.infer:
            a = analyse_images(st.manager, [img], AnalysisSettings(
                questions=[], use_captioner="caption" in tasks))[0]
        return {"caption": a.caption if "caption" in tasks else None,
                "objects": [{"name": o["name"], "confidence": o["confidence"], "bbox": None}
                            for o in a.objects] if "objects" in tasks else None,
                "scene_type": a.scene_type if "scene" in tasks else None,
                "dominant_colors": a.dominant_colors if "colors" in tasks else None,
                "processing_time_ms": round(a.processing_time_ms, 1),
                "degraded": a.degraded and "caption" in tasks,
                "degraded_reason": a.degraded_reason if "caption" in tasks else None}

    @app.post("/label-cluster", tags=["models"], dependencies=guarded)
    def label_cluster(req: LabelClusterRequest, st: State = Depends(state)) -> dict:
        """Name, description, tags, category and a computed confidence for a cluster, from
        up to 5 representative images (README "Clusters" says how)."""
        from media_assets.lib.clusters.labels import label_clusters
        from media_assets.lib.clusters.method import centroid
        from media_assets.lib.images.analysis import open_thumbnail
        from media_assets.lib.models.clip import image_features

        start = time.perf_counter()
        images = []
        for i, data in enumerate(req.images):
            with probed(decode_base64(data, f"images[{i}]"), ("image",), st.limits,
                        f"images[{i}]") as (path, _):
                images.append(open_thumbnail(path))
        with st.infer:
            with st.manager.use(Role.CLIP) as clip:
                feats = image_features(clip, images)
            label = label_clusters(st.manager, [(req.cluster_size, centroid(feats), images)])[0]
        return {**label.contract(),
                "processing_time_ms": round((time.perf_counter() - start) * 1000, 1)}

    @app.post("/transcribe", tags=["models"], dependencies=guarded)
    def transcribe(req: TranscribeRequest, st: State = Depends(state)) -> dict:
        """Text, language and timed segments (faster-whisper), optionally with words."""
        from media_assets.lib.speech.transcribe import transcribe as run

        raw = decode_base64(req.audio, "audio")
        with probed(raw, ("audio", "video"), st.limits, "audio") as (path, _):
            with st.infer, st.manager.use(Role.WHISPER) as model:
                try:
                    t = run(model, path, language=None if req.language == "auto"
                            else req.language, word_timestamps=req.options.word_level)
                except Exception as exc:  # decodes in the probe, fails later: still input
                    raise BadInput(f"audio: cannot be transcribed ({type(exc).__name__}: "
                                   f"{exc})"[:500]) from None
        out = t.as_response()
        if not req.options.timestamps:
            out["segments"] = [{"start": None, "end": None, "text": s["text"]}
                               for s in out["segments"]]
        out["processing_time_ms"] = round(out["processing_time_ms"], 1)
        return out

    @app.post("/generate", tags=["models"], dependencies=guarded)
    def generate(req: GenerateRequest, st: State = Depends(state)) -> dict:
        """Text from the local LLM (Phi-3.5), loaded on demand and unloaded after."""
        from media_assets.lib.models.text import generate as run

        start = time.perf_counter()
        locate(Role.LLM, settings.models.model_id(Role.LLM))  # 503 with advice if missing
        with st.infer, st.manager.use(Role.LLM) as llm:
            out = run(llm, [{"role": "user", "content": req.prompt}], req.max_tokens,
                      req.temperature, req.stop_sequences)
        return {"text": out.text, "tokens_generated": out.tokens_generated,
                "processing_time_ms": round((time.perf_counter() - start) * 1000, 1)}

    @app.post("/analyze-json-schema", tags=["models"], dependencies=guarded)
    def analyze_json_schema(req: JsonSchemaRequest, st: State = Depends(state)) -> dict:
        """A table design (types, storage, indexes, reasoning) for JSON samples; the LLM,
        when present, names and describes, and its answer is validated."""
        from media_assets.lib.json_docs.llm import improve
        from media_assets.lib.json_docs.schema import infer_schema

        start = time.perf_counter()
        design = infer_schema(req.json_samples, "data")
        role, why = st.optional_llm()
        status = why
        if role is not None:
            with st.infer, st.manager.use(role) as llm:
                design, status = improve(llm, design, req.json_samples, req.user_comment)
        return {**design.contract(), "llm": status,
                "processing_time_ms": round((time.perf_counter() - start) * 1000, 1)}

    @app.post("/enrich-cluster", tags=["models"], dependencies=guarded)
    def enrich_cluster(req: EnrichClusterRequest, st: State = Depends(state)) -> dict:
        """Hierarchy, safe folder path, 10-20 tags, relationships and a search description
        (Phi-3.5, validated; a heuristic when it fails or is absent, and `source` says
        which). `similar_to` lists catalogue clusters whose names match."""
        from media_assets.lib.clusters.hierarchy import LabelView, enrich
        from media_assets.lib.clusters.labels import CATEGORIES
        from media_assets.lib.models.clip import embed_texts

        start = time.perf_counter()
        category = "objects"
        with st.infer:
            try:
                with st.manager.use(Role.CLIP) as clip:
                    vecs = embed_texts(clip, [f"a photo of {req.cluster_name}."]
                                       + list(CATEGORIES.values()))
                category = list(CATEGORIES)[int(np.argmax(vecs[1:] @ vecs[0]))]
            except ModelNotFound:
                pass
            label = LabelView(req.cluster_name, req.description, [], category,
                              tuple(req.sample_captions))
            role, why = st.optional_llm()
            if role is not None:
                with st.manager.use(role) as llm:
                    e = enrich(llm, label, [], settings.models.model_id(Role.LLM))
            else:
                e = enrich(None, label, [], why_no_llm=why)
        return {**e.contract(),
                "processing_time_ms": round((time.perf_counter() - start) * 1000, 1)}

    # -- the catalogue ---------------------------------------------------------------------
    def _hit(h) -> dict:
        at = h.frame_ms / 1000 if h.frame_ms >= 0 else None
        return {"key": h.key, "path": h.path, "kind": h.kind, "score": round(h.score, 4),
                "at_s": at, "text": h.caption, "source": h.source, "why": h.why,
                "thumbnail": f"/files/{h.key}/thumbnail" if h.kind in ("image", "video")
                else None,
                "frame": f"/files/{h.key}/frame?t={at}" if h.kind == "video" and at is not None
                else None}

    @app.get("/search", tags=["catalogue"], dependencies=guarded)
    def search(st: State = Depends(state), q: str = Query(min_length=1, max_length=1000),
               k: int = Query(20, ge=1, le=200), kind: str | None = None,
               after: datetime | None = None, before: datetime | None = None,
               under: str | None = None, min_duration: float | None = Query(None, ge=0),
               max_duration: float | None = Query(None, ge=0),
               lang: str | None = None) -> dict:
        """Every search leg, fused (README "Search"), with the search filters."""
        from media_assets.lib.search.query import Filters, QueryError
        from media_assets.lib.search.query import search as run

        filters = Filters(kind, after, before, under, min_duration, max_duration, lang)
        try:
            with st.infer:
                result = run(st.catalog.engine, st.manager, q, k, filters=filters)
        except QueryError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"query": q, "model": result.model_ref, "notes": result.notes,
                "hits": [_hit(h) for h in result.hits]}

    def _file(st: State, key: str):
        from media_assets.lib.files.store import FileStore

        if not KEY.match(key):
            raise HTTPException(404, "no such file: a key is 16 hex characters")
        row = FileStore(st.catalog.engine).get([key]).get(key)
        if row is None:
            raise HTTPException(404, f"no file with key {key} in the catalogue")
        return row

    def _readable(st: State, key: str) -> str:
        from media_assets.lib.files.store import FileStore

        paths, why, _ = FileStore(st.catalog.engine).readable_paths(key)
        if not paths:
            raise HTTPException(410, f"the file is catalogued but cannot be read now: {why}")
        return paths[0]

    @app.get("/similar/{key}", tags=["catalogue"], dependencies=guarded)
    def similar(key: str, st: State = Depends(state), k: int = Query(20, ge=1, le=200)) -> dict:
        """The images and frames nearest a catalogued image (its stored CLIP vector)."""
        from media_assets.lib.images.vectors import stored_vector
        from media_assets.lib.models.registry import clip_model_ref
        from media_assets.lib.search.query import nearest

        _file(st, key)
        model_ref = clip_model_ref(settings.models)
        vec = stored_vector(st.catalog.engine, key, model_ref)
        if vec is None:
            raise HTTPException(404, f"{key} has no CLIP vector in {model_ref} (not an image, "
                                     "or not embedded yet)")
        hits = [h for h in nearest(st.catalog.engine, vec, model_ref, k + 1) if h.key != key]
        return {"key": key, "model": model_ref, "hits": [_hit(h) for h in hits[:k]]}

    @app.get("/files/{key}", tags=["catalogue"], dependencies=guarded)
    def file_record(key: str, st: State = Depends(state)) -> dict:
        """Everything the catalogue knows about one file: its record and EXIF, analysis,
        transcript, video frames, JSON table design, clusters and per-asset results."""
        import sqlalchemy as sa

        from media_assets.lib.images.store import analysis_of
        from media_assets.lib.json_docs.store import load_design
        from media_assets.lib.speech.store import transcript_of
        from media_assets.lib.video.store import frames_of

        row = _file(st, key)
        engine = st.catalog.engine
        design = load_design(engine, key) if row.kind == "json" else None
        with engine.connect() as conn:
            clusters = [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT c.id, l.cluster_name AS name, h.folder_path, m.similarity "
                "FROM cluster_members m JOIN clusters c ON c.id = m.cluster_id "
                "LEFT JOIN cluster_labels l ON l.cluster_id = c.id "
                "LEFT JOIN cluster_hierarchies h ON h.cluster_id = c.id WHERE m.key = :k"),
                {"k": key})]
            results = [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT asset, status, error, version FROM file_asset_results WHERE key = :k "
                "ORDER BY asset"), {"k": key})]
            paths = list(conn.execute(sa.text(
                "SELECT path FROM media_paths WHERE key = :k ORDER BY first_seen_at"),
                {"k": key}).scalars())
        return {"key": row.key, "sha256": row.sha256, "size_bytes": row.size_bytes,
                "path": row.primary_path, "paths": paths, "kind": row.kind,
                "mime_type": row.mime_type, "status": row.status, "error": row.error,
                "details": row.details, "analysis": analysis_of(engine, [key]).get(key),
                "transcript": transcript_of(engine, key),
                "frames": frames_of(engine, key) if row.kind == "video" else None,
                "json_design": design.to_json() if design else None,
                "clusters": clusters, "results": results,
                "thumbnail": f"/files/{key}/thumbnail" if row.kind in ("image", "video")
                else None}

    @app.get("/files/{key}/thumbnail", tags=["catalogue"], dependencies=guarded,
             response_class=FileResponse)
    def thumbnail(key: str, st: State = Depends(state)):
        """A JPEG of at most 320 px, made from the original on first request and cached
        under the data home (the original is only read)."""
        from media_assets.lib.clusters.visuals import picture

        row = _file(st, key)
        if row.kind not in ("image", "video"):
            raise HTTPException(404, f"a {row.kind} file has no picture")
        path = _readable(st, key)
        ms = 0 if row.kind == "video" else -1
        try:
            out = cached_picture(st.thumbs, key, lambda: picture(path, ms))
        except Exception as exc:
            raise HTTPException(422, f"cannot make a thumbnail: {type(exc).__name__}: "
                                     f"{exc}"[:300]) from None
        return FileResponse(out, media_type="image/jpeg")

    @app.get("/files/{key}/frame", tags=["catalogue"], dependencies=guarded,
             response_class=FileResponse)
    def frame(key: str, st: State = Depends(state), t: float = Query(0.0, ge=0, le=86400)):
        """The video frame at `t` seconds, as a cached JPEG of at most 320 px."""
        from media_assets.lib.video.frames import frame_at

        row = _file(st, key)
        if row.kind != "video":
            raise HTTPException(404, f"a {row.kind} file has no frames")
        path = _readable(st, key)
        ms = int(t * 1000)
        try:
            out = cached_picture(st.thumbs, f"{key}_{ms}", lambda: frame_at(path, ms))
        except Exception as exc:
            raise HTTPException(422, f"no frame at {t} s: {type(exc).__name__}: {exc}"[:300]
                                ) from None
        return FileResponse(out, media_type="image/jpeg")

    @app.get("/files/{key}/content", tags=["catalogue"], dependencies=guarded,
             response_class=FileResponse)
    def content(key: str, st: State = Depends(state)):
        """The original file, by key only (range requests: a video opens at its moment)."""
        row = _file(st, key)
        return FileResponse(_readable(st, key), media_type=row.mime_type
                            or "application/octet-stream")

    @app.get("/clusters", tags=["catalogue"], dependencies=guarded)
    def clusters(st: State = Depends(state)) -> dict:
        """Every cluster: name, size, folder, tags, hierarchy, representatives."""
        from media_assets.lib.clusters.store import overview

        view = overview(st.catalog.engine)
        for c in view["clusters"]:
            for r in c["representatives"]:
                r["thumbnail"] = (f"/files/{r['key']}/frame?t={r['frame_ms'] / 1000}"
                                  if r["frame_ms"] >= 0 else f"/files/{r['key']}/thumbnail")
        return view

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
