"""Model settings and the manager they build: one spec per role (clip, captioner, whisper, llm)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from media_assets.lib.models import loaders
from media_assets.lib.models.locate import DEFAULT_MODELS, Located, ModelNotFound, locate
from media_assets.lib.models.manager import ModelManager, ModelSpec

GPU_BUDGET_MB = 6144
# Used until a model has been located (its files give a better estimate) or measured.
FALLBACK_ESTIMATE_MB = {"clip": 600, "captioner": 4000, "whisper": 300, "llm": 8000}
STRATEGY = {"clip": "resident", "captioner": "resident", "whisper": "resident",
            "llm": "on_demand"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def default_budget_mb(device: str) -> float:
    """6 GB on CUDA; on CPU MEDIA_ASSETS_CPU_BUDGET_MB, or half of this machine's RAM."""
    if device.startswith("cuda"):
        return GPU_BUDGET_MB
    raw = os.environ.get("MEDIA_ASSETS_CPU_BUDGET_MB", "").strip()
    if raw:
        return float(raw)
    import psutil

    return psutil.virtual_memory().total / 2**20 / 2


@dataclass(frozen=True)
class ModelConfig:
    device: str = "auto"
    budget_mb: float = 0  # 0: the default for the device
    models: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    quantize_8bit: bool = True
    whisper_compute_type: str = "auto"

    @classmethod
    def from_env(cls) -> ModelConfig:
        env = os.environ
        return cls(
            device=env.get("MEDIA_ASSETS_DEVICE") or "auto",
            budget_mb=float(env.get("MEDIA_ASSETS_GPU_BUDGET_MB") or 0),
            models={role: env.get(f"MEDIA_ASSETS_{role.upper()}_MODEL") or default
                    for role, default in DEFAULT_MODELS.items()},
            quantize_8bit=_bool(env.get("MEDIA_ASSETS_QUANTIZE_8BIT"), True),
            whisper_compute_type=env.get("MEDIA_ASSETS_WHISPER_COMPUTE_TYPE") or "auto",
        )

    @property
    def resolved_device(self) -> str:
        return loaders.resolve_device(self.device)

    @property
    def resolved_budget_mb(self) -> float:
        return self.budget_mb or default_budget_mb(self.resolved_device)


def estimate_mb(role: str, path: Path | None, device: str, quantize_8bit: bool) -> float:
    """Weights on disk, scaled for how they will sit in memory, plus a margin."""
    if path is None:
        return FALLBACK_ESTIMATE_MB[role]
    size = sum(f.stat().st_size for f in path.rglob("*")
               if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name == "model.bin"))
    mb = size / 2**20
    if role in ("captioner", "llm") and device.startswith("cuda"):
        mb *= 0.5 if quantize_8bit else 1.0  # stored fp16/fp32 → 8-bit or fp16
    return max(1.0, mb * 1.2)


def _load(role: str, config: ModelConfig, device: str):
    found = locate(role, config.models[role])
    if role == "clip":
        bundle = loaders.load_clip(found.path, device)
        bundle.model_ref = clip_model_ref(config, found)
        return bundle
    if role == "whisper":
        return loaders.load_whisper(found.path, device, config.whisper_compute_type)
    if role == "captioner":
        return loaders.load_captioner(found.path, device, config.quantize_8bit)
    return loaders.load_llm(found.path, device, config.quantize_8bit)


def clip_model_ref(config: ModelConfig, found: Located | None = None) -> str:
    """The name of the CLIP vector space (hub id @ weights fingerprint), without loading."""
    found = found or locate("clip", config.models["clip"])
    return f"{config.models['clip']}@{found.fingerprint}"


def build_manager(config: ModelConfig) -> ModelManager:
    device = config.resolved_device
    manager = ModelManager(config.resolved_budget_mb, device)
    for role, model_id in config.models.items():
        try:
            path = locate(role, model_id).path
        except ModelNotFound:
            path = None  # the error is raised, with its advice, when the model is used
        manager.register(ModelSpec(
            name=role, loader=partial(_load, role, config, device),
            estimate_mb=estimate_mb(role, path, device, config.quantize_8bit),
            strategy=STRATEGY[role], model_id=model_id))
    return manager
