"""Resources: the catalog database and the inbox settings, configured from the environment."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from media_assets.lib.catalog import Catalog, open_catalog
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


def resources_from_settings(settings: Settings) -> dict:
    return {
        "catalog": CatalogResource(home=str(settings.home),
                                   database_url=settings.database_url or "",
                                   dagster_database_url=settings.dagster_database_url or ""),
        "inbox": InboxResource(inbox=str(settings.inbox), batch_size=settings.batch_size,
                               max_new_per_tick=settings.max_new_per_tick,
                               max_image_pixels=settings.max_image_pixels,
                               max_json_bytes=settings.max_json_bytes),
    }


defs = dg.Definitions(resources=resources_from_settings(Settings.from_env()))
