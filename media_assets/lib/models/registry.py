"""The model manager a `ModelConfig` builds: one spec per role, estimated from the files."""

from __future__ import annotations

from pathlib import Path

from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.inventory import ModelInventory
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


def load_role(role: str | Role, config: ModelConfig, device: str,
              inventory: ModelInventory | None = None):
    """Locate and load one role's model, as the manager does (benchmarks call it bare). The
    CLIP and text models carry their ref, the inventory's (hashed once per inventory)."""
    role = Role(role)
    inventory = inventory or ModelInventory(config)
    model = spec_of(role).load(inventory.locate(role).path, device, config)
    if role in (Role.CLIP, Role.TEXT):
        model.model_ref = inventory.ref(role)
    return model


# For callers that hold no inventory (one question, once): each builds its own.
def text_model_ref(config: ModelConfig) -> str:
    """The name of the text vector space (model id @ weights fingerprint), without loading."""
    return ModelInventory(config).ref(Role.TEXT)


def clip_model_ref(config: ModelConfig) -> str:
    """The name of the CLIP vector space (hub id @ weights fingerprint), without loading."""
    return ModelInventory(config).ref(Role.CLIP)


def clip_ref_or_none(config: ModelConfig) -> str | None:
    return ModelInventory(config).ref_or_none(Role.CLIP)


def llm_ref(config: ModelConfig) -> str:
    """Which LLM weights answer (id, the GGUF file when a folder was named, @ fingerprint):
    stored on each design and hierarchy, so a different LLM redoes them."""
    return ModelInventory(config).ref(Role.LLM)


def llm_ref_or_none(config: ModelConfig) -> str | None:
    """The usable LLM's ref, or None when there is none (the heuristics answer)."""
    return ModelInventory(config).ref_or_none(Role.LLM)


def build_manager(config: ModelConfig, inventory: ModelInventory | None = None,
                  ) -> ModelManager:
    """The manager of every role's model, loading through `inventory` (one is built when
    none is given), which it keeps as `manager.inventory`."""
    device = config.resolved_device
    inventory = inventory or ModelInventory(config)
    manager = ModelManager(config.resolved_budget_mb, device)
    manager.inventory = inventory
    for role, spec in ROLES.items():
        found = inventory.status(role).found  # missing: the error, with its advice, on use
        manager.register(ModelSpec(
            name=role, loader=lambda r=role: load_role(r, config, device, inventory),
            estimate_mb=config.footprint_mb.get(role)
            or estimate_mb(role, found.path if found else None, device, config.quantize_8bit),
            strategy=spec.strategy, model_id=config.model_id(role),
            fixed=role in config.footprint_mb))
    return manager
