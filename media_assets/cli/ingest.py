"""`ingest` (register and process a folder) and `samples` (a folder to try it on)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from media_assets.cli.output import (check_device, fail, get_settings, name_of, open_db,
                                     print_asset_failures, print_summary, quiet_progress,
                                     summarize)
from media_assets.cli.run import EXIT_INTERRUPTED, Interrupts, run_batches, run_clusters


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bars (the models' own \"Loading weights\" bars included).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--clusters/--no-clusters", default=True, show_default=True,
              help="Re-cluster, name and place clusters afterwards when files were embedded.")
def ingest(paths: tuple[Path, ...], quiet: bool, as_json: bool, clusters: bool):
    """Register and materialise every file under PATHS (default: the inbox), in-process.

    Files gone from disk since the last scan of PATHS are marked missing: search leaves
    them out, and they come back as they were if the files do. Ctrl-C stops after the
    current file; a second Ctrl-C, or SIGTERM, stops at once. Either way the next `ingest`
    finishes the work, and nothing is done twice.

    \b
    Exit status:
      0    every file seen is catalogued and every asset did its work (files that cannot
           be catalogued at all, such as empty or corrupt ones, are listed, not failures)
      1    some files failed an asset (each is listed with the reason), a run failed, or
           the catalogue could not be opened
      2    usage or settings: no such folder, a bad MEDIA_ASSETS_* value
      130  stopped by Ctrl-C or SIGTERM
    """
    from tqdm import tqdm

    from media_assets.lib import stop
    from media_assets.lib.db import locks
    from media_assets.lib.files.ingestion import note_missing, register_ready, settle_now
    from media_assets.lib.files.results import asset_failures
    from media_assets.lib.json_docs.store import rejected_records

    if quiet:
        quiet_progress()
    settings = get_settings()
    check_device(settings)
    roots = [p.expanduser() for p in paths] or [settings.inbox]
    missing = [str(r) for r in roots if not os.path.lexists(r)]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}" +
             ("  (create the inbox, or pass a folder)" if roots == [settings.inbox] else ""), 2)
    catalog = open_db(settings)
    registration, failed_runs, completed = None, [], 0
    with Interrupts() as interrupts:
        skipped: dict[str, str] = {}
        ready, _ = settle_now(roots, settings.settle_seconds, skipped)
        presence = note_missing(catalog.engine, roots, ready)

        def each(candidate) -> None:
            bar.update()
            if stop.requested():  # after this file: every file is recorded or untouched
                raise stop.Stopped

        with tqdm(total=len(ready), desc="hashing", unit="file", disable=quiet,
                  file=sys.stderr) as bar:
            try:
                registration, _ = register_ready(catalog.engine, ready, on_file=each)
                bar.update(registration.unchanged + registration.known_problems)
            except stop.Stopped:
                pass
        # One ingest plans and runs at a time: a second one started beside it would plan
        # before the first had made its runs, and do every file again (the runs are made
        # as they start). It waits, then finds the work done.
        with locks.held(catalog.engine, locks.INGEST, stopped=stop.requested, waiting=lambda:
                        click.secho("another `media-assets ingest` is working on this "
                                    "catalogue: waiting for it to finish (Ctrl-C to stop)",
                                    fg="yellow", err=True)) as ours:
            if ours and not interrupts.stopped:
                failed_runs, completed = run_batches(settings, catalog, quiet, interrupts)
            if ours and clusters and not interrupts.stopped:
                failed_runs += run_clusters(settings, catalog, quiet, interrupts=interrupts)
        stopped = interrupts.stopped
    paths_seen = [c.path for c in ready]
    summary = summarize(catalog, paths_seen)
    summary["asset_failures"] = asset_failures(catalog.engine, paths=paths_seen)
    summary["json_rejects"] = rejected_records(catalog.engine, paths_seen)
    summary["missing"] = presence.gone
    summary["skipped"] = [{"path": p, "why": why} for p, why in sorted(skipped.items())]
    summary["back"] = len(presence.back)
    if registration is not None:
        summary["new"] = len(registration.new_keys)
        summary["aliases"] = len(registration.aliases)
    summary["completed"] = completed
    summary["failed_runs"] = failed_runs
    summary["stopped"] = stopped
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary, f"{len(paths_seen)} files under {', '.join(map(str, roots))}")
        print_asset_failures(summary["asset_failures"])
        if summary["json_rejects"]:
            # Loaded, but not whole: records that did not fit the design (a type that
            # changed after the sample it was inferred from) are kept aside with a reason.
            click.secho(f"\n{len(summary['json_rejects'])} JSON tables rejected records "
                        "(each kept with its reason):", fg="yellow")
            for r in summary["json_rejects"][:50]:
                click.echo(f"  {r['table']}: {r['rejected']:,} of {r['records']:,} records "
                           f"rejected, see {r['rejects_table']}  <- {name_of(r['path'])}")
        if presence.gone:
            click.secho(f"\n{len(presence.gone)} files gone from disk, marked missing (left "
                        "out of search; they come back as they were if the files do):",
                        fg="yellow")
            for path in presence.gone[:50]:
                click.echo(f"  {name_of(path)}")
        if skipped:  # not files that failed: things the walk does not catalogue, and why
            click.secho(f"\n{len(skipped)} skipped, not catalogued:", fg="yellow")
            for path, why in sorted(skipped.items())[:50]:
                click.echo(f"  {name_of(path)}: {why}")
        if registration is not None:
            click.echo(f"{summary['new']} new, {summary['aliases']} duplicates recorded as "
                       f"aliases, {registration.unchanged} already catalogued" +
                       (f", {completed} from earlier ingests finished (work a stop left, or a "
                        "model added since)" if completed
                        else "") +
                       (f", {len(presence.back)} back on disk" if presence.back else ""))
    if stopped:
        fail("stopped before the end: run `media-assets ingest` again to finish (what is "
             "done is kept, nothing is done twice)", EXIT_INTERRUPTED)
    problems = []
    if summary["asset_failures"]:
        n = len({f["key"] for f in summary["asset_failures"]})
        problems.append(f"{n} files failed an asset (listed above; `media-assets status` "
                        "lists them too)")
    if failed_runs:
        problems.append(f"{len(failed_runs)} runs failed: see `media-assets dev` (Runs) for "
                        f"{', '.join(failed_runs)}")
    if problems:
        fail("; ".join(problems))


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
def samples(folder: Path):
    """Write a folder of real sample media, good and deliberately broken, to try ingest on."""
    from media_assets.lib.samples import make_sample_folder

    # A new or empty folder only: the samples have common names (red.jpg, notes.txt) and
    # would overwrite a user's own files of those names.
    if (folder.exists() or folder.is_symlink()) and (
            not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder} is not a new or empty folder: samples write files named red.jpg, "
             "notes.txt, ... and would overwrite yours; give a folder that does not exist yet",
             2)
    expected = make_sample_folder(folder)
    click.echo(f"wrote {len(expected)} files to {folder} (plus a .part file that must be skipped)")
    for name, want in sorted(expected.items()):
        click.echo(f"  {json.dumps(name, ensure_ascii=False)[1:-1]:<32} expect {want}")

