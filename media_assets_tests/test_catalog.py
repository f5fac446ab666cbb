"""The catalog database: migrations applied once and atomically, the pgvector self-check."""


import pytest
import sqlalchemy as sa

from media_assets.lib.db import SQL_DIR, MigrationError, open_catalog
from media_assets.lib.db.migrations import apply_migrations
from media_assets.lib.db.server import DatabaseError, self_check


def _tables(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


def test_migrations_apply_once_and_are_idempotent(catalog):
    assert {"media_files", "media_paths", "schema_migrations"} <= _tables(catalog.engine)
    assert apply_migrations(catalog.engine, SQL_DIR) == []
    with catalog.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM schema_migrations")).scalars().all()
    assert versions == sorted(versions) and len(versions) == len(list(SQL_DIR.glob("*.sql")))


def test_failed_migration_leaves_schema_unchanged(catalog, tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    for f in SQL_DIR.glob("*.sql"):
        (folder / f.name).write_text(f.read_text())
    (folder / "900_half_done.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\nSELEC broken;")
    before = _tables(catalog.engine)
    with pytest.raises(MigrationError, match="900_half_done failed and was rolled back"):
        apply_migrations(catalog.engine, folder)
    assert _tables(catalog.engine) == before
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM schema_migrations WHERE version = 900")).scalar() == 0


def test_edited_migration_is_reported(catalog, tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    first = sorted(SQL_DIR.glob("*.sql"))[0]
    (folder / first.name).write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(catalog.engine, folder)


def test_self_check_runs_a_512d_distance(catalog):
    assert self_check(catalog.engine) == catalog.pgvector_version
    assert tuple(int(x) for x in catalog.pgvector_version.split(".")[:2]) >= (0, 8)


def test_self_check_reports_missing_extension(catalog):
    with catalog.engine.begin() as conn:
        conn.execute(sa.text("DROP EXTENSION vector CASCADE"))
    with pytest.raises(DatabaseError, match="pgvector extension is not installed"):
        self_check(catalog.engine)


def test_embedded_server_persists_and_is_reused(tmp_path):
    settings_home = tmp_path / "home"
    from media_assets.lib.settings import Settings
    from media_assets.lib.db.server import stop_embedded

    s = Settings(home=settings_home)
    try:
        cat = open_catalog(s)
        with cat.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO media_files (key, sha256, size_bytes, primary_path)"
                                 " VALUES (:k, :s, 1, '/x')"),
                         {"k": "0" * 16, "s": "0" * 64})
        pid = (s.pgdata / "postmaster.pid").read_text().split()[0]
        # A second open (as another process would) attaches to the same server.
        again = open_catalog(s)
        assert (s.pgdata / "postmaster.pid").read_text().split()[0] == pid
        cat.dispose(); again.dispose()
        assert stop_embedded(s.pgdata)
        # After a restart the data is still there.
        cat = open_catalog(s)
        with cat.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM media_files")).scalar() == 1
        cat.dispose()
    finally:
        stop_embedded(s.pgdata)


def test_unreachable_database_says_so(tmp_path):
    from media_assets.lib.settings import Settings
    from media_assets.lib.db import DatabaseError

    s = Settings(home=tmp_path, database_url="postgresql://nobody@/nodb?host=/nonexistent")
    with pytest.raises(DatabaseError, match="cannot reach PostgreSQL"):
        open_catalog(s)
