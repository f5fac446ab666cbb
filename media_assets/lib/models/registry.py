"""The model manager a `ModelConfig` builds: one spec per role, estimated from the files."""

from __future__ import annotations

from pathlib import Path

from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.locate import Located, ModelNotFound, locate
from media_assets.lib.models.manager import ModelManager, ModelSpec
from media_assets.lib.models.roles import ROLES, Role, spec_of

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def estimate_mb(role: Role, path: Path | None, device: str, quantize_8bit: bool) -> float:
    """Weights on disk, scaled for how they will sit in memory, plus a margin."""
    if path is None:
        return spec_of(role).fallback_estimate_mb
    if path.suffix == ".gguf" and path.is_file():  # dequantised on load: parameters count
        from media_assets.lib.models.gguf_file import read_info

        return max(1.0, read_info(path).memory_mb(device) * 1.2)
    size = sum(f.stat().st_size for f in path.rglob("*")
               if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name == "model.bin"))
    mb = size / 2**20
    if role in (Role.CAPTIONER, Role.LLM) and device.startswith("cuda"):
        mb *= 0.5 if quantize_8bit else 1.0  # stored fp16/fp32 → 8-bit or fp16
    return max(1.0, mb * 1.2)


def load_role(role: str | Role, config: ModelConfig, device: str):
    """Locate and load one role's model, as the manager does (benchmarks call it bare)."""
    role = Role(role)
    found = locate(role, config.model_id(role))
    model = spec_of(role).load(found.path, device, config)
    if role is Role.CLIP:
        model.model_ref = clip_model_ref(config, found)
    if role is Role.TEXT:
        model.model_ref = text_model_ref(config, found)
    return model


def text_model_ref(config: ModelConfig, found: Located | None = None) -> str:
    """The name of the text vector space (model id @ weights fingerprint), without loading."""
    found = found or locate(Role.TEXT, config.model_id(Role.TEXT))
    return f"{config.model_id(Role.TEXT)}@{found.fingerprint}"


def clip_model_ref(config: ModelConfig, found: Located | None = None) -> str:
    """The name of the CLIP vector space (hub id @ weights fingerprint), without loading."""
    found = found or locate(Role.CLIP, config.model_id(Role.CLIP))
    return f"{config.model_id(Role.CLIP)}@{found.fingerprint}"


def clip_ref_or_none(config: ModelConfig) -> str | None:
    try:
        return clip_model_ref(config)
    except ModelNotFound:
        return None


def build_manager(config: ModelConfig) -> ModelManager:
    device = config.resolved_device
    manager = ModelManager(config.resolved_budget_mb, device)
    for role, spec in ROLES.items():
        model_id = config.model_id(role)
        try:
            path = locate(role, model_id).path
        except ModelNotFound:
            path = None  # the error is raised, with its advice, when the model is used
        manager.register(ModelSpec(
            name=role, loader=lambda r=role: load_role(r, config, device),
            estimate_mb=config.footprint_mb.get(role)
            or estimate_mb(role, path, device, config.quantize_8bit),
            strategy=spec.strategy, model_id=model_id, fixed=role in config.footprint_mb))
    return manager


def llm_ref(config: ModelConfig, found: Located | None = None) -> str:
    """Which LLM weights answer (id, the GGUF file when it is one, @ weights fingerprint):
    stored on each design and hierarchy, so a different LLM redoes them."""
    found = found or locate(Role.LLM, config.model_id(Role.LLM))
    name = config.model_id(Role.LLM)
    if found.gguf is not None and not name.endswith(".gguf"):
        name = f"{name}/{found.gguf.name}"
    return f"{name}@{found.fingerprint}"


def llm_ref_or_none(config: ModelConfig) -> str | None:
    """The usable LLM's ref, or None when there is none (the heuristics answer)."""
    try:
        return llm_ref(config)
    except ModelNotFound:
        return None
