"""The `media-assets` command: one module per area, assembled here.

`ingest` (and `samples`), the catalogue readers (`status`, `where`, `search`, `similar`,
`classify`, `duplicates`), `speakers` and `transcript`, `clusters` and `organize`, `doctor`
and `models`, and the servers (`serve`, `dev`, `db`). `run` is the one in-process Dagster
runner; `output` holds what every command shares (clean errors, settings, printing).
"""

from __future__ import annotations

import warnings

import click
from dagster_shared.utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

from media_assets.cli import catalogue, clusters, ingest, models, serve, speakers
from media_assets.cli.run import instance_for


def _quiet_warnings() -> None:
    """Dagster's notes on its own APIs (preview, beta, superseded) are for the developers
    of this project, not for the people running its commands."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    for category in (BetaWarning, PreviewWarning, SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


_quiet_warnings()


@click.group()
def main():
    """media_assets: a local-first media catalog (Dagster + PostgreSQL/pgvector + local models)."""
    _quiet_warnings()  # again: a caller (a test) may have reset the filters since import


for _command in (ingest.ingest, ingest.samples,
                 catalogue.status, catalogue.where, catalogue.search, catalogue.similar,
                 catalogue.classify, catalogue.duplicates,
                 speakers.speakers, speakers.transcript,
                 clusters.clusters, clusters.organize,
                 models.doctor, models.models,
                 serve.serve, serve.dev, serve.db):
    main.add_command(_command)

# Tests and benchmarks open the same Dagster instance the commands use.
_instance = instance_for

__all__ = ["main"]
