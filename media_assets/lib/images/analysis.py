"""Image analysis per image: caption, answers, objects, scene, colours; CLIP-only fallback.

The captioner is optional. When it cannot load (weights missing, no room in the budget, a
broken folder) the analysis goes on with CLIP alone: the caption is then built from the
zero-shot labels and the result says it is degraded, and why.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from media_assets.lib.images.colors import dominant_colors
from media_assets.lib.imaging import open_reduced
from media_assets.lib.images.captioner import answer_question, caption_images
from media_assets.lib.models.clip import image_features, zero_shot
from media_assets.lib.models.manager import ModelManager

DEFAULT_QUESTIONS = ["What is the main subject of this photo?", "Where was this photo taken?"]
DEFAULT_SCENES = ["indoor", "outdoor", "portrait", "landscape", "cityscape", "food",
                  "document or screenshot", "night scene", "beach", "mountains", "forest",
                  "snow", "party", "sports"]
DEFAULT_OBJECTS = [
    "person", "child", "cat", "dog", "horse", "bird", "cow", "sheep", "car", "bicycle",
    "motorcycle", "bus", "truck", "train", "boat", "airplane", "rocket", "building", "house",
    "tree", "flower", "mountain", "sky", "sea", "river", "road", "bridge", "chair", "sofa",
    "bed", "table", "television", "laptop", "phone", "book", "cup", "coffee", "bottle", "plate",
    "food", "cake", "fruit", "ball", "clock", "lamp", "window", "door", "text", "star", "galaxy",
]
OBJECT_MIN_PROBABILITY = 0.05
THUMB = 512  # the captioner and CLIP see at most 224-384 px: decode smaller, faster


@dataclass
class Analysis:
    caption: str
    answers: dict[str, str]
    objects: list[dict]
    scene_type: str
    scene_confidence: float
    dominant_colors: list[dict]
    degraded: bool
    degraded_reason: str | None
    processing_time_ms: float
    captioner_model: str | None = None
    clip_model: str = ""


@dataclass
class AnalysisSettings:
    questions: list[str] = field(default_factory=lambda: list(DEFAULT_QUESTIONS))
    objects: list[str] = field(default_factory=lambda: list(DEFAULT_OBJECTS))
    scenes: list[str] = field(default_factory=lambda: list(DEFAULT_SCENES))
    use_captioner: bool = True


def open_thumbnail(path: str) -> Image.Image:
    return open_reduced(path, THUMB)


def clip_only_caption(objects: list[dict], scene: str) -> str:
    names = [o["name"] for o in objects[:3]]
    if not names:
        return f"a {scene} photo"
    return f"a {scene} photo with " + ", ".join(names)


def analyse_images(manager: ModelManager, images: Sequence[Image.Image],
                   settings: AnalysisSettings, feats: np.ndarray | None = None) -> list[Analysis]:
    """Analyse a batch; CLIP is required, the captioner improves the text when it loads.
    `feats`: CLIP vectors of the images when the caller has them already."""
    start = time.perf_counter()
    with manager.use("clip") as clip:
        if feats is None:
            feats = image_features(clip, images)
        obj_probs = zero_shot(clip, feats, settings.objects)
        scene_probs = zero_shot(clip, feats, settings.scenes, "a {} photo.")
        clip_ref = clip.model_ref
    per_image_clip = (time.perf_counter() - start) / max(1, len(images))
    results = []
    for i, img in enumerate(images):
        t = time.perf_counter()
        order = obj_probs[i].argsort()[::-1]
        objects = [{"name": settings.objects[j], "confidence": round(float(obj_probs[i][j]), 4)}
                   for j in order[:5] if obj_probs[i][j] >= OBJECT_MIN_PROBABILITY]
        s = int(scene_probs[i].argmax())
        scene = settings.scenes[s]
        colors = dominant_colors(img)
        results.append(Analysis(
            caption=clip_only_caption(objects, scene), answers={}, objects=objects,
            scene_type=scene, scene_confidence=round(float(scene_probs[i][s]), 4),
            dominant_colors=colors, degraded=True, degraded_reason="captioner not used",
            processing_time_ms=(per_image_clip + time.perf_counter() - t) * 1000,
            clip_model=clip_ref))
    if not settings.use_captioner:
        for r in results:
            r.degraded_reason = "captioner disabled in config"
        return results
    t = time.perf_counter()
    try:
        with manager.use("captioner") as captioner:
            captions = caption_images(captioner, images)
            answers = {q: answer_question(captioner, images, q) for q in settings.questions}
            captioner_ref = manager.spec("captioner").model_id
    except Exception as exc:  # missing weights, budget, broken folder: degrade, don't fail
        reason = f"captioner unavailable ({type(exc).__name__}): {exc}"
        for r in results:
            r.degraded_reason = reason[:2000]
        return results
    per_image = (time.perf_counter() - t) * 1000 / max(1, len(images))
    for i, r in enumerate(results):
        r.caption = captions[i] or r.caption
        r.answers = {q: a[i] for q, a in answers.items()}
        r.degraded, r.degraded_reason = False, None
        r.captioner_model = captioner_ref
        r.processing_time_ms += per_image
    return results
