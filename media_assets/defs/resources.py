"""Resources: the catalog database and the inbox settings, configured from the environment."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from media_assets.lib.catalog import Catalog, open_catalog
from media_assets.lib.models.manager import ModelManager
from media_assets.lib.models.registry import ModelConfig, build_manager
from media_assets.lib.media.probe import Limits
from media_assets.lib.settings import Settings


class CatalogResource(dg.ConfigurableResource):
    """The PostgreSQL + pgvector catalog: `database_url`, or the embedded server under `home`.

    Opening it starts or attaches to the embedded server, applies migrations and runs the
    512-d vector self-check, once per process that uses it.
    """

    home: str
    database_url: str = ""
    dagster_database_url: str = ""

    _catalog: Catalog | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        return Settings.from_env().with_(home=Path(self.home),
                                         database_url=self.database_url or None,
                                         dagster_database_url=self.dagster_database_url or None)

    def get(self) -> Catalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings())
        return self._catalog

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._catalog is not None:
            self._catalog.dispose()
            self._catalog = None


class InboxResource(dg.ConfigurableResource):
    """Where files arrive and how much of them one tick or one run takes on."""

    inbox: str
    batch_size: int = 64
    max_new_per_tick: int = 500
    settle_seconds: float = 2.0
    max_image_pixels: int = 250_000_000
    max_json_bytes: int = 512 * 1024 * 1024

    @property
    def limits(self) -> Limits:
        return Limits(max_image_pixels=self.max_image_pixels, max_json_bytes=self.max_json_bytes)


class GpuResource(dg.ConfigurableResource):
    """The one model manager every model asset goes through: loads, shares and unloads models
    so that together they stay inside `budget_mb` (0: 6144 on CUDA, half the RAM on CPU).

    Assets that use it declare `pool="gpu"`; dagster.yaml limits that pool to one run, so
    runs on one machine never hold models at the same time.
    """

    device: str = "auto"
    budget_mb: float = 0
    clip_model: str = ""
    captioner_model: str = ""
    whisper_model: str = ""
    llm_model: str = ""
    quantize_8bit: bool = True
    whisper_compute_type: str = "auto"

    _manager: ModelManager | None = PrivateAttr(default=None)

    def config(self) -> ModelConfig:
        base = ModelConfig()
        models = {role: getattr(self, f"{role}_model") or default
                  for role, default in base.models.items()}
        return ModelConfig(device=self.device, budget_mb=self.budget_mb, models=models,
                           quantize_8bit=self.quantize_8bit,
                           whisper_compute_type=self.whisper_compute_type)

    @property
    def manager(self) -> ModelManager:
        if self._manager is None:
            self._manager = build_manager(self.config())
        return self._manager

    def report(self, role: str) -> dict:
        """Materialisation metadata: model id, device, load time, measured and peak memory."""
        m = self.manager
        stats = m.stats(role)
        return {
            f"{role}_model": m.spec(role).model_id,
            "device": m.device,
            f"{role}_load_seconds": dg.MetadataValue.float(round(stats.load_seconds, 3)),
            f"{role}_memory_mb": dg.MetadataValue.float(round(stats.measured_mb, 1)),
            "peak_model_memory_mb": dg.MetadataValue.float(round(m.peak_mb, 1)),
            "memory_budget_mb": dg.MetadataValue.float(round(m.budget_mb, 1)),
        }

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._manager is not None:
            self._manager.unload_all()
            self._manager = None


def gpu_from_config(config: ModelConfig) -> GpuResource:
    return GpuResource(device=config.device, budget_mb=config.budget_mb,
                       clip_model=config.models["clip"],
                       captioner_model=config.models["captioner"],
                       whisper_model=config.models["whisper"], llm_model=config.models["llm"],
                       quantize_8bit=config.quantize_8bit,
                       whisper_compute_type=config.whisper_compute_type)


def resources_from_settings(settings: Settings) -> dict:
    return {
        "catalog": CatalogResource(home=str(settings.home),
                                   database_url=settings.database_url or "",
                                   dagster_database_url=settings.dagster_database_url or ""),
        "inbox": InboxResource(inbox=str(settings.inbox), batch_size=settings.batch_size,
                               max_new_per_tick=settings.max_new_per_tick,
                               max_image_pixels=settings.max_image_pixels,
                               max_json_bytes=settings.max_json_bytes),
        "gpu": gpu_from_config(ModelConfig.from_env()),
    }


defs = dg.Definitions(resources=resources_from_settings(Settings.from_env()))
