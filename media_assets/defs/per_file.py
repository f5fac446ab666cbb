"""The per-file asset: its decorator, and `FileBatch`, the one loop every such asset runs.

An asset partitioned by `media_files` materialises many files per run (one model load
serves them all). `FileBatch` gives it the files of its kinds with a readable path, times
each file, turns one file's exception into that file's recorded failure (the batch goes
on), writes each file's result to `file_asset_results` (what `ingest` resumes from), and
builds the run's metadata with one markdown table.

Per-file truth in the UI: Dagster gives every partition of a ranged run the same
materialisation metadata (dagster-io/dagster#18123), so each file also gets its own
`AssetObservation` on its partition (path, kind, status, error, version, seconds, the
preview cells, a thumbnail for images) and its own evaluation of the `file_ok` check:
a file that failed shows a failed check on its partition, red in the partition view,
while the run and the other files stay green. A per-partition check reads better there
than a failed step, which would fail the whole batch's run.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from media_assets.defs.partitions import media_files
from media_assets.defs.resources import CatalogResource
from media_assets.lib import stop
from media_assets.lib.files.results import FileResult, record_results
from media_assets.lib.files.store import FileRow, FileStore, display_path
from media_assets.lib.models.roles import Role

# Per-file runs are cheap to batch: a run covers up to this many partitions, so a model
# loaded for the first file serves all of them.
MAX_PARTITIONS_PER_RUN = 256
PREVIEW_ROWS = 50
KINDS_KEY, MODEL_KEY = "media_assets/file_kinds", "media_assets/model_role"
OWNER = "team:media-catalog"
FILE_CHECK = "file_ok"
# The FileFacts of the asset running in this thread, for the decorator's wrapper.
_FACTS: contextvars.ContextVar[list] = contextvars.ContextVar("media_assets_facts")


def per_file_asset(*, group_name: str, file_kinds: Sequence[str], deps=(),
                   model: Role | None = None, loads_model: bool | None = None, **kwargs):
    """`@dg.asset` for one partition per file, many files to a run.

    `file_kinds`: the kinds of file it has work for. `model`: the role it needs; an asset
    that loads that model (the default when a model is named) goes in the `gpu` pool, which
    dagster.yaml limits to one run at a time. Both are kept in the asset's metadata, where
    `ingest` and the resume logic read them.
    """
    loads = model is not None if loads_model is None else loads_model
    metadata = {KINDS_KEY: ",".join(file_kinds)}
    if model is not None:
        metadata[MODEL_KEY] = model.value

    def decorate(fn):
        checks = [*kwargs.pop("check_specs", []), dg.AssetCheckSpec(
            FILE_CHECK, asset=fn.__name__, partitions_def=media_files,
            description="Per file (partition): passes when this asset processed the file, "
                        "fails with the reason when it could not.")]

        @functools.wraps(fn)
        def with_file_events(*args, **kw):
            token = _FACTS.set([])
            try:
                result = fn(*args, **kw)
                made = _FACTS.get()
            finally:
                _FACTS.reset(token)
            facts = made[-1] if made else None
            if facts is not None:
                yield from facts.observations()
            yield result
            if facts is not None:
                yield from facts.check_evaluations()

        return dg.asset(partitions_def=media_files, deps=list(deps), group_name=group_name,
                        owners=[OWNER], check_specs=checks,
                        backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
                        pool="gpu" if loads else None, metadata=metadata, **kwargs)(
            with_file_events)

    return decorate


class FileFacts:
    """Each file's facts and verdict for one run: its observations and `file_ok`
    evaluations, yielded by the decorator's wrapper. `FileBatch.result` makes one;
    `media_file`, which decides every file's verdict at once, makes its own."""

    def __init__(self, context: dg.AssetExecutionContext, facts: dict[str, dict],
                 failed: dict[str, str]):
        self.context, self.facts, self.failed = context, facts, failed
        with contextlib.suppress(LookupError):
            _FACTS.get().append(self)

    def summary(self) -> dg.AssetCheckResult:
        """The run's `file_ok` result (a check's output must be yielded once per step)."""
        return dg.AssetCheckResult(
            check_name=FILE_CHECK, passed=not self.failed,
            description=f"{len(self.failed)} of {len(self.facts)} files of this run failed; "
                        "each file's own result is on its partition",
            metadata={"failed": dg.MetadataValue.int(len(self.failed)),
                      "files": dg.MetadataValue.int(len(self.facts))})

    def observations(self) -> Iterator[dg.AssetObservation]:
        """Each file's own facts, on its own partition (the materialisation's metadata is
        the batch's, repeated on every partition)."""

    def observations(self) -> Iterator[dg.AssetObservation]:
        for key, facts in self.facts.items():
            yield dg.AssetObservation(asset_key=self.context.asset_key, partition=key,
                                      metadata=facts)

    def check_evaluations(self) -> Iterator[dg.AssetCheckEvaluation]:
        """Each file's `file_ok` on its partition (a single-partition run's summary
        already targets its partition)."""
        if len(self.context.partition_keys) < 2:
            return
        for key, facts in self.facts.items():
            yield dg.AssetCheckEvaluation(
                asset_key=self.context.asset_key, check_name=FILE_CHECK,
                passed=key not in self.failed, partition=key,
                metadata={"path": facts.get("path", ""),
                          **({"error": self.failed[key]} if key in self.failed else {})})


