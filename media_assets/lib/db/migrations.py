"""Numbered SQL migrations: each applied once, in order, in its own transaction.

Files are named `NNN_description.sql`. The applied ones are recorded in `schema_migrations`
with a checksum, so an edited migration is reported instead of silently diverging. An
advisory lock serialises concurrent runners (the CLI and a Dagster run starting together).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from media_assets.lib.db import locks

_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_ID = locks.MIGRATIONS  # not the model ledger's (locks.py)


class MigrationError(RuntimeError):
    """A migration failed or the applied history does not match the files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version} in {folder}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def apply_migrations(engine: sa.Engine, folder: Path) -> list[int]:
    """Apply the pending migrations; returns the versions applied by this call."""
    migrations = load_migrations(folder)
    applied_now: list[int] = []
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
        conn.commit()  # the session-level lock outlives this transaction
        try:
            with conn.begin():
                conn.execute(sa.text(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"))
            done = dict(conn.execute(sa.text(
                "SELECT version, checksum FROM schema_migrations")).all())
            conn.commit()
            for m in migrations:
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version:03d}_{m.name} was changed after it was "
                            "applied; add a new migration instead of editing an old one")
                    continue
                try:
                    with conn.begin():
                        # The DBAPI cursor with no parameters: the file may hold many
                        # statements, and `%` (format() in PL/pgSQL) is not a placeholder.
                        conn.connection.cursor().execute(m.sql)
                        conn.execute(sa.text(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (:v, :n, :c)"), {"v": m.version, "n": m.name, "c": m.checksum})
                except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
                    raise MigrationError(
                        f"migration {m.version:03d}_{m.name} failed and was rolled back: "
                        f"{getattr(exc, 'orig', exc)}") from exc
                applied_now.append(m.version)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            conn.commit()
    return applied_now
