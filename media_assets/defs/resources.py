"""Resources: the catalog database, the inbox settings and the model manager.

Each resource is built from the one `lib.settings.Settings` (`from_settings`) and hands the
`lib` object back (`.settings`, `.config()`), so the defaults live in `lib/settings.py`
only and the UI shows the values in force, except the database URLs, which can hold a
password: the code location's are `dg.EnvVar`s, shown by name.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from media_assets.lib.db import Catalog, open_catalog
from media_assets.lib.db.ledger import ModelLedger
from media_assets.lib.files.probe import Limits
from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.inventory import ModelInventory
from media_assets.lib.models.kept import shared_manager
from media_assets.lib.models.manager import ModelManager
from media_assets.lib.models.registry import build_manager
from media_assets.lib.models.roles import Role
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

    @classmethod
    def from_settings(cls, s: Settings, urls_from_env: bool = False) -> CatalogResource:
        """`urls_from_env`: the database URLs (which can hold a password) as `dg.EnvVar`s,
        resolved when the resource is used, so the UI shows the variable's name only."""
        def url(value: str | None, env: str) -> str:
            if not value:
                return ""
            return dg.EnvVar(env) if urls_from_env else value

        return cls(home=str(s.home),
                   database_url=url(s.database_url, "MEDIA_ASSETS_DATABASE_URL"),
                   dagster_database_url=url(s.dagster_database_url,
                                            "MEDIA_ASSETS_DAGSTER_DATABASE_URL"))

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
    batch_size: int
    max_new_per_tick: int
    settle_seconds: float
    max_image_pixels: int
    max_json_bytes: int
    max_text_bytes: int

    @classmethod
    def from_settings(cls, s: Settings) -> InboxResource:
        return cls(inbox=str(s.inbox), batch_size=s.batch_size,
                   max_new_per_tick=s.max_new_per_tick, settle_seconds=s.settle_seconds,
                   max_image_pixels=s.max_image_pixels, max_json_bytes=s.max_json_bytes,
                   max_text_bytes=s.max_text_bytes)

    @property
    def limits(self) -> Limits:
        return Limits(max_image_pixels=self.max_image_pixels, max_json_bytes=self.max_json_bytes,
                      max_text_bytes=self.max_text_bytes)


