"""JSON assets: an inferred schema and storage design per file, and the table it describes."""

import contextlib
import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.files import media_file
from media_assets.defs.file_metadata import FileOutcome, markdown_table
from media_assets.defs.per_file import (FileBatch, blocking_check, check_result,
                                        per_file_asset)
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.files.inbox import COMMENT_SUFFIX
from media_assets.lib.json_docs.llm import improve
from media_assets.lib.json_docs.load import iter_records, load_table, sample_records
from media_assets.lib.json_docs.schema import infer_schema
from media_assets.lib.json_docs.store import (load_design, load_mismatches, record_load,
                                              store_design, unique_table_name)
from media_assets.lib.models.roles import Role

JSON_GROUP = "json"


class JsonSchemaConfig(dg.Config):
    """Inference settings; editable in the launchpad."""

    sample_size: int = Field(default=2000, description="Records sampled per file.")
    use_llm: bool = Field(default=True, description="Ask Phi-3.5 for names and descriptions.")


def _design_markdown(name: str, design) -> str:
    return (f"### {name} → `json_data.{design.table_name}` ({design.storage_type})\n"
            f"{design.reasoning}\n\n" + markdown_table(
                ["field", "type", "column", "description"],
                [(f.name[:40], f.type, "yes" if f.column else "jsonb", f.description[:100])
                 for f in design.fields], limit=30))


def _comment(path: Path) -> str | None:
    """The user's note on a file, from its `<file>.comment` sidecar."""
    sidecar = path.with_name(path.name + COMMENT_SUFFIX)
    return sidecar.read_text(errors="replace") if sidecar.is_file() else None


@per_file_asset(group_name=JSON_GROUP, file_kinds=("json",), deps=[media_file],
                model=Role.LLM, versioned=True, kinds={"postgres"})
def json_schemas(context: dg.AssetExecutionContext, config: JsonSchemaConfig,
                 catalog: CatalogResource, gpu: GpuResource) -> FileOutcome:
    """For each JSON/NDJSON file: field types (unions, nullability, enums, formats, maps),
    a storage design (sql, jsonb or hybrid) with its reasoning, and suggested indexes, from a
    sample of records. Phi-3.5, loaded on demand, improves names and descriptions from 5
    sample documents and the optional `<file>.comment` sidecar; its answer is generated under
    a JSON schema (valid by construction), validated again, and the heuristics stand when it
    fails. Each design records the LLM asked (id @ fingerprint): when an LLM is here,
    designs made without it or by another are made again (the resume plan's version)."""
    batch = FileBatch(context, catalog, gpu, columns=["table", "storage", "llm"])
    if not config.use_llm:
        batch.model_off()
    previews, statuses = [], {}
    with contextlib.ExitStack() as stack:
        llm, why_not = gpu.open_optional(stack, Role.LLM, config.use_llm and len(batch) > 0)
        # The LLM tried, loaded or not (too big, broken): its designs are not redone for it.
        ref = batch.model_ref_or_none()
        llm_seconds: list[float] = []
        for item in batch:
            with batch.each(item):
                path = Path(item.path)
                records = sample_records(path, item.row.details, config.sample_size)
                design = infer_schema(records, path.name.split(".")[0], config.sample_size,
                                      total=item.row.details.get("records", len(records)))
                started = time.perf_counter()
                design, status = (improve(llm, design, records, _comment(path)) if llm
                                  else (design, why_not))
                seconds = time.perf_counter() - started if llm else None
                if seconds is not None:
                    llm_seconds.append(seconds)
                design.table_name = unique_table_name(batch.engine, item.key, design.table_name)
                store_design(batch.engine, item.key, design,
                             gpu.manager.spec(Role.LLM).model_id if status == "used" else None,
                             status, ref, seconds)
                statuses[path.name] = status
                previews.append(_design_markdown(path.name, design))
                batch.ok(item, f"json_data.{design.table_name}", design.storage_type,
                         status[:80])
    # The model, device, load time and peak memory, when the LLM was loaded for this batch.
    # What the LLM cost: seconds per design, beside its load time and memory.
    cost = ({"llm_seconds_total": dg.MetadataValue.float(round(sum(llm_seconds), 2)),
             "llm_seconds_per_design": dg.MetadataValue.float(
                 round(sum(llm_seconds) / len(llm_seconds), 2)),
             "llm_ref": ref or ""} if llm_seconds else {})
    return batch.result({**(gpu.report(Role.LLM) if llm is not None else {}), **cost,
                         "llm": dg.MetadataValue.json(statuses),
                         "designs": dg.MetadataValue.md("\n\n".join(previews[:10])
                                                        or "no JSON in this batch")})


def _column_schema(design) -> dg.TableSchema:
    """The loaded table's columns, as the UI shows them."""
    cols = [dg.TableColumn("_row", "bigint", description="record number in the file")]
    if design.storage_type == "jsonb":
        return dg.TableSchema(columns=cols + [
            dg.TableColumn("_doc", "jsonb", description="the whole record")])
    cols += [dg.TableColumn(f.name, f.pg_type, description=f.description)
             for f in design.fields if f.column]
    if design.storage_type == "hybrid":
        cols.append(dg.TableColumn("_extra", "jsonb", description="the other fields"))
    return dg.TableSchema(columns=cols)


ROWS_CHECK = "rows_match_input"


@per_file_asset(group_name=JSON_GROUP, file_kinds=("json",), deps=[json_schemas],
                kinds={"postgres"},
                check_specs=[blocking_check("json_tables", ROWS_CHECK,
                                            "Each table holds its file's records minus the "
                                            "rejects, and rows + rejects = records.")])
def json_tables(context: dg.AssetExecutionContext,
                catalog: CatalogResource) -> FileOutcome:
    """Each JSON file loaded into `json_data.<table>` as its design says, with the suggested
    indexes; records that do not fit go to `<table>__rejects` with the reason. A reload
    replaces the table atomically. Loaded rows + rejects = records in the file."""
    batch = FileBatch(context, catalog, columns=["table", "storage", "rows", "rejects"])
    results = []
    for item in batch:
        with batch.each(item):
            design = load_design(batch.engine, item.key)
            if design is None:
                raise LookupError("no design yet: json_schemas has not run for this file")
            result = load_table(batch.engine, design,
                                iter_records(Path(item.path), item.row.details))
            record_load(batch.engine, item.key, result)
            results.append((design, result))
            batch.ok(item, f"json_data.{result.table}", design.storage_type, result.row_count,
                     result.reject_count)
    metadata: dict = {
        "rows_loaded": dg.MetadataValue.int(sum(r.row_count for _, r in results)),
        "rejected": dg.MetadataValue.int(sum(r.reject_count for _, r in results)),
    }
    if len(results) == 1:  # one file: the UI shows its table's columns and row count
        design, r = results[0]
        metadata.update({"dagster/column_schema": _column_schema(design),
                         "dagster/row_count": dg.MetadataValue.int(r.row_count),
                         "dagster/table_name": f"json_data.{r.table}"})
    return batch.result(metadata, check_results=[
        check_result(ROWS_CHECK, load_mismatches(batch.engine, batch.done))])
