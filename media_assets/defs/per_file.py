"""The per-file asset: its decorator, and `FileBatch`, the one loop every such asset runs.

An asset partitioned by `media_files` materialises many files per run (one model load
serves them all). `FileBatch` gives it the files of its kinds with a readable path, times
each file, turns one file's exception into that file's recorded failure (the batch goes
on), writes each file's result to `file_asset_results` (what `ingest` resumes from), and
builds the run's metadata with one markdown table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from media_assets.defs.partitions import media_files
from media_assets.defs.resources import CatalogResource
from media_assets.lib.files.results import FileResult, record_results
from media_assets.lib.files.store import FileRow, FileStore, display_path
from media_assets.lib.models.roles import Role

# Per-file runs are cheap to batch: a run covers up to this many partitions, so a model
# loaded for the first file serves all of them.
MAX_PARTITIONS_PER_RUN = 256
PREVIEW_ROWS = 50
KINDS_KEY, MODEL_KEY = "media_assets/file_kinds", "media_assets/model_role"
OWNER = "team:media-catalog"


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
    return dg.asset(partitions_def=media_files, deps=list(deps), group_name=group_name,
                    owners=[OWNER],
                    backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
                    pool="gpu" if loads else None, metadata=metadata, **kwargs)


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
        self._start = time.perf_counter()
        store = FileStore(self.engine)
        rows = store.get(context.partition_keys)
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
        return iter(list(self.items))

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
        if cells:
            self._table.append((item.name, *cells, "ok"))

    def ok_all(self) -> list[str]:
        """Every file of the batch is done by one piece of work for the whole batch (it
        raises, or the step fails, otherwise); returns their keys."""
        for item in self.items:
            self.ok(item)
        return [item.key for item in self.items]

    def fail(self, item: FileItem, error: str, seconds: float | None = None) -> None:
        error = error[:2000]
        self._results[item.key] = FileResult(item.key, "failed", error, seconds)
        self._table.append((item.name, *[""] * len(self.columns), f"failed: {error}"))
        self.context.log.warning(f"{self.asset}: {display_path(item.path)}: {error}")

    def result(self, metadata: dict | None = None, version: str | Callable[[], str] = "",
               **kwargs) -> dg.MaterializeResult:
        """Record every file's result and build the run's metadata. `version`: the model
        space the results belong to (a callable is only asked when there are results, so a
        batch with nothing to do never needs the model)."""
        if self._results:
            record_results(self.engine, self.asset, version() if callable(version) else version,
                           self._results.values())
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
        return dg.MaterializeResult(metadata=meta, **kwargs)
