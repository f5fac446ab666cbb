"""The database core: PostgreSQL + pgvector, reached by URL or embedded, migrated on open.

Domains (files, images, speech, ...) keep their own tables' queries; this package only
opens, migrates and checks the server, and never imports a domain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from media_assets.lib.db.migrations import MigrationError, apply_migrations
from media_assets.lib.db.server import DatabaseError, resolve_urls, self_check
from media_assets.lib.db.vectors import bind_vectors
from media_assets.lib.settings import PROJECT_ROOT, Settings

SQL_DIR = PROJECT_ROOT / "sql"

__all__ = ["Catalog", "DatabaseError", "MigrationError", "open_catalog"]


@dataclass
class Catalog:
    """An open, migrated, checked catalog database."""

    engine: sa.Engine
    url: URL
    dagster_url: URL
    pgvector_version: str

    def dispose(self) -> None:
        self.engine.dispose()


def open_catalog(settings: Settings, sql_dir: Path = SQL_DIR, pool_size: int = 4) -> Catalog:
    """Start or reach the server, apply migrations, and run the 512-d self-check.
    `pool_size`: the connections kept open, as many as the threads that query at once (a
    connection past it is opened and closed per use, and a new one costs a connect and the
    vector type's lookup)."""
    url, dagster_url = resolve_urls(settings.database_url, settings.pgdata,
                                    settings.dagster_database_url)
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=4)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot connect to the catalog at "
                            f"{url.render_as_string(hide_password=True)}: {exc.orig}") from exc
    apply_migrations(engine, sql_dir)
    # From here on, vectors travel in binary (pgvector's adapter); the connections opened
    # before the extension existed are dropped.
    engine.dispose()
    bind_vectors(engine)
    version = self_check(engine)
    return Catalog(engine=engine, url=url, dagster_url=dagster_url, pgvector_version=version)