class GpuResource(dg.ConfigurableResource):
    """The one model manager every model asset goes through: loads, shares and unloads models
    so that together they stay inside `budget_mb` (0: 6144 on CUDA, half the RAM on CPU).

    Assets that use it declare `pool="gpu"`; dagster.yaml limits that pool to one run, so
    runs on one machine never hold models at the same time.
    """

    device: str
    budget_mb: float
    cpu_budget_mb: float
    clip_model: str
    captioner_model: str
    whisper_model: str
    llm_model: str
    speaker_model: str
    ocr_model: str
    text_model: str
    quantize_8bit: bool
    whisper_compute_type: str
    footprint_mb: dict[str, float]  # role -> MB the operator pinned (MEDIA_ASSETS_<ROLE>_MB)
    model_dir: str  # MEDIA_ASSETS_MODEL_DIR, "" when unset
    # The catalogue whose `model_leases` table holds the budget across processes (the HTTP
    # server and other runs on this machine); None: this process's models only.
    ledger_catalog: CatalogResource | None

    _manager: ModelManager | None = PrivateAttr(default=None)
    _ledger: ModelLedger | None = PrivateAttr(default=None)
    _kept: bool = PrivateAttr(default=False)
    _loads_before: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_config(cls, c: ModelConfig, ledger_catalog: CatalogResource | None = None,
                    ) -> GpuResource:
        return cls(device=c.device, budget_mb=c.budget_mb, cpu_budget_mb=c.cpu_budget_mb,
                   quantize_8bit=c.quantize_8bit, whisper_compute_type=c.whisper_compute_type,
                   ledger_catalog=ledger_catalog,
                   footprint_mb={str(r): mb for r, mb in c.footprint_mb.items()},
                   model_dir=str(c.model_dir or ""),
                   **{f"{role}_model": c.model_id(role) for role in Role})

    def config(self) -> ModelConfig:
        return ModelConfig(device=self.device, budget_mb=self.budget_mb,
                           cpu_budget_mb=self.cpu_budget_mb,
                           models={role: getattr(self, f"{role}_model") for role in Role},
                           quantize_8bit=self.quantize_8bit,
                           whisper_compute_type=self.whisper_compute_type,
                           footprint_mb={Role(r): mb for r, mb in self.footprint_mb.items()},
                           model_dir=Path(self.model_dir) if self.model_dir else None)

    def _build(self) -> tuple[ModelManager, ModelLedger | None]:
        manager = build_manager(self.config())
        ledger = None
        if self.ledger_catalog is not None:
            ledger = ModelLedger(self.ledger_catalog.get().engine, manager.device)
            manager.ledger = ledger
        return manager, ledger

    def _build_kept(self):
        manager, ledger = self._build()
        return manager, (ledger.close if ledger is not None else None)

    @property
    def manager(self) -> ModelManager:
        if self._manager is None:
            # Inside `ingest` (lib/models/kept.py) its runs share one manager, so a model
            # loads once per command instead of once per batch of files.
            kept = shared_manager(repr((self.config(), self.ledger_catalog is not None)),
                                  self._build_kept)
            if kept is not None:
                self._manager, self._kept = kept, True
            else:
                self._manager, self._ledger = self._build()
            self._loads_before = self._manager.load_counts()
        return self._manager

    @property
    def inventory(self) -> ModelInventory:
        """The models on this machine, located and fingerprinted once (lib/models/inventory.py):
        what results are versioned by (`inventory.ref`) and what degrades without them."""
        return self.manager.inventory

    def report(self, role: Role) -> dict:
        """Materialisation metadata: model id, device, load time, whether this run loaded it
        (or found it loaded by an earlier run of the same command), measured and peak
        memory."""
        m = self.manager
        stats = m.stats(role)
        return {
            f"{role}_model": m.spec(role).model_id,
            "device": m.device,
            f"{role}_load_seconds": dg.MetadataValue.float(round(stats.load_seconds, 3)),
            # False when an earlier run of the same `ingest` had loaded it already
            f"{role}_loaded_by_this_run": stats.loads > self._loads_before.get(role, 0),
            f"{role}_memory_mb": dg.MetadataValue.float(round(stats.measured_mb, 1)),
            "peak_model_memory_mb": dg.MetadataValue.float(round(m.peak_mb, 1)),
            "memory_budget_mb": dg.MetadataValue.float(round(m.budget_mb, 1)),
        }

    def open_optional(self, stack, role: Role, wanted: bool = True):
        """(the model, loaded for the batch and released when `stack` closes, or None; why
        not). For optional models: missing or broken weights leave the heuristics."""
        if not wanted:
            return None, "off in config"
        why = self.inventory.why_missing(role)
        if why is not None:
            return None, f"off: {why}"[:300]
        try:
            return stack.enter_context(self.manager.use(role)), ""
        except Exception as exc:  # OOM, broken weights
            return None, f"not used: {type(exc).__name__}: {exc}"[:500]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._kept:  # the command that keeps it unloads at its end
            self._manager, self._kept = None, False
            return
        if self._manager is not None:
            self._manager.unload_all()
            self._manager = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def resources_from_settings(settings: Settings, urls_from_env: bool = False) -> dict:
    """The three resources, as the Definitions, `ingest` and the tests bind them.
    `urls_from_env`: the database URLs as `dg.EnvVar`s (the code location's, shown in the
    UI); `ingest` and tests pass the values they hold."""
    catalog = CatalogResource.from_settings(settings, urls_from_env)
    return {"catalog": catalog, "inbox": InboxResource.from_settings(settings),
            "gpu": GpuResource.from_config(settings.models,
                                           catalog if settings.shared_budget else None)}


@dg.definitions
def defs() -> dg.Definitions:
    """The resources with the settings in force when the code location loads (never at
    import: a module that only needs the resource classes reads no environment)."""
    return dg.Definitions(resources=resources_from_settings(Settings.from_env(),
                                                            urls_from_env=True))
