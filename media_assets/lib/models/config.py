"""Model settings: which model each role uses, the device, and the memory budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from media_assets.lib.models import loaders
from media_assets.lib.models.roles import DEFAULT_MODELS, Role

# The target machine's GPU: every model the catalogue keeps loaded must fit in 6 GB.
GPU_BUDGET_MB = 6144


@dataclass(frozen=True)
class ModelConfig:
    """Read from the environment by `Settings.from_env()` (README "Settings")."""

    device: str = "auto"
    budget_mb: float = 0  # 0: the default for the device
    cpu_budget_mb: float = 0  # 0: half this machine's RAM
    models: dict[Role, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    quantize_8bit: bool = True
    whisper_compute_type: str = "auto"
    # role -> MB: a footprint the operator knows (MEDIA_ASSETS_<ROLE>_MB), charged as is
    # instead of estimated and measured (RSS deltas are noisy when processes share a GPU).
    footprint_mb: dict[Role, float] = field(default_factory=dict)
    # MEDIA_ASSETS_MODEL_DIR: a folder of models named <org>--<name> (`models pull` fills
    # it, `models make-tiny` writes the tiny set there); None: paths, HF cache and wheels.
    model_dir: Path | None = None

    def model_id(self, role: str | Role) -> str:
        return self.models[Role(role)]

    @property
    def resolved_device(self) -> str:
        return loaders.resolve_device(self.device)

    @property
    def resolved_budget_mb(self) -> float:
        """6 GB on CUDA; on the CPU `cpu_budget_mb`, or half of this machine's RAM."""
        if self.budget_mb:
            return self.budget_mb
        if self.resolved_device.startswith("cuda"):
            return GPU_BUDGET_MB
        if self.cpu_budget_mb:
            return self.cpu_budget_mb
        import psutil

        return psutil.virtual_memory().total / 2**20 / 2
