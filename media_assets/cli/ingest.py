"""`ingest` (register and process a folder) and `samples` (a folder to try it on)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from media_assets.cli.output import fail, get_settings, open_db, print_summary, summarize
from media_assets.cli.run import run_batches, run_clusters


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--clusters/--no-clusters", default=True, show_default=True,
              help="Re-cluster, name and place clusters afterwards when files were embedded.")
def ingest(paths: tuple[Path, ...], quiet: bool, as_json: bool, clusters: bool):
    """Register and materialise every file under PATHS (default: the inbox), in-process."""
    from tqdm import tqdm

    from media_assets.lib.files.ingestion import register_ready, settle_now

    settings = get_settings()
    roots = [p.expanduser() for p in paths] or [settings.inbox]
    missing = [str(r) for r in roots if not os.path.lexists(r)]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}" +
              ("  (create the inbox, or pass a folder)" if roots == [settings.inbox] else ""))
    catalog = open_db(settings)
    ready, _ = settle_now(roots, settings.settle_seconds)
    with tqdm(total=len(ready), desc="hashing", unit="file", disable=quiet,
              file=sys.stderr) as bar:
        registration, _ = register_ready(catalog.engine, ready, on_file=lambda c: bar.update())
        bar.update(registration.unchanged + registration.known_problems)
    failed_runs, completed = run_batches(settings, catalog, quiet)
    if clusters:
        failed_runs += run_clusters(settings, catalog, quiet)
    paths_seen = [c.path for c in ready]
    summary = summarize(catalog, paths_seen)
    summary["new"] = len(registration.new_keys)
    summary["aliases"] = len(registration.aliases)
    summary["completed"] = completed
    summary["failed_runs"] = failed_runs
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary, f"{len(paths_seen)} files under {', '.join(map(str, roots))}")
        click.echo(f"{summary['new']} new, {summary['aliases']} duplicates recorded as aliases, "
                   f"{registration.unchanged} already catalogued" +
                   (f", {completed} completed with models now present" if completed else ""))
    if failed_runs:
        fail(f"{len(failed_runs)} runs failed: see `media-assets dev` (Runs) for "
              f"{', '.join(failed_runs)}")


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
def samples(folder: Path):
    """Write a folder of real sample media, good and deliberately broken, to try ingest on."""
    from media_assets.lib.samples import make_sample_folder

    expected = make_sample_folder(folder)
    click.echo(f"wrote {len(expected)} files to {folder} (plus a .part file that must be skipped)")
    for name, want in sorted(expected.items()):
        click.echo(f"  {json.dumps(name, ensure_ascii=False)[1:-1]:<32} expect {want}")

