"""Settings read from the environment, in one place.

Every setting is listed in the README's table; `Settings.from_env()` is the only reader of
`MEDIA_ASSETS_*` settings, so the CLI, the Dagster resources and the tests agree. The
defaults are written here and nowhere else: the Dagster resources are built from a
`Settings` (`defs/resources.py`) and hand it back with `.settings`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from media_assets.lib.imaging import apply_pixel_limit
from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.roles import ROLES

# The repository root holds sql/, dagster.yaml and workspace.yaml; the package is installed
# editable from a clone (README), so they are found beside it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# Whisper's language detection chooses among these (MEDIA_ASSETS_LANGUAGES): about 50 widely
# spoken languages (the most spoken worldwide and the EU's official ones). Whisper base took
# clear German for Yiddish (p=0.40) and wrote it in Hebrew script; rarer languages it
# knows (yi, he, haw, ln, ...) are left out unless listed.
DEFAULT_LANGUAGES = (
    "en", "zh", "hi", "es", "fr", "ar", "bn", "pt", "ru", "ur", "id", "de", "ja", "pa",
    "mr", "te", "tr", "ta", "vi", "ko", "it", "fa", "th", "gu", "pl", "uk", "ms", "kn",
    "ml", "sw", "tl", "nl", "ro", "el", "cs", "hu", "sv", "bg", "da", "fi", "sk", "hr",
    "lt", "sl", "lv", "et", "mt", "no", "ca")


class SettingsError(ValueError):
    """A setting with a value that cannot work; the message names it and what it takes."""


def _int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0 or value != value:
        raise SettingsError(f"{name}={raw!r} must be a number >= 0")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _token(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw and not raw.strip():
        raise SettingsError(f"{name} is only whitespace: unset it, or set a secret of at "
                            "least 16 characters")
    return (raw or "").strip() or None


def _check_url(name: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        raise SettingsError(f"{name} is not a database URL (postgresql://user:password@host/"
                            "database)") from None
    if not parsed.drivername.startswith("postgresql"):
        raise SettingsError(f"{name} must be a postgresql:// URL, not {parsed.drivername}://")


def _device(name: str) -> str:
    """auto, cpu, cuda or cuda:N. Whether that device is present is `doctor`'s question:
    reading settings never loads torch."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return "auto"
    device = raw.lower()
    if device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return device
    raise SettingsError(f"{name}={raw!r} is not a device: use auto, cpu, cuda or cuda:N "
                        "(e.g. cuda:1)")


