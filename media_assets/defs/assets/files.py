"""The `media_file` asset: what each file is, recorded in the catalog."""

import time
from collections import Counter

import dagster as dg

from media_assets.defs.file_metadata import FileOutcome, markdown_table, report_not_for_them
from media_assets.defs.per_file import FILE_KINDS, per_file_asset
from media_assets.defs.resources import CatalogResource, InboxResource
from media_assets.lib.files.record import Outcome, describe, probe_and_record
from media_assets.lib.files.store import FileStore, display_path

INGEST_GROUP = "ingest"


def _preview(outcomes: list[Outcome]) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(
        ["file", "kind", "status", "details"],
        [(display_path(o.path or o.key).rsplit("/", 1)[-1], o.kind, o.status,
          o.error if o.status != "ok" else describe(o)) for o in outcomes]))


@per_file_asset(
    group_name=INGEST_GROUP,
    file_kinds=(),  # every file: this asset decides the kind
    kinds={"postgres"},
    check_specs=[dg.AssetCheckSpec("every_file_has_a_verdict", asset="media_file",
                                   description="Each file of the run is ok, failed, refused or "
                                               "unsupported, never left pending.")],
)
def media_file(context: dg.AssetExecutionContext, catalog: CatalogResource,
               inbox: InboxResource) -> FileOutcome:
    """Detect each file's kind from its content and record size, hash, MIME type, timestamps
    and per-kind facts (image size and EXIF, media duration and streams, JSON shape, text
    encoding) in the catalog. A bad file gets its status and error; the batch goes on."""
    keys, files = context.partition_keys, FileStore(catalog.get().engine)
    start = time.perf_counter()
    outcomes = probe_and_record(files, keys, inbox.limits)
    elapsed = time.perf_counter() - start
    by_status = Counter(o.status for o in outcomes)
    stored = files.get(keys)
    pending = [k for k in keys if k not in stored or stored[k].status == "pending"]
    metadata: dict = {
        "files": dg.MetadataValue.int(len(outcomes)),
        "ok": dg.MetadataValue.int(by_status.get("ok", 0)),
        "failed": dg.MetadataValue.int(len(outcomes) - by_status.get("ok", 0)),
        "by_kind": dg.MetadataValue.json(dict(Counter(o.kind for o in outcomes))),
        "by_status": dg.MetadataValue.json(dict(by_status)),
        "seconds": dg.MetadataValue.float(round(elapsed, 3)), "preview": _preview(outcomes)}
    if len(outcomes) == 1:  # a single-file run: show that file's facts directly
        o = outcomes[0]
        metadata.update(path=dg.MetadataValue.path(display_path(o.path or "")), kind=o.kind, status=o.status,
                        mime_type=o.mime_type or "", details=dg.MetadataValue.json(o.details),
                        **({"error": o.error} if o.error else {}))
    context.log.info(f"probed {len(outcomes)} files in {elapsed:.2f} s: {dict(by_status)}")
    # The assets this run left out that have no work for a file: not Missing for it.
    metadata["no_work_elsewhere"] = dg.MetadataValue.int(report_not_for_them(
        context, [(o.key, display_path(o.path or ""), o.kind, o.status, o.error)
                  for o in outcomes], FILE_KINDS))
    # Each file's own facts and verdict on its own partition (defs/file_metadata.py says
    # why). This asset decides every file's verdict at once, so it builds its own outcome.
    return FileOutcome(context, metadata, {o.key: {
        "path": display_path(o.path or ""), "kind": o.kind, "status": o.status,
        "mime_type": o.mime_type or "", "details": dg.MetadataValue.json(o.details),
        **({"error": o.error} if o.error else {})} for o in outcomes},
        {o.key: o.error or o.status for o in outcomes if o.status != "ok"},
        check_results=[dg.AssetCheckResult(
            check_name="every_file_has_a_verdict", passed=not pending,
            metadata={"pending": dg.MetadataValue.json(pending[:20])})])
