"""What every command shares: clean errors, the settings, the catalogue, and printing."""

from __future__ import annotations

import json
import os
import sys

import click

from media_assets.lib.settings import Settings, SettingsError


def fail(message: str, code: int = 1):
    """Print `message` as an error and exit with `code` (1: the work failed; 2: usage or
    settings)."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def get_settings() -> Settings:
    """The settings in force, or exit 2 naming the variable that is wrong."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        fail(f"{exc} (see the README's Settings table)", 2)


def check_device(settings: Settings) -> None:
    """Exit 2 when MEDIA_ASSETS_DEVICE names a GPU this machine does not have (`doctor`
    says the same), before any work starts."""
    from media_assets.lib.models.loaders import device_problem

    if why := device_problem(settings.models.device):
        fail(why, 2)


def open_db(settings: Settings):
    from media_assets.lib.db import DatabaseError, MigrationError, open_catalog

    try:
        return open_catalog(settings)
    except (DatabaseError, MigrationError) as exc:
        fail(str(exc))
    except OSError as exc:  # the data home under a file, a read-only disk
        fail(f"cannot use the data home {settings.home}: {exc.strerror or exc} "
              "(set MEDIA_ASSETS_HOME to a folder you can write)")


def summarize(catalog, paths=None) -> dict:
    from media_assets.lib.files.store import FileStore

    files = FileStore(catalog.engine)
    counts = files.counts(paths)
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, status), n in counts.items():
        by_kind.setdefault(kind, {})[status] = n
    return {"total": sum(counts.values()), "by_kind": by_kind,
            "failures": files.failures(paths)}


def print_summary(summary: dict, title: str) -> None:
    statuses = sorted({s for v in summary["by_kind"].values() for s in v})
    click.secho(title, bold=True)
    header = f"{'kind':<8}" + "".join(f"{s:>13}" for s in statuses) + f"{'total':>8}"
    click.echo(header)
    for kind, row in sorted(summary["by_kind"].items()):
        click.echo(f"{kind:<8}" + "".join(f"{row.get(s, 0):>13}" for s in statuses) +
                   f"{sum(row.values()):>8}")
    if summary["failures"]:
        click.secho(f"\n{len(summary['failures'])} files not catalogued:", fg="yellow")
        for f in summary["failures"]:
            # repr-style escaping: a newline in a file name must not break the listing
            name = json.dumps(f["path"], ensure_ascii=False)[1:-1]
            click.echo(f"  [{f['status']}] {name}\n      {f['error']}")


def print_asset_failures(failures: list[dict]) -> None:
    """Files an asset could not process (a JSON table that did not load, an image the
    model could not read), each with the asset and the reason."""
    if not failures:
        return
    click.secho(f"\n{len(failures)} files an asset could not process:", fg="yellow")
    for f in failures:
        click.echo(f"  [{f['asset']}] {name_of(f['path'])}\n      {f['error']}")


def name_of(path: str) -> str:
    """A path on one line: repr-style escapes, so a newline in a name cannot break a
    listing."""
    return json.dumps(path, ensure_ascii=False)[1:-1]


def quiet_progress() -> None:
    """No progress bars from the model libraries either ("Loading weights", downloads):
    `-q` means quiet."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def print_hits(hits, as_json: bool, model_ref: str) -> None:
    if as_json:
        click.echo(json.dumps([{"path": h.path, "key": h.key, "kind": h.kind,
                                "source": h.source, "score": round(h.score, 4),
                                "distance": round(h.distance, 4),
                                "timestamp_s": h.frame_ms / 1000 if h.frame_ms >= 0 else None,
                                "caption": h.caption, "why": h.why} for h in hits],
                               indent=2, default=str))
        return
    if not hits:
        click.echo(f"no results in the {model_ref} space (run `media-assets ingest` first)")
    _hit_lines(hits)


def _shown(path: str) -> str:
    return json.dumps(path, ensure_ascii=False)[1:-1]  # a newline in a name stays one line


def _hit_lines(hits) -> None:
    for i, h in enumerate(hits, 1):
        at = f" @ {h.frame_ms / 1000:.1f}s" if h.frame_ms >= 0 else ""
        click.echo(f"{i:>3}. {h.score:.4f}  [{h.kind}, {h.source}] {_shown(h.path)}{at}")
        if h.caption:
            click.echo(f"       {h.caption[:200]}")


def print_search(found, text: str, as_json: bool, filtered: bool = False) -> None:
    """A search's hits: with --json the whole fused list (relevant first, then the fillers
    scored 0, as the API's `hits`); as text, what the page shows: the relevant hits, then
    the nearest pictures nothing else matched as "visually similar". A filler scored 0 (a
    note merely nearest in meaning) is not a result."""
    from media_assets.lib.search.explain import present

    if as_json:
        print_hits(found.hits, True, found.model_ref)
        return
    relevant = [h for h in found.hits if (h.fused or 0) > 0]
    if not relevant:
        if found.hits:
            click.echo(f"nothing matched {json.dumps(text, ensure_ascii=False)}")
        elif filtered:  # the catalogue may be full: the filters left nothing to rank
            click.echo("no file passes these filters (--kind, --under, dates, ...); drop "
                       "one to search more of the catalogue")
        else:
            click.echo(f"no results in the {found.model_ref} space (run `media-assets "
                       "ingest` first)")
        return
    _hit_lines(relevant)
    _, similar = present(found.hits)
    if similar:
        click.echo("visually similar: " + ", ".join(_shown(h.path) for h in similar))

