"""pgvector helpers shared by every domain that stores or searches CLIP vectors."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from pgvector import Vector

# recall@10 on 100k clustered 512-d vectors: 0.93 at pgvector's default of 40, 0.98 at 100,
# at the same p50 (bench/bench_search.py; README "Benchmarks").
EF_SEARCH = 100


def to_pgvector(vec) -> Vector:
    """A vector as a query parameter. On the catalogue's connections (`bind_vectors`)
    pgvector's psycopg adapter sends it in binary, 4 bytes a value, instead of formatting
    and parsing text; `CAST(:v AS vector)` in the SQL stays valid either way."""
    return Vector(np.asarray(vec, dtype=np.float32).ravel())


def from_pgvector(raw) -> np.ndarray:
    """A vector read back: the adapter's `Vector`, or the text form (`embedding::text`)."""
    if isinstance(raw, Vector):
        return raw.to_numpy()
    return np.array(raw.strip("[]").split(","), dtype=np.float32)


def bind_vectors(engine: sa.Engine) -> None:
    """Register pgvector's psycopg adapter on each new connection of `engine` (the vector
    extension must exist: call it after the migrations)."""
    from pgvector.psycopg import register_vector

    @sa.event.listens_for(engine, "connect")
    def _register(dbapi_connection, record) -> None:
        register_vector(dbapi_connection)  # leaves the connection as it found it
        # The HNSW settings for the whole session, once per connection: a search then
        # spends no round trip on them (two per search under load, where each round trip
        # waits for a busy core). Before pgvector's library loads they are placeholders,
        # which it takes over with their values.
        with dbapi_connection.cursor() as cur:
            cur.execute(_hnsw_sql(local=False))
        dbapi_connection.commit()
        record.info[_TUNED] = True


_TUNED = "media_assets_hnsw"


def _hnsw_sql(local: bool) -> str:
    """One statement for both settings; `local`: for the transaction only (SET LOCAL)."""
    scope = "true" if local else "false"
    return (f"SELECT set_config('hnsw.ef_search', '{int(EF_SEARCH)}', {scope}), "
            f"set_config('hnsw.iterative_scan', 'relaxed_order', {scope})")


def tune_hnsw(conn) -> None:
    """HNSW settings for recall: ef_search for the candidate list, and iterative scans so a
    filter (model, kind) still yields k rows. A catalogue connection has them for its
    session (`bind_vectors`); any other gets them for the transaction (SET LOCAL)."""
    if conn.connection.info.get(_TUNED):
        return
    conn.execute(sa.text(_hnsw_sql(local=True)))
