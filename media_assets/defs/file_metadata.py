"""What a per-file run shows in Dagster: the run's metadata with its markdown preview, and
each file's own facts and verdict (`FileOutcome`).

Per-file truth in the UI: Dagster gives every partition of a ranged run the same
materialisation metadata (dagster-io/dagster#18123), so each file's own facts (path, kind,
status, error, version, seconds, the preview cells, a thumbnail for images) are added to
its own partition's materialisation, and it gets its own evaluation of the `file_ok` check,
tied to its partition's materialisation: a file that failed is Failed in the check's
partition view while the run and the other files stay green (a failed step would fail
the whole batch's run). defs/file_failures.py makes it Failed in the asset's view too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from media_assets.lib.files.results import FileResult

PREVIEW_ROWS = 50
FILE_CHECK = "file_ok"
CELL_CHARS = 2000  # a preview cell in a file's own facts


def escape_cell(text: object) -> str:
    """A value as one markdown table cell: pipes escaped, line breaks shown as \\n."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "\\r")
            .replace("\n", "\\n"))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   limit: int = PREVIEW_ROWS) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more |" + " |" * (len(headers) - 1))
    return "\n".join(lines)


def run_metadata(files: int, done: int, failed: Mapping[str, str], seconds: float,
                 columns: Sequence[str], table: Sequence[tuple]) -> dict:
    """The run's materialisation metadata: counts, errors, and one preview table (failures
    first, one row per file: its name, the asset's columns, its status)."""
    meta: dict = {
        "files": dg.MetadataValue.int(files),
        "done": dg.MetadataValue.int(done),
        "failed": dg.MetadataValue.int(len(failed)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
    }
    if failed:
        meta["errors"] = dg.MetadataValue.json(dict(failed))
    if table:
        meta["preview"] = dg.MetadataValue.md(
            markdown_table(["file", *columns, "status"], table))
    return meta


def file_facts(result: FileResult, path: str, kind: str, version: str,
               cells: Mapping[str, object], extra: Mapping[str, object]) -> dict:
    """One file's facts: where and what it is, its status (and error), the model
    version, its seconds, its preview cells and whatever the asset noted for it."""
    facts: dict = {"path": path, "kind": kind, "status": result.status, "version": version}
    if result.error:
        facts["error"] = result.error
    if result.seconds is not None:
        facts["seconds"] = dg.MetadataValue.float(round(result.seconds, 3))
    facts.update({name: str(cell)[:CELL_CHARS] for name, cell in cells.items()})
    facts.update(extra)
    return facts


def no_work_facts(path: str, kind: str, status: str, error: str | None,
                  kinds: Sequence[str]) -> dict:
    """The facts of a file in a run's range that this asset did nothing for. Dagster shows
    every partition of a ranged run's range Materialized, so the page of a sound file in
    `image_embeddings`, or of an image that `media_file` could not read, says why there is
    nothing: it is not this asset's kind, or the file failed before it."""
    if kind not in kinds:
        why = f"not for this asset: it takes {', '.join(kinds)} files, this one is {kind}"
    elif status != "ok":
        why = f"not run: media_file says {status}" + (f": {error}" if error else "")
    else:  # changed on disk since its scan, or a stop was asked for: the next run does it
        why = "not done in this run: the next run does it"
    return {"path": path, "kind": kind, "status": "no work", "why": why[:2000]}


def report_not_for_them(context: dg.AssetExecutionContext,
                        files: Sequence[tuple[str, str, str, str, str | None]],
                        assets: Mapping[str, Sequence[str]]) -> int:
    """For each file (key, path, kind, status, error), a "no work" materialisation of each
    per-file asset (name -> the kinds it takes; none: every file, as `media_file`) that does
    not take the file's kind and is not in this run; the number written.

    The planner leaves out of a run the assets for kinds its batch lacks (a batch of photos
    starts no speech step), so without these a photo stayed "Missing" in `transcripts`'s
    partition view for ever, as if work were owed. Within a run's range Dagster already
    shows every partition Materialized, with `no_work_facts`; these say the same for the
    assets the run left out, and Missing then means what a user reads it as: work not done
    yet. They are this step's events (the run that found the file's kind is their source),
    written as one batch as Dagster writes a ranged output's materialisations:
    `context.log_event` writes each alone (2.2 ms per event, 13 ms per photo for six
    assets, bench_ingest), so they are built with Dagster's batch marker and queued on the
    step's context (private in dagster 1.13, which the project pins).

    Each such asset's `file_ok` check is planned for those files too, one event per asset
    with the files as its partition subset (as Dagster plans a run's checks): the run
    evaluates none of them, so when it ends the check's partition view shows them Skipped,
    as it shows another kind's files in an asset the run did include, not Missing."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationPlanned)
    from dagster._core.events import (DagsterEvent, DagsterEventBatchMetadata,
                                      DagsterEventType, generate_event_batch_id)

    step = context.get_step_execution_context()
    # The run's steps (each asset's op, named as the asset): `run.asset_selection` is
    # empty for a `materialize` of a selection, so the plan says which assets run.
    in_run = set(step.execution_plan.step_keys_to_execute)
    materialisations = [
        dg.AssetMaterialization(asset_key=name, partition=key,
                                metadata=no_work_facts(path, kind, status, error, kinds))
        for name, kinds in assets.items() if name not in in_run and kinds
        for key, path, kind, status, error in files
        if kind not in kinds]  # a file it owes work stays Missing until a run does it
    batch = generate_event_batch_id()
    queue = context.op_execution_context._events
    for i, materialisation in enumerate(materialisations):
        queue.append(DagsterEvent.asset_materialization(
            step, materialisation,
            DagsterEventBatchMetadata(batch, i == len(materialisations) - 1)))
    partitions = context.assets_def.partitions_def
    for name, kinds in assets.items():
        keys = [key for key, _, kind, _, _ in files if kind not in kinds]
        if name in in_run or not kinds or not keys:
            continue
        queue.append(DagsterEvent.from_step(
            event_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, step_context=step,
            message=f"{FILE_CHECK} of {name}: {len(keys)} files of other kinds, nothing to check",
            event_specific_data=AssetCheckEvaluationPlanned(
                asset_key=dg.AssetKey(name), check_name=FILE_CHECK,
                partitions_subset=partitions.subset_with_partition_keys(keys))))
    return len(materialisations)


class FileOutcome:
    """What a per-file asset returns: the run's materialisation (metadata and checks) and
    each file's facts and verdict. `per_file_asset` sets each file's facts on its
    partition's materialisation, yields the materialisation, then each file's `file_ok`
    evaluation."""

    def __init__(self, context: dg.AssetExecutionContext, metadata: dict,
                 facts: Mapping[str, dict], failed: Mapping[str, str],
                 check_results: Sequence[dg.AssetCheckResult] = (),
                 others: Mapping[str, dict] | None = None):
        self.context, self.facts, self.failed = context, dict(facts), dict(failed)
        self.others = dict(others or {})  # the range's files it did nothing for: facts only
        # The run's `file_ok` result goes with the materialisation (a check's output must
        # be yielded once per step); each file's own follows on its partition.
        self.result = dg.MaterializeResult(metadata=metadata,
                                           check_results=[*check_results, self._summary()])

    def _summary(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=FILE_CHECK, passed=not self.failed,
            description=f"{len(self.failed)} of {len(self.facts)} files of this run failed; "
                        "each file's own result is on its partition",
            metadata={"failed": dg.MetadataValue.int(len(self.failed)),
                      "files": dg.MetadataValue.int(len(self.facts))})

    def add_facts_to_partitions(self) -> None:
        """Each file's own facts as its own partition's materialisation metadata (merged
        over the batch's, which Dagster copies to every partition); called before the
        materialisation is yielded. One event per file and asset fewer than an observation
        each (3.7 ms per file and asset, bench_ingest's profile), and the partition's own
        page shows its file's facts.

        `context.add_asset_metadata(partition_key=...)` would do the same, but it reads
        every key of the dynamic partition set on each call (cost per file growing with the
        library), so the step's accumulator (private in dagster 1.13, which the project
        pins) is given them all at once."""
        step = self.context.get_step_execution_context()
        accumulator = step._metadata_accumulator
        for key, facts in [*self.facts.items(), *self.others.items()]:
            accumulator = accumulator.with_additional_asset_metadata(
                asset_key=self.context.asset_key, partition_key=key, metadata=facts)
        step._metadata_accumulator = accumulator

    def check_evaluations(self) -> Iterator[dg.AssetCheckEvaluation]:
        """Each file's `file_ok` on its partition (a single-partition run's summary
        already targets its partition), each tied to that partition's materialisation of
        this run: the check's partition view counts an evaluation only when it targets the
        partition's latest materialisation (Passed or Failed there; untied, it showed
        nowhere). Files of the run's range that this asset has no work for (another kind)
        get no verdict: the view shows them Skipped."""
        if len(self.context.partition_keys) < 2:
            return
        targets = self._materialisations()
        for key, facts in self.facts.items():
            yield dg.AssetCheckEvaluation(
                asset_key=self.context.asset_key, check_name=FILE_CHECK,
                passed=key not in self.failed, partition=key,
                target_materialization_data=targets.get(key),
                metadata={"path": facts.get("path", ""),
                          **({"error": self.failed[key]} if key in self.failed else {})})

    def _materialisations(self) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
        """This run's materialisation of each of its files, by partition: one query, as
        Dagster's own check results find theirs (`AssetCheckResult`, per partition)."""
        keys = list(self.facts)
        records = self.context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=self.context.asset_key, asset_partitions=keys),
            limit=len(keys)).records
        found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
        for r in records:  # newest first
            if r.run_id == self.context.run.run_id and r.partition_key not in found:
                found[r.partition_key] = AssetCheckEvaluationTargetMaterializationData(
                    storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp)
        return found