def _languages(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULT_LANGUAGES
    codes = tuple(c.strip().lower() for c in raw.split(",") if c.strip())
    bad = [c for c in codes if not (c.isascii() and c.isalpha() and 2 <= len(c) <= 3)]
    if bad or not codes:
        raise SettingsError(f"{name}={raw!r} must be language codes separated by commas "
                            f"(e.g. 'en,de,fr'); not codes: {bad}")
    return codes


def models_from_env() -> ModelConfig:
    env = os.environ
    # Read where it is used (lib/models/dequantised.py); a value that cannot work still
    # stops every command here, as every other setting does.
    _float("MEDIA_ASSETS_GGUF_CACHE_MB", 4096)
    return ModelConfig(
        device=_device("MEDIA_ASSETS_DEVICE"),
        budget_mb=_float("MEDIA_ASSETS_GPU_BUDGET_MB", 0),
        cpu_budget_mb=_float("MEDIA_ASSETS_CPU_BUDGET_MB", 0),
        models={role: env.get(spec.env) or spec.default_id for role, spec in ROLES.items()},
        quantize_8bit=_bool("MEDIA_ASSETS_QUANTIZE_8BIT", True),
        whisper_compute_type=env.get("MEDIA_ASSETS_WHISPER_COMPUTE_TYPE") or "auto",
        footprint_mb={role: _float(f"MEDIA_ASSETS_{role.upper()}_MB", 0) for role in ROLES
                      if _float(f"MEDIA_ASSETS_{role.upper()}_MB", 0) > 0},
        model_dir=(Path(env["MEDIA_ASSETS_MODEL_DIR"].strip()).expanduser()
                   if env.get("MEDIA_ASSETS_MODEL_DIR", "").strip() else None),
    )


@dataclass(frozen=True)
class Settings:
    """Where data lives, how much work is done at once, and which models do it."""

    home: Path = field(default_factory=lambda: Path(".media_assets").resolve())
    inbox: Path = field(default_factory=lambda: Path("inbox").resolve())
    database_url: str | None = None
    dagster_database_url: str | None = None
    batch_size: int = 64
    max_new_per_tick: int = 500
    settle_seconds: float = 2.0
    max_image_pixels: int = 250_000_000
    max_json_bytes: int = 512 * 1024 * 1024
    max_text_bytes: int = 64 * 1024 * 1024
    backfill_cron: str = "0 3 * * *"
    timezone: str = "UTC"
    clusters_cron: str = "30 3 * * *"
    recluster_fraction: float = 0.2
    recluster_min_new: int = 10
    shared_budget: bool = True
    sensor_interval_s: int = 15
    api_max_request_mb: int = 64
    api_token: str | None = None
    api_idle_unload_s: float = 300.0
    api_allowed_hosts: tuple[str, ...] = ()  # besides loopback names; "*" allows any Host
    api_queue: int = 8  # model requests per model waiting or running; more get 503
    api_cache_mb: int = 256  # thumbnails and frames the server made, in bytes ...
    api_cache_files: int = 20000  # ... and in files; least recently used go first
    # The server's torch threads per operation: it runs requests side by side, so more
    # threads per request only contend for the cores (search p95 at 32 clients 9 % lower).
    api_torch_threads: int = 1
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    models: ModelConfig = field(default_factory=ModelConfig)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings in force; also applies the pixel limit to this process's image
        decoder, so the probe and the model steps agree on which images are too large."""
        env = os.environ
        settings = cls(
            home=Path(env.get("MEDIA_ASSETS_HOME") or ".media_assets").expanduser().resolve(),
            inbox=Path(env.get("MEDIA_ASSETS_INBOX") or "inbox").expanduser().resolve(),
            database_url=env.get("MEDIA_ASSETS_DATABASE_URL") or None,
            dagster_database_url=env.get("MEDIA_ASSETS_DAGSTER_DATABASE_URL") or None,
            batch_size=_int("MEDIA_ASSETS_BATCH_SIZE", 64, minimum=1),
            max_new_per_tick=_int("MEDIA_ASSETS_MAX_NEW_PER_TICK", 500, minimum=1),
            max_image_pixels=_int("MEDIA_ASSETS_MAX_IMAGE_PIXELS", 250_000_000, minimum=1),
            max_json_bytes=_int("MEDIA_ASSETS_MAX_JSON_MB", 512, minimum=1) * 1024 * 1024,
            max_text_bytes=_int("MEDIA_ASSETS_MAX_TEXT_MB", 64, minimum=1) * 1024 * 1024,
            backfill_cron=env.get("MEDIA_ASSETS_BACKFILL_CRON") or "0 3 * * *",
            timezone=env.get("MEDIA_ASSETS_TIMEZONE") or "UTC",
            clusters_cron=env.get("MEDIA_ASSETS_CLUSTERS_CRON") or "30 3 * * *",
            recluster_fraction=_float("MEDIA_ASSETS_RECLUSTER_FRACTION", 0.2),
            recluster_min_new=_int("MEDIA_ASSETS_RECLUSTER_MIN_NEW", 10, minimum=1),
            shared_budget=_bool("MEDIA_ASSETS_SHARED_BUDGET", True),
            sensor_interval_s=_int("MEDIA_ASSETS_SENSOR_INTERVAL_S", 15, minimum=1),
            api_max_request_mb=_int("MEDIA_ASSETS_API_MAX_REQUEST_MB", 64, minimum=1),
            api_token=_token("MEDIA_ASSETS_API_TOKEN"),
            api_idle_unload_s=_float("MEDIA_ASSETS_API_IDLE_UNLOAD_S", 300.0),
            languages=_languages("MEDIA_ASSETS_LANGUAGES"),
            api_allowed_hosts=tuple(h.strip().lower() for h in env.get(
                "MEDIA_ASSETS_API_ALLOWED_HOSTS", "").split(",") if h.strip()),
            api_queue=_int("MEDIA_ASSETS_API_QUEUE", 8, minimum=1),
            api_cache_mb=_int("MEDIA_ASSETS_API_CACHE_MB", 256, minimum=1),
            api_cache_files=_int("MEDIA_ASSETS_API_CACHE_FILES", 20000, minimum=1),
            api_torch_threads=_int("MEDIA_ASSETS_API_TORCH_THREADS", 1, minimum=1),
            models=models_from_env(),
        )
        for name, url in (("MEDIA_ASSETS_DATABASE_URL", settings.database_url),
                          ("MEDIA_ASSETS_DAGSTER_DATABASE_URL", settings.dagster_database_url)):
            if url:
                _check_url(name, url)
        for name, cron in (("MEDIA_ASSETS_BACKFILL_CRON", settings.backfill_cron),
                           ("MEDIA_ASSETS_CLUSTERS_CRON", settings.clusters_cron)):
            if len(cron.split()) != 5:
                raise SettingsError(f"{name}={cron!r} is not a cron expression of 5 fields "
                                    "(e.g. '0 3 * * *')")
        try:
            ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"MEDIA_ASSETS_TIMEZONE={settings.timezone!r} is not a time "
                                "zone (e.g. 'Europe/Paris' or 'UTC')") from None
        apply_pixel_limit(settings.max_image_pixels)
        return settings

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"