def file_kinds_of(asset: dg.AssetsDefinition) -> list[str]:
    return asset.specs_by_key[asset.key].metadata.get(KINDS_KEY, "").split(",")


def model_of(asset: dg.AssetsDefinition) -> Role | None:
    role = asset.specs_by_key[asset.key].metadata.get(MODEL_KEY)
    return Role(role) if role else None


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


def blocking_check(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    """A check that keeps downstream assets from consuming what it finds wrong."""
    return dg.AssetCheckSpec(name, asset=asset, blocking=True, description=description)


def check_result(name: str, failing: Sequence[str]) -> dg.AssetCheckResult:
    """Passed when no file fails it; the failing keys are listed in its metadata."""
    return dg.AssetCheckResult(check_name=name, passed=not failing, metadata={
        "failing_files": dg.MetadataValue.int(len(failing)),
        "keys": dg.MetadataValue.json(list(failing)[:100])})


@dataclass(frozen=True)
class FileItem:
    key: str
    path: str
    row: FileRow

    @property
    def name(self) -> str:
        """The file name as people (and Dagster's event log) can read it."""
        return display_path(self.path).rsplit("/", 1)[-1]


class FileBatch:
    """The files of one run that an asset has work for, and what became of each."""

    def __init__(self, context: dg.AssetExecutionContext, catalog: CatalogResource,
                 kinds: Sequence[str], accept: Callable[[FileRow], bool] | None = None,
                 columns: Sequence[str] = ()):
        self.context = context
        self.asset = context.asset_key.to_user_string()
        self.engine = catalog.get().engine
        self.columns = list(columns)
        self.items: list[FileItem] = []
        self.considered: list[str] = []  # every file of its kinds, skipped ones too
        self._results: dict[str, FileResult] = {}
        self._table: list[tuple] = []
        self._cells: dict[str, tuple] = {}  # key -> its preview cells
        self._names: dict[str, str] = {}  # key -> display path
        self._extra: dict[str, dict] = {}  # key -> more facts for its observation
        self._start = time.perf_counter()
        store = FileStore(self.engine)
        rows = store.get(context.partition_keys)
        self._rows = rows
        for key in context.partition_keys:
            row = rows.get(key)
            if row is None or row.kind not in kinds or row.status != "ok":
                continue  # not this asset's kind, or media_file refused it
            self.considered.append(key)
            if accept is not None and not accept(row):
                self._results[key] = FileResult(key, "skipped")
                continue
            # A path still holding what was registered: files move, vanish or change after
            # registration, and an alias may still hold the same content.
            paths, why_none, changed = store.readable_paths(key, row.size_bytes)
            if changed:  # no result: the next scan registers it again, then it is redone
                continue
            if not paths:
                self.fail(FileItem(key, row.primary_path, row), why_none)
                continue
            self.items.append(FileItem(key, paths[0], row))

    def __iter__(self) -> Iterator[FileItem]:
        # A stop asked for (the first Ctrl-C in `ingest`) ends the loop after the current
        # file: the files left get no result, so the next run does them.
        for item in list(self.items):
            if stop.requested():
                return
            yield item

    def __len__(self) -> int:
        return len(self.items)

    @property
    def failed(self) -> dict[str, str]:
        return {r.key: r.error or "" for r in self._results.values() if r.status == "failed"}

    @property
    def done(self) -> list[str]:
        return [r.key for r in self._results.values() if r.status == "ok"]

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    @contextmanager
    def each(self, item: FileItem) -> Iterator[None]:
        """One file's work: an exception becomes that file's failure, and the batch goes
        on. The work calls `ok` when the file is done."""
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:  # one bad file must not stop the others
            self.fail(item, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)

    def ok(self, item: FileItem, *cells: object, seconds: float | None = None) -> None:
        """`item` is done; `cells` are its row in the preview (one per column)."""
        self._results[item.key] = FileResult(item.key, "ok", None, seconds)
        self._names[item.key] = display_path(item.path)
        if cells:
            self._table.append((item.name, *cells, "ok"))
            self._cells[item.key] = cells

    def skip(self, item: FileItem, why: str) -> None:
        """Nothing to do for `item` now (e.g. its upstream result is missing because that
        model is not here); not a failure. Resume runs it again with its upstream."""
        self._results[item.key] = FileResult(item.key, "skipped", why[:2000])
        self._names[item.key] = display_path(item.path)
        self._table.append((item.name, *[""] * len(self.columns), f"skipped: {why}"))

    def note(self, key: str, **facts) -> None:
        """More facts for one file's own observation (a thumbnail, a model)."""
        self._extra.setdefault(key, {}).update(facts)

    def ok_all(self) -> list[str]:
        """Every file of the batch is done by one piece of work for the whole batch (it
        raises, or the step fails, otherwise); returns their keys."""
        for item in self.items:
            self.ok(item)
        return [item.key for item in self.items]

    def fail(self, item: FileItem, error: str, seconds: float | None = None) -> None:
        error = error[:2000]
        self._results[item.key] = FileResult(item.key, "failed", error, seconds)
        self._names[item.key] = display_path(item.path)
        # Failures first in the preview: they are what a reader looks for.
        self._table.insert(0, (item.name, *[""] * len(self.columns), f"failed: {error}"))
        self.context.log.warning(f"{self.asset}: {display_path(item.path)}: {error}")

    def result(self, metadata: dict | None = None, version: str | Callable[[], str] = "",
               **kwargs) -> dg.MaterializeResult:
        """Record every file's result and build the run's metadata. `version`: the model
        space the results belong to (a callable is only asked when there are results, so a
        batch with nothing to do never needs the model)."""
        version = (version() if callable(version) else version) if self._results else ""
        if self._results:
            record_results(self.engine, self.asset, version, self._results.values())
        failed = self.failed
        meta: dict = {
            "files": dg.MetadataValue.int(len(self.considered)),
            "done": dg.MetadataValue.int(len(self.done)),
            "failed": dg.MetadataValue.int(len(failed)),
            "seconds": dg.MetadataValue.float(round(self.elapsed, 3)),
        }
        if failed:
            meta["errors"] = dg.MetadataValue.json(failed)
        if self._table:
            meta["preview"] = dg.MetadataValue.md(
                markdown_table(["file", *self.columns, "status"], self._table))
        meta.update(metadata or {})
        facts = FileFacts(self.context, {k: self._facts(k, version) for k in self._results},
                          failed)
        checks = [*kwargs.pop("check_results", []), facts.summary()]
        return dg.MaterializeResult(metadata=meta, check_results=checks, **kwargs)

    def _facts(self, key: str, version: str) -> dict:
        r = self._results[key]
        row = self._rows.get(key)
        facts: dict = {"path": self._names.get(key, row.primary_path if row else ""),
                       "kind": row.kind if row else "", "status": r.status,
                       "version": version}
        if r.error:
            facts["error"] = r.error
        if r.seconds is not None:
            facts["seconds"] = dg.MetadataValue.float(round(r.seconds, 3))
        for name, cell in zip(self.columns, self._cells.get(key, ())):
            facts[name] = str(cell)[:2000]
        facts.update(self._extra.get(key, {}))
        return facts
