"""The Dagster instance's event log on PostgreSQL with one connection kept open per process
(dagster.yaml names `PooledPostgresEventLogStorage` as its `event_log_storage`).

dagster-postgres opens a new connection for every group of statements it runs (a NullPool:
"not holding any connections open"). On PostgreSQL a connection is a fork of a server
process: 2.2 ms each on the embedded server, against 0.2 ms for a connection taken from a
pool (bench: `media_assets_tests/test_dagster_storage.py` says how it was measured). A
per-file check evaluation opened three (its event row, a `has_table` check of Dagster's
schema, its row in `asset_check_executions`), which made it the largest cost of the
pipeline's own per file (README "Throughput"). Pooling keeps the same statements and
the same autocommit; only the connection is reused.

Run workers rebuild the instance from its reference, which carries this class's module and
name (an `event_log_storage` block, not `storage: postgres`), so they pool too.
"""

from __future__ import annotations

from typing import Any, Mapping

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import (create_pg_engine, get_token_provider_from_config,
                                    pg_url_from_config, set_pg_statement_timeout)
from sqlalchemy import event, pool

# Connections kept open per process between uses; more are opened when threads need them at
# once, and closed when returned. Every Dagster process (webserver, daemon, code server, each
# run) keeps at most this many, well under the server's max_connections (100).
KEPT_OPEN = 1


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres's event log storage (same tables, statements and autocommit) whose
    connections come from a pool that keeps `KEPT_OPEN` open, checked by a ping before each
    use (a server restarted under `dev` leaves no broken connection behind). `has_table`
    answers from memory once a table was seen: Dagster's schema migrations add tables and
    never drop them, and it asks before every check evaluation."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._engine.dispose()  # the parent's NullPool engine, used to create the tables
        self._engine = self._pooled_engine(pool_size=KEPT_OPEN, max_overflow=-1)
        self._tables_seen: set[str] = set()

    def _pooled_engine(self, **pool_args):
        return create_pg_engine(self.postgres_url, self._token_provider,
                                isolation_level="AUTOCOMMIT", poolclass=pool.QueuePool,
                                pool_pre_ping=True, **pool_args)

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int,
                               max_overflow: int) -> None:
        """Dagster's webserver settings (and `ingest`'s, cli/run.py): the same pool, with
        the ping kept and the statement timeout set on each new connection."""
        self._engine.dispose()
        self._engine = self._pooled_engine(pool_size=KEPT_OPEN, pool_recycle=pool_recycle,
                                           max_overflow=max_overflow)
        event.listen(self._engine, "connect", lambda connection, _:
                     set_pg_statement_timeout(connection, statement_timeout))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> "PooledPostgresEventLogStorage":
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_seen:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_seen.add(table_name)
        return found
