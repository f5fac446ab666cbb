"""Shared fixtures: one real PostgreSQL (embedded, or MEDIA_ASSETS_TEST_DATABASE_URL) for the
session, a fresh database per test, and real sample media."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from media_assets.lib.db import open_catalog
from media_assets.lib.db.server import ensure_database, start_embedded, stop_embedded, with_database
from media_assets.lib.samples import make_sample_folder
from media_assets.lib.settings import Settings

warnings.filterwarnings("ignore", module="dagster")

# The LLM's dequantised copies (lib/models/dequantised.py) in a folder of this run's own, not
# the user's ~/.cache: made here in pytest's main process, before xdist starts its workers,
# so all of them and the CLI runs they start share it (the first GGUF load writes it, 15-19
# s; later ones read it, under a second), and removed when that process ends.
if "MEDIA_ASSETS_GGUF_CACHE" not in os.environ:
    import atexit

    os.environ["MEDIA_ASSETS_GGUF_CACHE"] = tempfile.mkdtemp(prefix="media-assets-test-gguf-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ASSETS_GGUF_CACHE"], True)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """URL of a running server: the embedded one in a temporary folder, unless given."""
    given = os.environ.get("MEDIA_ASSETS_TEST_DATABASE_URL")
    if given:
        yield make_url(given)
        return
    # Not under pytest's basetemp: every pytest start chmods /tmp/pytest-of-<user> back to
    # 0700, which locks the server's own user (pgserver runs PostgreSQL as `pgserver` when
    # started as root) out of a running session's data folder when two suites run at once.
    root = Path(tempfile.mkdtemp(prefix="media-assets-test-pg-"))
    root.chmod(0o755)
    pgdata = root / "pgdata"
    url = start_embedded(pgdata)
    # A throwaway server: no commit waits for its WAL to reach the disk, and nothing is
    # synced. Dagster commits each event on its own, and each test copies two template
    # databases; durability is the one thing this server never needs.
    engine = sa.create_engine(with_database(url, "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sa.text(f"ALTER SYSTEM SET {setting} = off"))
        conn.execute(sa.text("SELECT pg_reload_conf()"))
    engine.dispose()
    yield url
    stop_embedded(pgdata)
    shutil.rmtree(root, ignore_errors=True)


TEMPLATES = ("t_template_catalog", "t_template_dagster")


@pytest.fixture(scope="session")
def db_templates(pg_server, tmp_path_factory) -> tuple[str, str]:
    """A migrated catalogue and an initialised Dagster storage, made once per session with
    the product's own code (open_catalog, the Dagster instance); each test's databases are
    copies (CREATE DATABASE ... TEMPLATE), which takes a fraction of the 1-5 s that
    migrating a catalogue and creating Dagster's tables take."""
    import dagster as dg

    from media_assets.lib.db.dagster_home import DAGSTER_URL_ENV, prepare_dagster_home

    for db in TEMPLATES:
        ensure_database(pg_server, db)
    home = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("DAGSTER_HOME", DAGSTER_URL_ENV):  # prepare_dagster_home sets them
            mp.setenv(key, "")
        mp.setenv("MEDIA_ASSETS_HOME", str(home))
        mp.setenv("MEDIA_ASSETS_DATABASE_URL", with_database(
            pg_server, TEMPLATES[0]).render_as_string(hide_password=False))
        open_catalog(Settings.from_env()).dispose()
        prepare_dagster_home(home / "dagster", with_database(pg_server, TEMPLATES[1],
                                                             "psycopg2"))
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        instance.get_runs(limit=1)  # creates the run, event and schedule storages
        instance.dispose()
    return TEMPLATES


