"""The one run planner: which `media_job` runs finish the catalogue, for the inbox sensor,
the nightly schedule and `ingest` alike.

Every planner asks the same three questions here, so a machine without a model (Whisper,
say) behaves the same whoever plans:
- which per-file assets can run on this machine (`available_assets`, asking the model
  inventory: an asset whose required model is missing is left out, with the reason;
  optional models degrade inside their assets);
- which files need which assets (new files: every available asset their names allow, so a
  batch of photos starts no speech, video or JSON step, `lib/files/kinds.py`; catalogued
  files with unfinished work: what is left and everything downstream of it, `resume_plan`);
- which of those a queued or running run already covers (`in_flight`): those are left to
  that run, never asked for twice.

What happens after a run dies is Dagster's: runs the daemon launches carry
`dagster/max_retries` (RETRIES), so a run that fails or is killed is re-executed from its
failure by Dagster's run retries (linked to its parent and root run, as a re-execution
from the UI is); a run cancelled from the UI is not retried. `reap_dead_runs` only does
what Dagster's default launcher cannot: notice that a run's worker process is gone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import dagster as dg

from media_assets.defs.assets.files import media_file
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import RANGE_END, RANGE_START, range_tags
from media_assets.defs.per_file import file_kinds_of, model_of, versioned_by
from media_assets.lib.files.ingestion import PerFileAsset, left_over, plan_batches
from media_assets.lib.files.kinds import kinds_of_batch
from media_assets.lib.files.store import FileStore
from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.inventory import ModelInventory
from media_assets.lib.models.roles import Role, spec_of

# Dagster's run retries (dagster.yaml `run_retries`) for the runs the sensor and the
# schedule request: a transient failure (the database restarting, a GPU out of memory, a
# worker killed) gets two more tries. A file that fails for its content is recorded against
# that file and never fails the run, so it is not retried until the content changes.
RETRIES = "2"
MAX_RETRIES_TAG = "dagster/max_retries"
HOST_TAG = "media_assets/host"  # where a CLI run's process lives (daemon runs: this host)
PID_TAG = "media_assets/ingest_pid"  # the `ingest` process whose thread runs it
# Runs that will still do their files: what a planner must not ask for again.
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
PER_FILE_NAMES = frozenset(a.key.to_user_string() for a in PER_FILE_ASSETS)


def available_assets(config: ModelConfig, inventory: ModelInventory | None = None,
                     ) -> tuple[list[dg.AssetsDefinition], dict[str, str]]:
    """The per-file assets this machine can run, and asset -> why not for the others: an
    asset whose required model (CLIP, Whisper) the inventory does not find is left out;
    optional models (captioner, LLM) degrade inside their assets instead."""
    inventory = inventory or ModelInventory(config)
    kept, left_out = [], {}
    for asset in PER_FILE_ASSETS:
        role = model_of(asset)
        if role is not None and spec_of(role).required and not inventory.available(role):
            left_out[asset.key.to_user_string()] = (
                f"the {role} model {config.model_id(role)!r} is not on this machine")
            continue
        kept.append(asset)
    return kept, left_out


def resume_plan(assets: list[dg.AssetsDefinition], config: ModelConfig,
                inventory: ModelInventory | None = None) -> list[PerFileAsset]:
    """The per-file assets (not `media_file`) as the resume logic sees them: their kinds,
    the version their results must have, and what depends on them, from the asset graph."""
    inventory = inventory or ModelInventory(config)

    def version(role: Role | None) -> str | None:
        """What results must carry, as the asset's `FileBatch` records them: the model's
        ref for an asset its decorator declares `versioned` (a CLIP or text model change
        re-embeds; with an LLM here, designs made without it or by another are redone),
        else ''. An optional model that is missing: None, any result stands (its
        fallback's)."""
        if role is None:
            return ""
        ref = inventory.ref_or_none(role)
        return ref if ref is not None else (None if not spec_of(role).required else "")

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
                         version(versioned_by(a)), downstream(a.key.to_user_string()))
            for a in assets if a.key != media_file.key]


def unfinished(engine, config: ModelConfig) -> dict[str, list[str]]:
    """asset -> catalogued files (keys) still waiting for it, of the assets whose models are
    here: what a stopped ingest left, what `ingest` or the sensor will resume."""
    inventory = ModelInventory(config)
    assets, _ = available_assets(config, inventory)
    out: dict[str, set[str]] = {}
    for names, keys in left_over(engine, resume_plan(assets, config, inventory)).items():
        for name in names:
            out.setdefault(name, set()).update(keys)
    return {name: sorted(keys) for name, keys in sorted(out.items())}


@dataclass(frozen=True)
class PlannedRun:
    keys: list[str]  # a contiguous range of `media_files` partitions
    selection: list[dg.AssetKey]

    @property
    def digest(self) -> str:
        """Names the run's files and assets (run keys: the same work, the same key)."""
        return hashlib.sha256(",".join(self.keys + [k.to_user_string() for k in self.selection])
                              .encode()).hexdigest()[:16]

    def request(self, run_key: str, tags: dict[str, str] | None = None) -> dg.RunRequest:
        """A `media_job` run request for a daemon-launched run: retried by Dagster."""
        return dg.RunRequest(run_key=run_key, asset_selection=self.selection,
                             tags={**range_tags(self.keys), MAX_RETRIES_TAG: RETRIES,
                                   **(tags or {})})


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    # Catalogued files whose unfinished work the runs finish (a crash, a model now here).
    completed: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # asset -> why (missing model)
    busy: list[str] = field(default_factory=list)  # files left to runs in flight

    def why_nothing(self) -> str:
        """A skip reason for the UI when there are no runs."""
        parts = ["nothing left to do"]
        if self.busy:
            parts.append(f"{len(self.busy)} files are covered by runs queued or running")
        if self.left_out:
            parts.append("left out for missing models: " + ", ".join(sorted(self.left_out)))
        return "; ".join(parts)


