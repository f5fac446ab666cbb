"""The seed's model services (docs/contracts.md). Each handler admits its work to a lane
(`inference.py`) and runs it in that lane's threads; the models themselves are used one
inference at a time each, through `State.models`."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Depends, Request

from media_assets.api.body import CheckedRoute
from media_assets.api.media import BadInput, decode_base64, probed, reduced
from media_assets.api.schemas import (BODY_ERRORS, AnalyzeImageRequest, AnalyzeImageResponse,
                                      EnrichClusterRequest, EnrichClusterResponse,
                                      GenerateRequest, GenerateResponse, JsonSchemaRequest,
                                      JsonSchemaResponse, LabelClusterRequest,
                                      LabelClusterResponse, TranscribeRequest,
                                      TranscribeResponse)
from media_assets.api.state import State
from media_assets.lib.models.roles import Role

THUMB = 320  # what the models see: 224-512 px

router = APIRouter(route_class=CheckedRoute, tags=["models"], responses=BODY_ERRORS)


async def state(request: Request) -> State:
    return request.app.state.media


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


@router.post("/analyze-image", response_model=AnalyzeImageResponse)
async def analyze_image(req: AnalyzeImageRequest, st: State = Depends(state)) -> dict:
    """Caption (BLIP-2), objects and scene (CLIP zero-shot) and dominant colours of one
    image. `bbox` is always null: CLIP zero-shot finds what is in the picture, not where,
    and no box is ever invented. Without the captioner the caption is CLIP-only and
    `degraded` says why. The task "text" (beyond the seed) reads the text written in the
    picture (PP-OCRv6): its lines with boxes, confidence and language."""
    from media_assets.lib.images.analysis import AnalysisSettings, analyse_images

    tasks = set(req.tasks)

    def work() -> dict:
        start = time.perf_counter()
        raw = decode_base64(req.image, "image")
        with probed(raw, ("image",), st.limits, "image") as (path, _):
            img = reduced(path, THUMB)
            text = _read_text(st, path) if "text" in tasks else None
        if not tasks - {"text"}:  # only the text: no CLIP, no captioner
            return {"caption": None, "objects": None, "scene_type": None,
                    "dominant_colors": None, "dominant_colors_detail": None,
                    "processing_time_ms": _ms(start), "degraded": False,
                    "degraded_reason": None, "text": text}
        a = analyse_images(st.models, [img], AnalysisSettings(
            questions=[], use_captioner="caption" in tasks))[0]
        return {"caption": a.caption if "caption" in tasks else None,
                "objects": [{"name": o["name"], "confidence": o["confidence"], "bbox": None}
                            for o in a.objects] if "objects" in tasks else None,
                "scene_type": a.scene_type if "scene" in tasks else None,
                # The seed's hex list; each colour's share beside it.
                "dominant_colors": [c["hex"] for c in a.dominant_colors]
                if "colors" in tasks else None,
                "dominant_colors_detail": a.dominant_colors if "colors" in tasks else None,
                "processing_time_ms": round(a.processing_time_ms, 1),
                "degraded": a.degraded and "caption" in tasks,
                "degraded_reason": a.degraded_reason if "caption" in tasks else None,
                "text": text}

    return await st.lanes.run("vision", work)


def _read_text(st: State, path: str) -> dict:
    """The picture's text, read from the original reduced to at most OCR_SIDE px (a
    320-px thumbnail is too small for ordinary print)."""
    from media_assets.lib.images.ocr import language_of, read_path

    st.inventory.locate(Role.OCR)  # ModelNotFound: 503 with what to install
    with st.models.use(Role.OCR) as engine:
        t = read_path(engine, path)
    language = t.language
    return {"text": t.text, "language": language, "is_document": t.is_document,
            "note": t.note,
            "lines": [{**line.as_dict(), "language": language_of(line.text) or language}
                      for line in t.lines]}


@router.post("/label-cluster", response_model=LabelClusterResponse)
async def label_cluster(req: LabelClusterRequest, st: State = Depends(state)) -> dict:
    """Name, description, tags, category and a computed confidence for a cluster, from
    up to 5 representative images (README "Clusters" says how)."""
    from media_assets.lib.clusters.labels import label_clusters
    from media_assets.lib.clusters.method import centroid
    from media_assets.lib.models.clip import image_features

    def work() -> dict:
        start = time.perf_counter()
        images = []
        for i, data in enumerate(req.images):
            with probed(decode_base64(data, f"images[{i}]"), ("image",), st.limits,
                        f"images[{i}]") as (path, _):
                images.append(reduced(path, THUMB))
        with st.models.use(Role.CLIP) as clip:
            feats = image_features(clip, images)
        label = label_clusters(st.models, [(req.cluster_size, centroid(feats), images)])[0]
        return {**label.contract(), "processing_time_ms": _ms(start)}

    return await st.lanes.run("vision", work)


@router.post("/transcribe", response_model=TranscribeResponse)
async def transcribe(req: TranscribeRequest, st: State = Depends(state)) -> dict:
    """Text, language and timed segments (faster-whisper), optionally with words. With
    `"options": {"diarize": true}` (beyond the seed) the segments are cut where the speaker
    changes and each has `speaker` (S1, S2, ... in order of first speech, GE2E voices
    clustered); `speakers` lists them with talk time and the name of a voice named in the
    catalogue when one is within the naming distance."""
    from media_assets.lib.speech.transcribe import transcribe as run

    diarize = req.options.diarize
    if diarize:
        st.inventory.locate(Role.SPEAKER)  # ModelNotFound: 503 before any work

    def work() -> dict:
        raw = decode_base64(req.audio, "audio")
        with probed(raw, ("audio", "video"), st.limits, "audio") as (path, _):
            with st.models.use(Role.WHISPER) as model:
                try:
                    # Words place a turn change inside a segment: timed for diarize too.
                    # "auto" chooses among MEDIA_ASSETS_LANGUAGES, as ingest does (Whisper
                    # alone took clear German for Yiddish).
                    t = run(model, path, language=None if req.language == "auto"
                            else req.language,
                            word_timestamps=req.options.word_level or diarize,
                            languages=st.settings.languages)
                except Exception as exc:  # decodes in the probe, fails later: still input
                    raise BadInput(f"audio: cannot be transcribed ({type(exc).__name__}: "
                                   f"{exc})"[:500]) from None
            voices = _speakers(st, path, t) if diarize else None
        out = t.as_response()
        if voices is not None:
            out["segments"], out["speakers"], out["diarization_note"], ms = voices
            out["processing_time_ms"] += ms
            if not req.options.word_level:
                for s in out["segments"]:
                    s.pop("words", None)
        if not req.options.timestamps:
            out["segments"] = [{"start": None, "end": None, "text": s["text"],
                                **({"speaker": s["speaker"]} if diarize else {})}
                               for s in out["segments"]]
        out["processing_time_ms"] = round(out["processing_time_ms"], 1)
        return out

    return await st.lanes.run("speech", work)


def _speakers(st: State, path: str, t) -> tuple[list[dict], list[dict], str | None, float]:
    """(segments cut by speaker, speakers, note, milliseconds) for a transcript of `path`."""
    from media_assets.lib.speech.speaker_store import names_of_voices
    from media_assets.lib.speech.speakers import diarize, split_by_speaker

    start = time.perf_counter()
    segments = t.as_response()["segments"]
    with st.models.use(Role.SPEAKER) as encoder:
        d = diarize(encoder, path, segments)
    names = names_of_voices(st.engine, [s.centroid for s in d.speakers])
    speakers = [{"label": s.label, "name": n, "talk_s": s.talk_s, "first_s": s.first_s}
                for s, n in zip(d.speakers, names)]
    return split_by_speaker(segments, d), speakers, d.note, _ms(start)


@router.post("/generate", response_model=GenerateResponse,
             response_model_exclude_none=True)
async def generate(req: GenerateRequest, st: State = Depends(state)) -> dict:
    """Text from the local LLM (Phi-3.5), loaded on demand and unloaded after; 503 with
    what to install when it is missing."""
    from media_assets.lib.models.text import generate as run

    def work() -> dict:
        start = time.perf_counter()
        st.inventory.locate(Role.LLM)  # ModelNotFound: 503 with advice
        with st.models.use(Role.LLM) as llm:
            out = run(llm, [{"role": "user", "content": req.prompt}], req.max_tokens,
                      req.temperature, req.stop_sequences, json_schema=req.json_schema)
        reply = {"text": out.text, "tokens_generated": out.tokens_generated,
                 "processing_time_ms": _ms(start)}
        if req.json_schema is not None:
            reply["constraint"] = out.constraint  # "schema", or why it could not be enforced
        return reply

    return await st.lanes.run("llm", work)


@router.post("/analyze-json-schema", response_model=JsonSchemaResponse)
async def analyze_json_schema(req: JsonSchemaRequest, st: State = Depends(state)) -> dict:
    """A table design (types, storage, indexes, reasoning) for JSON samples; the LLM, when
    present, names and describes, and its answer is validated."""
    from media_assets.lib.json_docs.llm import improve
    from media_assets.lib.json_docs.schema import infer_schema

    def work() -> dict:
        start = time.perf_counter()
        design = infer_schema(req.json_samples, "data")
        role, status = st.optional_llm()
        if role is not None:
            with st.models.use(role) as llm:
                design, status = improve(llm, design, req.json_samples, req.user_comment)
        out = design.contract()
        # The seed's indexes are field names; the design (type, uniqueness, why) is beside.
        names = list(dict.fromkeys(c for ix in out["indexes"] for c in ix["columns"]))
        return {**out, "indexes": names, "index_design": out["indexes"], "llm": status,
                "processing_time_ms": _ms(start)}

    return await st.lanes.run("llm", work)


@router.post("/enrich-cluster", response_model=EnrichClusterResponse)
async def enrich_cluster(req: EnrichClusterRequest, st: State = Depends(state)) -> dict:
    """Hierarchy, safe folder path, 10-20 tags, relationships and a search description
    (Phi-3.5, validated; a heuristic when it fails or is absent, and `source` says which)."""
    from media_assets.lib.clusters.hierarchy import LabelView, enrich
    from media_assets.lib.clusters.labels import CATEGORIES
    from media_assets.lib.clusters.seed import seed_contract
    from media_assets.lib.models.clip import embed_texts

    def work() -> dict:
        start = time.perf_counter()
        category = "objects"
        if st.inventory.available(Role.CLIP):  # else the category stays "objects"
            with st.models.use(Role.CLIP) as clip:
                vecs = embed_texts(clip, [f"a photo of {req.cluster_name}."]
                                   + list(CATEGORIES.values()))
            category = list(CATEGORIES)[int(np.argmax(vecs[1:] @ vecs[0]))]
        label = LabelView(req.cluster_name, req.description, [], category,
                          tuple(req.sample_captions))
        role, why = st.optional_llm()
        if role is not None:
            with st.models.use(role) as llm:
                e = enrich(llm, label, [], st.settings.models.model_id(Role.LLM))
        else:
            e = enrich(None, label, [], why_no_llm=why)
        return {**seed_contract(e), "processing_time_ms": _ms(start)}

    return await st.lanes.run("llm", work)
