"""The per-file asset: its decorator, and `FileBatch`, the one loop every such asset runs.

An asset partitioned by `media_files` materialises many files per run (one model load
serves them all). Its decorator is its one declaration: the kinds of file it has work for,
the model role it needs, whether its results are versioned by that model's ref. `FileBatch`
reads them from there and gives the asset the files of its kinds with a readable path,
times each file, turns one file's exception into that file's recorded failure (the batch
goes on), writes each file's result to `file_asset_results` (what `ingest` resumes from,
at the model's version) and returns the run's outcome. The decorator turns that outcome
into Dagster events: each file's facts on its partition's materialisation, each file's
`file_ok` check (defs/file_metadata.py says why per file), and a failed run recording the
files that failed (defs/file_failures.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from media_assets.defs.file_failures import record_failed_files
from media_assets.defs.file_metadata import (FILE_CHECK, FileOutcome, file_facts, no_work_facts,
                                             run_metadata)
from media_assets.defs.partitions import media_files
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib import stop
from media_assets.lib.files.results import FileResult, record_results
from media_assets.lib.files.store import FileRow, FileStore, display_path
from media_assets.lib.models.roles import Role, spec_of

# Per-file runs are cheap to batch: a run covers up to this many partitions, so a model
# loaded for the first file serves all of them.
MAX_PARTITIONS_PER_RUN = 256
KINDS_KEY, MODEL_KEY = "media_assets/file_kinds", "media_assets/model_role"
# Every per-file asset's name (its key and its op) -> the kinds of file it takes, as each is
# declared: what `media_file` reads to tell which assets a run left out have no work for a
# file (`defs/jobs.py`'s list would be an import circle: it imports the assets).
FILE_KINDS: dict[str, tuple[str, ...]] = {}
VERSION_KEY = "media_assets/versioned_by"  # the role whose ref versions the results
OWNER = "team:media-catalog"


def per_file_asset(*, group_name: str, file_kinds: Sequence[str], deps=(),
                   model: Role | None = None, loads_model: bool | None = None,
                   versioned: bool = False, **kwargs):
    """`@dg.asset` for one partition per file, many files to a run.

    `file_kinds`: the kinds of file it has work for. `model`: the role it needs; an asset
    that loads that model (the default when a model is named) goes in the `gpu` pool, which
    dagster.yaml limits to one run at a time. `versioned`: its results hold for that
    model's weights only (the model's ref is their version; another model redoes them).
    All three are kept in the asset's metadata, where `FileBatch`, `ingest` and the resume
    logic read them.

    The body returns its `FileOutcome` (`FileBatch.result`); the decorator yields each
    file's facts on its partition's materialisation, and each file's `file_ok` evaluation.
    """
    if versioned and model is None:
        raise ValueError("a versioned per-file asset names the model that versions it")
    loads = model is not None if loads_model is None else loads_model
    metadata = {KINDS_KEY: ",".join(file_kinds)}
    if model is not None:
        metadata[MODEL_KEY] = model.value
        if versioned:
            metadata[VERSION_KEY] = model.value

    def decorate(fn):
        FILE_KINDS[fn.__name__] = tuple(file_kinds)
        checks = [*kwargs.pop("check_specs", []), dg.AssetCheckSpec(
            FILE_CHECK, asset=fn.__name__, partitions_def=media_files,
            description="Per file (partition): passes when this asset processed the file, "
                        "fails with the reason when it could not.")]

        @functools.wraps(fn)
        def with_file_events(*args, **kw):
            outcome = fn(*args, **kw)
            if not isinstance(outcome, FileOutcome):
                raise TypeError(f"per-file asset {fn.__name__} must return its FileOutcome "
                                f"(FileBatch.result), not {type(outcome).__name__}")
            outcome.add_facts_to_partitions()
            yield outcome.result
            yield from outcome.check_evaluations()
            # Then the failed files, red in the asset's partition view (file_failures.py).
            record_failed_files(outcome.context, outcome.failed,
                                {k: f.get("path", k) for k, f in outcome.facts.items()})

        return dg.asset(partitions_def=media_files, deps=list(deps), group_name=group_name,
                        owners=[OWNER], check_specs=checks,
                        backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
                        pool="gpu" if loads else None, metadata=metadata, **kwargs)(
            with_file_events)

    return decorate


def _declared(asset: dg.AssetsDefinition) -> dict:
    return asset.specs_by_key[asset.key].metadata


def file_kinds_of(asset: dg.AssetsDefinition) -> list[str]:
    """The kinds of file the asset has work for (empty for `media_file`: every file)."""
    return [k for k in _declared(asset).get(KINDS_KEY, "").split(",") if k]


def model_of(asset: dg.AssetsDefinition) -> Role | None:
    """The model role the asset needs, or None."""
    role = _declared(asset).get(MODEL_KEY)
    return Role(role) if role else None


def versioned_by(asset: dg.AssetsDefinition) -> Role | None:
    """The role whose ref (`ModelInventory.ref`) is the version of the asset's results, or
    None when any result stands whatever the model (versioned in its own rows, if at all)."""
    role = _declared(asset).get(VERSION_KEY)
    return Role(role) if role else None


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
    """The files of one run that an asset has work for, and what became of each. The
    kinds, the model and the version come from the asset's decorator."""

    def __init__(self, context: dg.AssetExecutionContext, catalog: CatalogResource,
                 gpu: GpuResource | None = None, *,
                 accept: Callable[[FileRow], bool] | None = None, columns: Sequence[str] = ()):
        asset = context.assets_def
        self.context = context
        self.asset = context.asset_key.to_user_string()
        self.kinds = file_kinds_of(asset)
        self.role = model_of(asset)
        self._versioned = versioned_by(asset) is not None
        self._gpu = gpu
        self._model_off = False
        if self.role is not None and gpu is None:
            raise TypeError(f"{self.asset} declares the {self.role} model: give FileBatch "
                            "its GpuResource")
        self.engine = catalog.get().engine
        self.columns = list(columns)
        self.items: list[FileItem] = []
        self.considered: list[str] = []  # every file of its kinds, skipped ones too
        self._results: dict[str, FileResult] = {}
        self._table: list[tuple] = []
        self._cells: dict[str, tuple] = {}  # key -> its preview cells
        self._names: dict[str, str] = {}  # key -> display path
        self._extra: dict[str, dict] = {}  # key -> more facts for its partition
        self._start = time.perf_counter()
        store = FileStore(self.engine)
        rows = store.get(context.partition_keys)
        self._rows = rows
        for key in context.partition_keys:
            row = rows.get(key)
            if row is None or row.kind not in self.kinds or row.status != "ok":
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

    # -- the declared model ----------------------------------------------------------
    @property
    def model_ref(self) -> str:
        """The declared model's ref (id @ fingerprint, the inventory's); raises
        `ModelNotFound` when its weights are not here."""
        if self.role is None:
            raise TypeError(f"{self.asset} declares no model")
        return self._gpu.inventory.ref(self.role)

    def model_ref_or_none(self) -> str | None:
        """The declared model's ref, or None when it is missing or turned off (`model_off`)."""
        if self.role is None or self._model_off:
            return None
        return self._gpu.inventory.ref_or_none(self.role)

    def model_missing(self) -> str | None:
        """Why the declared model cannot be used here (and how to get it), or None."""
        return None if self.role is None else self._gpu.inventory.why_missing(self.role)

    def model_off(self) -> None:
        """This run does without its (optional) model, as its config says: the results
        carry no version, so a later run with the model redoes them."""
        self._model_off = True

    def _version(self) -> str:
        """What the results are versioned by: the model's ref for a versioned asset (an
        optional model missing or off: none, so a run with it redoes them)."""
        if not self._versioned or self._model_off:
            return ""
        if spec_of(self.role).required:
            return self.model_ref
        return self.model_ref_or_none() or ""

    # -- each file -------------------------------------------------------------------
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
        """More facts for one file's own partition (a thumbnail, a model)."""
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

    def fail_all(self, error: str) -> None:
        """Every file of the batch failed for one reason (its model is missing, say)."""
        for item in self:
            self.fail(item, error)

    # -- the outcome -----------------------------------------------------------------
    def result(self, metadata: dict | None = None,
               check_results: Sequence[dg.AssetCheckResult] = ()) -> FileOutcome:
        """Record every file's result at the asset's version and build the run's outcome:
        its metadata (counts, errors, the preview, then `metadata`), its checks, and each
        file's facts. The version is only asked for when there are results, so a batch with
        nothing to do never needs the model."""
        version = self._version() if self._results else ""
        if self._results:
            record_results(self.engine, self.asset, version, self._results.values())
        failed = self.failed
        meta = run_metadata(len(self.considered), len(self.done), failed, self.elapsed,
                            self.columns, self._table)
        meta.update(metadata or {})
        facts = {}
        for key, r in self._results.items():
            row = self._rows.get(key)
            facts[key] = file_facts(r, self._names.get(key, row.primary_path if row else ""),
                                    row.kind if row else "", version,
                                    dict(zip(self.columns, self._cells.get(key, ()))),
                                    self._extra.get(key, {}))
        others = {key: no_work_facts(row.primary_path, row.kind or "", row.status,
                                     row.error, sorted(self.kinds))
                  for key in self.context.partition_keys
                  if key not in facts and (row := self._rows.get(key)) is not None}
        return FileOutcome(self.context, meta, facts, failed, check_results, others)