def _copy_database(pg_server, template: str, name: str) -> None:
    admin = sa.create_engine(with_database(pg_server, pg_server.database or "postgres"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()


def fresh_databases(pg_server, db_templates, prefix: str = "t_") -> tuple[str, str, str]:
    """(name, catalogue URL, Dagster URL) of two new databases, copies of the templates."""
    name = prefix + uuid.uuid4().hex[:12]
    _copy_database(pg_server, db_templates[0], name)
    _copy_database(pg_server, db_templates[1], name + "_dagster")
    return (name, with_database(pg_server, name).render_as_string(hide_password=False),
            with_database(pg_server, name + "_dagster", "psycopg2").render_as_string(
                hide_password=False))


@pytest.fixture
def settings(pg_server, db_templates, tmp_path, monkeypatch) -> Settings:
    """Settings on a fresh database (a copy of the migrated template); also exported to the
    environment for CLI tests."""
    name, url, dagster_url = fresh_databases(pg_server, db_templates)
    dagster_name = name + "_dagster"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {"MEDIA_ASSETS_HOME": str(tmp_path / "home"), "MEDIA_ASSETS_INBOX": str(inbox),
           "MEDIA_ASSETS_DATABASE_URL": url, "MEDIA_ASSETS_DAGSTER_DATABASE_URL": dagster_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield Settings.from_env()
    admin = sa.create_engine(with_database(pg_server, pg_server.database or "postgres"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in (name, dagster_name):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


def use_models(settings: Settings, monkeypatch, folder) -> Settings:
    """`settings` with its models looked up in `folder`; also exported for CLI calls (the
    settings, not the environment, are what locate the models: lib/models/locate.py)."""
    from dataclasses import replace

    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(folder))
    return settings.with_(models=replace(settings.models, model_dir=Path(folder)))


def per_file_selection(only=None) -> list:
    """The keys of the per-file assets named in `only` (all of them when None), for
    `dg.materialize(PER_FILE_ASSETS, selection=...)`: a test runs what it checks."""
    from media_assets.defs.jobs import PER_FILE_ASSETS

    return [a.key for a in PER_FILE_ASSETS if only is None or a.key.to_user_string() in only]


@pytest.fixture
def catalog(settings):
    cat = open_catalog(settings)
    yield cat
    cat.dispose()


@pytest.fixture(scope="session")
def sample_folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The mixed, partly broken folder `media-assets samples` writes: (folder, expected)."""
    folder = tmp_path_factory.mktemp("samples")
    return folder, make_sample_folder(folder)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny random-weight CLIP and BLIP-2 plus the real Whisper base, built once. No LLM
    in the default slot: the heuristics answer, as on a machine without one (a random LLM
    under the schema constraint would give valid nonsense). The tiny Phi-3 is in
    `tiny-phi3` for tests that need that architecture (MEDIA_ASSETS_LLM_MODEL=<that path>);
    the real SmolLM2 is the `real_llm` fixture's (test_llm_real.py)."""
    from filelock import FileLock

    from media_assets.lib.models.tiny import make_tiny

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.mktemp("models")
        make_tiny(root, llm="none")
        return root
    # Under xdist the first worker writes them into the run's shared base folder and the
    # others read that copy (about 5 CPU-s per worker otherwise). No test writes into it.
    root = tmp_path_factory.getbasetemp().parent / "tiny-models"
    with FileLock(str(root) + ".lock"):
        if not (root / ".complete").exists():
            shutil.rmtree(root, ignore_errors=True)
            make_tiny(root, llm="none")
            (root / ".complete").touch()
    return root


API_SENTENCE = "the rocket launch is scheduled for tomorrow morning"


@pytest.fixture(scope="session")
def api_library(pg_server, db_templates, tiny_models, sample_folder, tmp_path_factory):
    """One catalogue for the HTTP API's tests (test_api.py, test_api_security.py), ingested
    once per session as a user would: photos, a spoken memo, a video and JSON. Yields
    (settings, root, env); the environment is set only while ingesting."""
    import shutil

    from click.testing import CliRunner

    from media_assets.cli import main
    from media_assets.lib.samples import photo_groups, speech

    root = tmp_path_factory.mktemp("api")
    _, url, dagster_url = fresh_databases(pg_server, db_templates, "t_api_")
    inbox = root / "inbox"
    photo_groups(inbox / "photos", per_group=3, sources=("astronaut", "coffee", "rocket"))
    speech(API_SENTENCE, inbox / "launch memo.wav")
    for f in ("clip.mp4", "records.json"):
        shutil.copy(sample_folder[0] / f, inbox / f)
    # For the page (test_page.py): a photo with EXIF (date, camera, GPS), a failed file
    # with its reason, and a text note.
    (inbox / "more").mkdir()
    for f in ("red.jpg", "truncated.jpg"):
        shutil.copy(sample_folder[0] / f, inbox / "more" / f)
    (inbox / "more" / "trip notes.txt").write_text(
        "Packing list for Lisbon: passport, charger, sun hat.\nCall Ana on Friday.\n",
        encoding="utf-8")
    env = {"MEDIA_ASSETS_HOME": str(root / "home"), "MEDIA_ASSETS_INBOX": str(inbox),
           "MEDIA_ASSETS_DATABASE_URL": url, "MEDIA_ASSETS_DAGSTER_DATABASE_URL": dagster_url,
           "MEDIA_ASSETS_MODEL_DIR": str(tiny_models), "MEDIA_ASSETS_API_MAX_REQUEST_MB": "4"}
    mp = pytest.MonkeyPatch()
    try:
        for k, v in env.items():
            mp.setenv(k, v)
        result = CliRunner().invoke(main, ["ingest", "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        settings = Settings.from_env()
    finally:
        mp.undo()
    yield settings, root, env
