"""Settings read from the environment, in one place.

Every setting is listed in the README's table; `Settings.from_env()` is the only reader of
`MEDIA_ASSETS_*` variables, so the CLI, the Dagster definitions and the tests agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# The repository root holds sql/, dagster.yaml and workspace.yaml; the package is installed
# editable from a clone (README), so they are found beside it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer") from exc


@dataclass(frozen=True)
class Settings:
    """Where data lives and how much work is done at once."""

    home: Path = field(default_factory=lambda: Path(".media_assets").resolve())
    inbox: Path = field(default_factory=lambda: Path("inbox").resolve())
    database_url: str | None = None
    dagster_database_url: str | None = None
    batch_size: int = 64
    max_new_per_tick: int = 500
    max_image_pixels: int = 250_000_000
    max_json_bytes: int = 512 * 1024 * 1024

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            home=Path(env.get("MEDIA_ASSETS_HOME") or ".media_assets").expanduser().resolve(),
            inbox=Path(env.get("MEDIA_ASSETS_INBOX") or "inbox").expanduser().resolve(),
            database_url=env.get("MEDIA_ASSETS_DATABASE_URL") or None,
            dagster_database_url=env.get("MEDIA_ASSETS_DAGSTER_DATABASE_URL") or None,
            batch_size=max(1, _int("MEDIA_ASSETS_BATCH_SIZE", 64)),
            max_new_per_tick=max(1, _int("MEDIA_ASSETS_MAX_NEW_PER_TICK", 500)),
            max_image_pixels=_int("MEDIA_ASSETS_MAX_IMAGE_PIXELS", 250_000_000),
            max_json_bytes=_int("MEDIA_ASSETS_MAX_JSON_MB", 512) * 1024 * 1024,
        )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"
