"""`clusters` (named groups of similar media) and `organize` (a folder tree that follows them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from media_assets.cli.output import fail, get_settings, open_db
from media_assets.cli.run import run_clusters


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--refresh", is_flag=True, help="Re-cluster, name and place now, first.")
def clusters(as_json: bool, refresh: bool):
    """Clusters with name, size, folder path and representatives; and the unsorted count."""
    from media_assets.lib.clusters.store import overview

    settings = get_settings()
    catalog = open_db(settings)
    if refresh and run_clusters(settings, catalog, quiet=as_json, force=True):
        fail("clustering failed (see above)")
    view = overview(catalog.engine)
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    if view["model"] is None:
        click.echo("no clusters yet: run `media-assets ingest` (or `clusters --refresh`)")
        return
    for c in view["clusters"]:
        name = c["name"] or "(not named yet)"
        flag = " (CLIP only)" if c["degraded"] else ""
        conf = f", confidence {c['confidence']:.2f}" if c["confidence"] is not None else ""
        click.secho(f"{name}{flag}  [{c['size']} files{conf}]  #{c['id']}", bold=True)
        if c["folder_path"]:
            click.echo(f"  folder: {c['folder_path']}")
        if c["tags"]:
            click.echo(f"  tags:   {', '.join(c['tags'])}")
        for r in c["representatives"]:
            at = f" @ {r['frame_ms'] / 1000:.1f}s" if r["frame_ms"] >= 0 else ""
            click.echo(f"    {json.dumps(r['path'] or r['key'], ensure_ascii=False)[1:-1]}{at}")
    run = view["last_run"]
    click.echo(f"\n{len(view['clusters'])} clusters, {view['unsorted']} files unsorted"
               + (f"; last full run {run['at'][:19]} ({run['method']}, {run['seconds']}s)"
                  if run else ""))


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--mode", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink",
              show_default=True, help="How each file appears in the tree.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def organize(dest: Path, mode: str, as_json: bool):
    """Build (or bring up to date) a folder tree under DEST that follows the clusters'
    folder paths, with unclustered files under Unsorted/. Only files this command made are
    ever changed or removed."""
    from media_assets.lib.clusters import organize as org
    from media_assets.lib.clusters.store import members_of
    from media_assets.lib.files.store import FileStore
    from media_assets.lib.models.registry import clip_ref_or_none

    settings = get_settings()
    catalog = open_db(settings)
    model_ref = clip_ref_or_none(settings.models)
    if model_ref is None:
        fail("CLIP is not on this machine: clusters need it (see `media-assets doctor`)")
    files = FileStore(catalog.engine)

    def readable(key: str, path: str) -> str | None:
        paths, _, _ = files.readable_paths(key)
        return paths[0] if paths else None

    target = dest.expanduser().resolve()
    inbox = settings.inbox.expanduser().resolve()
    if target == inbox or inbox in target.parents:
        fail(f"{dest} is inside the inbox ({settings.inbox}): the tree would be catalogued "
             "again as copies of itself; choose a folder outside it", 2)
    try:
        outcome = org.organize(members_of(catalog.engine, model_ref), dest.expanduser(),
                               mode, readable)
    except org.Blocked as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a read-only disk, no permission
        fail(f"cannot write the tree under {dest}: {exc.strerror or exc}")
    if as_json:
        click.echo(json.dumps(outcome.__dict__, indent=2))
    else:
        click.echo(f"{dest}: {outcome.created} made, {outcome.kept} kept, "
                   f"{outcome.removed} removed ({mode})")
        for rel in outcome.foreign:
            click.secho(f"  left alone (not made by organize): {rel}", fg="yellow")
        for rel in outcome.last_copies:
            click.secho(f"  kept, the only copy left of a file gone from disk (organize "
                        f"no longer manages it): {rel}", fg="yellow")
        for line in outcome.missing:
            click.secho(f"  skipped: {line}", fg="yellow")
        for err in outcome.errors:
            click.secho(f"  {err}", fg="red", err=True)
    if outcome.errors:
        sys.exit(1)