def keys_of_run(run: dg.DagsterRun, index: dict[str, int], order: list[str]) -> list[str]:
    """The `media_files` partitions a run covers: its range, or its one partition."""
    start, end = run.tags.get(RANGE_START), run.tags.get(RANGE_END)
    if start in index and end in index:
        return order[index[start]:index[end] + 1]
    if run.tags.get("dagster/partition") in index:
        return [run.tags["dagster/partition"]]
    return []


def in_flight(instance: dg.DagsterInstance, order: list[str]) -> dict[str, set[str]]:
    """partition -> the per-file assets that queued or running runs will materialise for it
    (a run without an asset selection: every asset of `media_job`)."""
    index = {k: i for i, k in enumerate(order)}
    busy: dict[str, set[str]] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=2000):
        names = (PER_FILE_NAMES if run.asset_selection is None else
                 {k.to_user_string() for k in run.asset_selection} & PER_FILE_NAMES)
        if not names:
            continue
        for key in keys_of_run(run, index, order):
            busy.setdefault(key, set()).update(names)
    return busy


def plan_runs(engine, order: list[str], config: ModelConfig, batch_size: int,
              pending: list[str], *, resume: bool = True, only: set[str] | None = None,
              busy: dict[str, set[str]] | None = None) -> Plan:
    """The runs that finish the catalogue: every available asset for `pending` files, and
    (with `resume`) for catalogued files with unfinished work (a crash, a model that was
    missing, a model change) the assets left to do and everything downstream of them.

    `order`: the partition keys as Dagster orders them (a ranged run covers a contiguous
    stretch). `only`: plan for these keys alone. `busy` (from `in_flight`): a file whose
    planned assets a queued or running run already covers is left to that run."""
    inventory = ModelInventory(config)  # each model located and fingerprinted once here
    assets, left_out = available_assets(config, inventory)
    groups = (left_over(engine, resume_plan(assets, config, inventory), set(pending))
              if resume else {})
    if only is not None:
        pending = [k for k in pending if k in only]
        groups = {names: kept for names, keys in groups.items()
                  if (kept := [k for k in keys if k in only])}
    busy = busy or {}
    plan = Plan(left_out=left_out)

    def add(keys: list[str], selection: list[dg.AssetKey], narrow=None) -> list[str]:
        names = {k.to_user_string() for k in selection}
        free = [k for k in keys if not busy.get(k, set()) & names]
        plan.busy += [k for k in keys if busy.get(k, set()) & names]
        plan.runs.extend(PlannedRun(b, narrow(b) if narrow else selection)
                         for b in plan_batches(order, set(free), batch_size))
        return free

    paths = {k: row.primary_path for k, row in FileStore(engine).get(pending).items()}

    def by_name(batch: list[str]) -> list[dg.AssetKey]:
        return for_kinds(assets, kinds_of_batch([paths.get(k, "") for k in batch], peek=True))

    add(pending, [a.key for a in assets], narrow=by_name)
    for names, keys in groups.items():
        plan.completed += add(keys, [dg.AssetKey(n) for n in sorted(names)])
    return plan


def for_kinds(assets: list[dg.AssetsDefinition], kinds: frozenset[str] | None,
              ) -> list[dg.AssetKey]:
    """The assets with work for files of these kinds (`media_file` always); all of them
    when the kinds are not known."""
    return [a.key for a in assets
            if kinds is None or not file_kinds_of(a) or kinds & set(file_kinds_of(a))]


def retired(order: list[str], catalogued: set[str], busy: dict[str, set[str]]) -> list[str]:
    """Partitions whose content left the catalogue (no path holds it any more), to delete
    from `media_files`; those a run in flight still covers wait for it to end."""
    return [k for k in order if k not in catalogued and k not in busy]


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs whose worker process is gone from this machine (`kill -9`, an
    OOM kill): Dagster's default launcher cannot check a run worker's health, so such a
    run would stay STARTED for good, hold the `gpu` pool slot, and keep its files "in
    flight". Marked failed, a daemon-launched run is retried by Dagster's run retries.
    Only for the default (same-machine) launcher; the k8s and Docker launchers check
    health themselves."""
    import socket

    import psutil
    from dagster._core.launcher import DefaultRunLauncher

    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    reaped, here = [], socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTED]), limit=100):
        if run.tags.get(HOST_TAG, here) != here:
            continue  # `ingest` on another machine: its pid means nothing here
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
        pid = records[0].event_log_entry.dagster_event.pid if records else None
        if pid is None or psutil.pid_exists(pid):
            continue
        instance.report_run_failed(run, f"the run's worker process (pid {pid}) is gone: "
                                        "killed or crashed")
        reaped.append(run.run_id)
    # An `ingest` killed between adding its run and starting it left it NOT_STARTED, its
    # files in flight for every planner: canceled once that process is gone.
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]), limit=100):
        pid = run.tags.get(PID_TAG, "")
        if (run.tags.get(HOST_TAG) == here and pid.isdigit()
                and not psutil.pid_exists(int(pid))):
            instance.report_run_canceled(run, f"the `ingest` that added this run (pid {pid}) "
                                              "is gone before it started")
            reaped.append(run.run_id)
    return reaped
