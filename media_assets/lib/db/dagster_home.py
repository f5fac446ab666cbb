"""Preparing `DAGSTER_HOME`: the project's dagster.yaml, pointed at the catalog's server.

Plain file and environment work (no Dagster import), shared by `media-assets dev` and
`media-assets ingest`, so the UI shows the runs the CLI made.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy.engine import URL

from media_assets.lib.settings import PROJECT_ROOT

DAGSTER_URL_ENV = "MEDIA_ASSETS_DAGSTER_PG_URL"


def prepare_dagster_home(dagster_home: Path, dagster_url: URL,
                         template: Path = PROJECT_ROOT / "dagster.yaml") -> dict[str, str]:
    """Copy dagster.yaml into `dagster_home`; returns the environment Dagster needs.

    dagster.yaml is only read from $DAGSTER_HOME, and takes the storage URL from
    MEDIA_ASSETS_DAGSTER_PG_URL, so no password is written to disk.
    """
    if not template.exists():
        raise FileNotFoundError(f"{template} is missing: install the project from its clone "
                                "(pip install -e .) so dagster.yaml is found beside it")
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dagster_home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(dagster_home),
           DAGSTER_URL_ENV: dagster_url.render_as_string(hide_password=False)}
    os.environ.update(env)
    return env
