"""The Dagster instance's storages on PostgreSQL with one connection kept open per process
(dagster.yaml names them in its `run_storage`, `event_log_storage` and `schedule_storage`).

dagster-postgres opens a new connection for every group of statements it runs (a NullPool:
"not holding any connections open"). On PostgreSQL a connection is a fork of a server
process: 2.2 ms each on the embedded server, against 0.2 ms for one taken from a pool. A
per-file check evaluation opened three (its event row, a `has_table` check of Dagster's
schema, its row in `asset_check_executions`), and the daemon's loops open several a second
while `dev` runs. `ingest` already pooled its own instance (`optimize_for_webserver`,
cli/run.py); the runs the daemon launches rebuild their instance from dagster.yaml and did
not (`bench_event_writes`: a materialisation and a check evaluation 16.5 -> 3.9 ms). These
classes keep the same statements and the same autocommit; only the connection is reused.

Run workers rebuild the instance from its reference, which carries these classes' modules
and names (three storage blocks, not `storage: postgres`), so they pool too.
"""

from __future__ import annotations

from typing import Any, Mapping

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import (create_pg_engine, get_token_provider_from_config,
                                    pg_url_from_config, set_pg_statement_timeout)
from sqlalchemy import event, pool

# Connections kept open per process and storage between uses; more are opened when threads
# need them at once, and closed when returned. The Dagster processes of `dev` (webserver,
# daemon, code server, each run) keep a few each, well under the server's max_connections.
KEPT_OPEN = 1


class _KeptConnection:
    """What the three storages share: after dagster-postgres's own set-up (which creates the
    tables on its NullPool engine), an engine whose pool keeps `KEPT_OPEN` connections,
    each pinged before use (a server restarted under `dev` leaves no broken connection
    behind)."""

    postgres_url: str
    _token_provider: Any
    _engine: Any

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._keep_connections()

    def _keep_connections(self, **pool_args) -> None:
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT",
            poolclass=pool.QueuePool, pool_size=KEPT_OPEN, pool_pre_ping=True,
            **{"max_overflow": -1, **pool_args})

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int,
                               max_overflow: int) -> None:
        """Dagster's webserver settings (and `ingest`'s, cli/run.py): the same pool, with
        the ping kept and the statement timeout set on each new connection."""
        self._keep_connections(pool_recycle=pool_recycle, max_overflow=max_overflow)
        event.listen(self._engine, "connect", lambda connection, _:
                     set_pg_statement_timeout(connection, statement_timeout))

    def dispose(self) -> None:
        """Also close the kept connections (dagster-postgres's NullPool had none), so a
        disposed instance holds nothing on the server (a database it used can be dropped or
        copied). Dagster's `DagsterInstance.dispose` disposes the run and event log storages
        only: the schedule storage's connection closes when it is garbage-collected or its
        process ends (the daemon's lives as long as the daemon)."""
        super().dispose()
        self._engine.dispose()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))


class PooledPostgresEventLogStorage(_KeptConnection, PostgresEventLogStorage):
    """dagster-postgres's event log storage (same tables and statements) on kept
    connections. `has_table` answers from memory once a table was seen: Dagster's schema
    migrations add tables and never drop them, and it asks before every check evaluation."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider=None):
        self._tables_seen: set[str] = set()  # before: set-up may ask has_table
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_seen:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_seen.add(table_name)
        return found


class PooledPostgresRunStorage(_KeptConnection, PostgresRunStorage):
    """dagster-postgres's run storage (same tables and statements) on kept connections: the
    daemon's run queue and run monitoring read it every few seconds."""


class PooledPostgresScheduleStorage(_KeptConnection, PostgresScheduleStorage):
    """dagster-postgres's schedule storage (same tables and statements) on kept
    connections: every sensor tick (the inbox's, every 15 s) reads and writes it."""
