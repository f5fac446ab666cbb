"""Jobs: `media_job` runs every per-file asset over a batch of partitions in one process."""

from dataclasses import dataclass

import dagster as dg

from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.images import image_analysis, image_duplicates, image_embeddings
from media_assets.defs.assets.json_docs import json_schemas, json_tables
from media_assets.defs.assets.picture_text import image_text
from media_assets.defs.assets.speakers import speakers
from media_assets.defs.assets.search import text_embeddings
from media_assets.defs.assets.speech import transcripts
from media_assets.defs.assets.video import video_frames, video_summary
from media_assets.defs.per_file import file_kinds_of, model_of
from media_assets.lib.files.ingestion import PerFileAsset, left_over, plan_batches
from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.locate import ModelNotFound, locate
from media_assets.lib.models.registry import clip_ref_or_none, llm_ref_or_none, text_model_ref
from media_assets.lib.models.roles import Role, spec_of

# Every asset partitioned by `media_files`, in graph order.
PER_FILE_ASSETS = [media_file, image_embeddings, image_analysis, image_duplicates,
                   transcripts, video_frames, video_summary, json_schemas, json_tables,
                   text_embeddings, image_text, speakers]

media_job = dg.define_asset_job(
    "media_job",
    selection=dg.AssetSelection.assets(*PER_FILE_ASSETS),
    description="Every per-file asset over a range of `media_files` partitions, in one "
                "process, so a model loaded for the first file serves the whole batch.",
    # One process per run: a model loaded for the first file serves the whole batch, and
    # one model manager holds the memory budget.
    executor_def=dg.in_process_executor,
)


clusters_job = dg.define_asset_job(
    "clusters_job",
    selection=dg.AssetSelection.groups("clusters"),
    description="Re-cluster the whole CLIP space, then name new or changed clusters and place "
                "them in the hierarchy. Requested by `recluster_sensor` when enough new "
                "files arrived, and nightly by `clusters_schedule`.",
    executor_def=dg.in_process_executor,
)


def available_assets(config: ModelConfig) -> tuple[list[dg.AssetsDefinition], dict[str, str]]:
    """The per-file assets this machine can run, and asset -> why not for the others: an
    asset whose required model (CLIP, Whisper) is missing is left out; optional models
    (captioner, LLM) degrade inside their assets instead."""
    kept, left_out = [], {}
    for asset in PER_FILE_ASSETS:
        role = model_of(asset)
        if role is not None and spec_of(role).required:
            try:
                locate(role, config.model_id(role))
            except ModelNotFound:
                left_out[asset.key.to_user_string()] = (
                    f"the {role} model {config.model_id(role)!r} is not on this machine")
                continue
        kept.append(asset)
    return kept, left_out


def resume_plan(assets: list[dg.AssetsDefinition],
                config: ModelConfig) -> list[PerFileAsset]:
    """The per-file assets (not `media_file`) as the resume logic sees them: their kinds,
    the version their results must have, and what depends on them, from the asset graph."""
    clip_ref = clip_ref_or_none(config) or ""
    try:  # a text model change re-embeds (only the stale units, text_embeddings says how)
        text_ref = text_model_ref(config)
    except ModelNotFound:
        text_ref = ""
    # With an LLM here, designs made without it or by another are redone; without one, any
    # result stands (None).
    refs = {Role.CLIP: clip_ref, Role.TEXT: text_ref, Role.LLM: llm_ref_or_none(config)}
    children: dict[str, set[str]] = {}
    for a in PER_FILE_ASSETS:
        for dep in a.dependency_keys:
            children.setdefault(dep.to_user_string(), set()).add(a.key.to_user_string())

    def downstream(name: str) -> frozenset[str]:
        out, todo = set(), [name]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return frozenset(out)

    return [PerFileAsset(a.key.to_user_string(), tuple(file_kinds_of(a)),
                         refs.get(model_of(a), ""),
                         downstream(a.key.to_user_string()))
            for a in assets if a.key != media_file.key]


# Every job runs in one process, including the UI's asset-graph runs and backfills
# (`__ASSET_JOB`): one model manager then holds the memory budget for the whole run, and
# model steps never overlap in parallel processes.
defs = dg.Definitions(executor=dg.in_process_executor)


@dataclass(frozen=True)
class PlannedRun:
    keys: list[str]  # a contiguous range of `media_files` partitions
    selection: list[dg.AssetKey]


def plan_runs(engine, order: list[str], config: ModelConfig, batch_size: int,
              pending: list[str], only: set[str] | None = None,
              ) -> tuple[list[PlannedRun], list[str], dict[str, str]]:
    """The runs that finish the catalogue: every available asset for `pending` files, and
    for catalogued files with unfinished work (a crash, a model that was missing, a model
    change) the assets left to do and everything downstream of them. `order`: the partition
    keys as Dagster orders them (a ranged run covers a contiguous stretch). Returns the
    runs, the keys completed by them beyond `pending`, and the assets left out. `only`: plan
    for these keys alone (the files of runs that died)."""
    assets, left_out = available_assets(config)
    groups = left_over(engine, resume_plan(assets, config), set(pending))
    if only is not None:
        pending = [k for k in pending if k in only]
        groups = {names: kept for names, keys in groups.items()
                  if (kept := [k for k in keys if k in only])}
    runs = [PlannedRun(b, [a.key for a in assets])
            for b in plan_batches(order, set(pending), batch_size)]
    for names, keys in groups.items():
        selection = [dg.AssetKey(n) for n in sorted(names)]
        runs += [PlannedRun(b, selection) for b in plan_batches(order, set(keys), batch_size)]
    return runs, [k for keys in groups.values() for k in keys], left_out
