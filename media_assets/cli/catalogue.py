"""Reading the catalogue: `status`, `where`, `search`, `similar`, `classify`, `duplicates`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from media_assets.cli.output import (check_device, fail, get_settings, name_of, open_db,
                                     print_asset_failures, print_hits, print_search,
                                     print_summary, summarize)

MAX_K = 1000  # results per query: more is a listing, not a search


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool):
    """Counts by kind and status, and every failure with its error."""
    settings = get_settings()
    catalog = open_db(settings)
    summary = summarize(catalog)
    from media_assets.lib.files.ingestion import missing_paths
    from media_assets.lib.files.results import asset_failures
    from media_assets.lib.files.store import FileStore
    from media_assets.lib.json_docs.store import json_overview

    summary["json_tables"] = json_overview(catalog.engine)
    summary["asset_failures"] = asset_failures(catalog.engine)
    summary["missing"] = missing_paths(catalog.engine)
    files = FileStore(catalog.engine)
    pending = files.pending_keys()
    rows = files.get(pending[:1000])
    summary["pending"] = [{"key": k, "path": rows[k].primary_path} for k in pending[:1000]]
    from media_assets.defs.planning import unfinished

    # Catalogued (status ok) but with assets still to do: a stopped ingest's files. They
    # counted as ok and nothing said that work was left.
    left = unfinished(catalog.engine, settings.models)
    summary["unfinished"] = {name: len(keys) for name, keys in left.items()}
    summary["unfinished_files"] = len({k for keys in left.values() for k in keys})
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    print_summary(summary, f"catalog: {summary['total']} paths "
                            f"({catalog.url.render_as_string(hide_password=True)})")
    if summary["json_tables"]:
        click.secho(f"\n{len(summary['json_tables'])} JSON files designed and loaded:",
                    bold=True)
        for t in summary["json_tables"]:
            loaded = ("not loaded" if t["row_count"] is None else
                      f"{t['row_count']} rows, {t['reject_count']} rejected")
            click.echo(f"  json_data.{t['table_name']} [{t['storage_type']}] {loaded}  "
                       f"<- {json.dumps(t['path'], ensure_ascii=False)[1:-1]}")
            click.echo(f"      {t['reasoning']}")
            click.echo(f"      LLM: {t['llm_status'][:160]}")
    if summary["pending"]:
        click.secho(f"\n{len(pending)} files registered and waiting for a run (the inbox "
                    "sensor, `media-assets ingest` or the nightly media_job_schedule "
                    "processes them):", fg="yellow")
        for f in summary["pending"][:50]:
            click.echo(f"  {json.dumps(f['path'], ensure_ascii=False)[1:-1]}  ({f['key']})")
    if summary["unfinished_files"]:
        click.secho(f"\n{summary['unfinished_files']} catalogued files with work left (a "
                    "stopped ingest, or a model added since); `media-assets ingest` on "
                    "their folder finishes them:", fg="yellow")
        for name, n in summary["unfinished"].items():
            click.echo(f"  {name:<18} {n} to do")
    print_asset_failures(summary["asset_failures"])
    if summary["missing"]:
        click.secho(f"\n{len(summary['missing'])} files gone from disk at the last scan of "
                    "their folder (left out of search; they come back as they were if the "
                    "files do):", fg="yellow")
        for f in summary["missing"][:50]:
            click.echo(f"  {name_of(f['path'])}  ({f['key'] or '-'})")


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--ui", default=None,
              help="The Dagster UI's address [default: where the last `media-assets dev` "
                   "served it, else http://127.0.0.1:3000].")
def where(file: Path, as_json: bool, ui: str | None):
    """FILE's content key (its partition), status, and each asset's state, with the UI link."""
    from urllib.parse import quote

    from media_assets.cli.serve import remembered_ui_url
    from media_assets.defs.jobs import PER_FILE_ASSETS
    from media_assets.defs.per_file import file_kinds_of
    from media_assets.lib.files.results import results_of
    from media_assets.lib.files.store import FileStore, display_path

    settings = get_settings()
    ui = (ui or remembered_ui_url(settings)).rstrip("/")
    catalog = open_db(settings)
    store = FileStore(catalog.engine)
    entry = store.entry(display_path(os.path.abspath(file)))
    if entry is None:
        fail(f"{file} is not in the catalogue (run `media-assets ingest` on its folder)")
    info = {**entry, "assets": {}}
    if entry["key"]:
        done = results_of(catalog.engine, entry["key"])
        # A file that could not be read is not waiting for these assets: it is tried
        # again only when its content changes (a new key), so "to do" would be a promise.
        left = ({"status": "to do"} if entry["status"] in ("ok", "pending") else
                {"status": "not run", "error": f"the file is {entry['status']}; it is tried "
                                              "again when its content changes"})
        for asset in PER_FILE_ASSETS[1:]:
            name = asset.key.to_user_string()
            if entry["kind"] in file_kinds_of(asset):
                info["assets"][name] = done.get(name, left)
        info["ui"] = f"{ui}/assets/media_file?view=partitions&partition={quote(entry['key'])}"
        if entry["kind"] == "json":
            from media_assets.lib.json_docs.store import table_of

            info["table"] = table_of(catalog.engine, entry["key"])
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"{name_of(entry['path'])}\n  key {entry['key'] or '-'}  kind {entry['kind']}  "
               f"status {entry['status']}" + (f"\n  error: {entry['error']}"
                                               if entry["error"] else ""))
    for name, r in info["assets"].items():
        click.echo(f"  {name:<18} {r['status']}" + (f": {r['error']}" if r.get("error") else ""))
    if t := info.get("table"):
        click.echo(f"  table: {t['table']} ({t['storage']}, {t['rows']:,} rows"
                   + (f"; {t['rejected']:,} of {t['records']:,} records rejected, in "
                      f"{t['rejects_table']}" if t["rejected"] else "") + ")")
    if info.get("ui"):
        click.echo(f"  UI: {info['ui']}")


@click.command()
@click.argument("text")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, MAX_K),
              help="Number of results.")
@click.option("--kind", type=click.Choice(["image", "video", "audio", "json", "text"]),
              multiple=True, help="Only this kind of file; repeat for several "
                                  "(--kind image --kind video).")
@click.option("--after", type=click.DateTime(), default=None,
              help="Taken (EXIF date, else file time) on or after this date.")
@click.option("--before", type=click.DateTime(), default=None,
              help="Taken before this date.")
@click.option("--under", type=click.Path(path_type=Path), default=None,
              help="Only files under this folder.")
@click.option("--min-duration", type=click.FloatRange(0), default=None,
              help="Audio and video at least this many seconds long.")
@click.option("--max-duration", type=click.FloatRange(0), default=None,
              help="Audio and video at most this many seconds long.")
@click.option("--lang", default=None, help="Spoken language (en, de, es, ...).")
@click.option("--speaker", default=None,
              help="Only files where this speaker talks: a name given with `speakers name` "
                   "(any case), or a label (S1, S2, ...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search(text: str, k: int, kind: tuple[str, ...], after, before, under: Path | None,
           min_duration: float | None, max_duration: float | None, lang: str | None,
           speaker: str | None, as_json: bool):
    """Find media by what it shows (CLIP), what is said in it, its captions and answers, and
    its name; the legs are fused by relevance (README "Search")."""
    from datetime import timezone

    from media_assets.lib.models.registry import build_manager
    from media_assets.lib.search.filters import Filters
    from media_assets.lib.search.query import QueryError
    from media_assets.lib.search.query import search as run_search

    settings = get_settings()
    check_device(settings)
    catalog = open_db(settings)
    speaker = " ".join(speaker.split()) if speaker else None
    filters = Filters(kind=kind, lang=lang, min_duration=min_duration, max_duration=max_duration,
                      speaker=speaker,
                      after=after.replace(tzinfo=timezone.utc) if after else None,
                      before=before.replace(tzinfo=timezone.utc) if before else None,
                      under=str(under.expanduser().resolve()) if under else None)
    try:
        found = run_search(catalog.engine, build_manager(settings.models), text, k,
                           filters=filters)
    except QueryError as exc:
        fail(str(exc), 2)
    notes = list(found.notes)
    if speaker:
        from media_assets.lib.speech.speaker_store import unknown_speaker_note

        notes += [n for n in [unknown_speaker_note(catalog.engine, speaker)] if n]
    for note in notes:
        click.secho(note, fg="yellow", err=True)
    print_search(found, text, as_json,
                 filtered=any(v is not None for v in filters.params().values()))


def clip_for_file(path: Path):
    """(catalog, vector, model_ref, own key, manager) for an image file: stored if
    catalogued, else embedded now."""
    from media_assets.lib.files.inbox import sha256_file
    from media_assets.lib.images.vectors import stored_vector
    from media_assets.lib.models.clip import embed_images
    from media_assets.lib.models.registry import build_manager
    from media_assets.lib.models.roles import Role

    if not path.is_file():
        fail(f"no such file: {path}")
    settings = get_settings()
    catalog = open_db(settings)
    manager = build_manager(settings.models)
    model_ref = manager.inventory.ref_or_none(Role.CLIP)  # hashed once, shared with a load
    if model_ref is None:
        fail(manager.inventory.why_missing(Role.CLIP) or "CLIP is missing")
    key = sha256_file(os.path.realpath(path))[:16]
    vec = stored_vector(catalog.engine, key, model_ref)
    if vec is None:
        with manager.use(Role.CLIP) as clip:
            vectors, errors = embed_images(clip, [str(path)])
        if errors:
            fail(errors[str(path)])
        vec = vectors[0]
    return catalog, vec, model_ref, key, manager


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, MAX_K))
@click.option("--json", "as_json", is_flag=True)
def similar(file: Path, k: int, as_json: bool):
    """The images nearest to FILE (catalogued or not)."""
    from media_assets.lib.search.query import nearest

    catalog, vec, model_ref, key, _ = clip_for_file(file)
    hits = [h for h in nearest(catalog.engine, vec, model_ref, k=k + 1) if h.key != key][:k]
    print_hits(hits, as_json, model_ref)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--labels", required=True, help='Comma-separated, e.g. "cat,dog,car".')
@click.option("--json", "as_json", is_flag=True)
def classify(file: Path, labels: str, as_json: bool):
    """Zero-shot classification of FILE over LABELS, with probabilities (CLIP)."""
    from media_assets.lib.models.clip import zero_shot
    from media_assets.lib.models.roles import Role

    names = [x.strip() for x in labels.split(",") if x.strip()]
    if len(names) < 2:
        fail("give at least two labels: --labels \"cat,dog\"")
    _, vec, _, _, manager = clip_for_file(file)
    with manager.use(Role.CLIP) as clip:
        probs = zero_shot(clip, vec[None, :], names)[0]
    ranked = sorted(zip(names, probs.tolist()), key=lambda x: -x[1])
    if as_json:
        click.echo(json.dumps([{"label": n, "probability": round(p, 4)} for n, p in ranked]))
        return
    for name, p in ranked:
        click.echo(f"{p:7.2%}  {name}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def duplicates(as_json: bool):
    """Pairs of near-duplicate images (cosine distance <= 0.01)."""
    from media_assets.lib.images.store import near_duplicate_pairs

    catalog = open_db(get_settings())
    pairs = near_duplicate_pairs(catalog.engine)
    if as_json:
        click.echo(json.dumps(pairs, indent=2, default=str))
        return
    if not pairs:
        click.echo("no near-duplicates found")
    for p in pairs:
        a = json.dumps(p["path_a"], ensure_ascii=False)[1:-1]
        b = json.dumps(p["path_b"], ensure_ascii=False)[1:-1]
        click.echo(f"{p['distance']:.4f}  {a}\n        {b}")

