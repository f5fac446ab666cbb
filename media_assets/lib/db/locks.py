"""The catalogue's PostgreSQL advisory-lock keys, one per purpose, kept together.

Advisory locks share one key space per database: two purposes on one key would wait for
each other (a long migration would hold up every model reservation of a running server).
Every key this package takes is here, and they differ.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import sqlalchemy as sa

MIGRATIONS = 0x6D656469  # "medi": session lock while migrations apply (migrations.py)
MODEL_LEDGER = 0x6D6C6467  # "mldg": transaction lock per lease reservation (ledger.py)
INGEST = 0x696E6773  # "ings": session lock while an `ingest` plans and runs (held below)

ALL = {"migrations": MIGRATIONS, "model_ledger": MODEL_LEDGER, "ingest": INGEST}


@contextmanager
def held(engine: sa.Engine, key: int, waiting=None, stopped=lambda: False,
         poll_s: float = 0.5):
    """Hold the session lock `key` for the block, on a connection of its own (a process
    that dies releases it with its connection). While another session holds it, call
    `waiting()` once and try again every `poll_s` seconds; yields True once held, or False
    when `stopped()` became true first (nothing held)."""
    conn = engine.connect()
    got = False
    try:
        def attempt() -> bool:
            ok = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            return bool(ok)

        got = attempt()
        if not got and waiting is not None:
            waiting()
        while not got and not stopped():
            time.sleep(poll_s)
            got = attempt()
        yield got
    finally:
        try:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        except sa.exc.DBAPIError:
            conn.invalidate()  # a broken connection took its lock with it
        finally:
            conn.close()


def taken(engine: sa.Engine, key: int) -> bool:
    """Whether some session holds the lock `key` on this database now (read from pg_locks:
    nothing is taken or waited for)."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            # bigint first: an int4 shifted by 32 is itself (the shift wraps)
            "AND classid = (CAST(:k AS bigint) >> 32)::oid "
            "AND objid = (CAST(:k AS bigint) & 4294967295)::oid "
            "AND objsubid = 1 AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()))"), {"k": key}).scalar())
