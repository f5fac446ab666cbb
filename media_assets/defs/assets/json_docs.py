"""JSON assets: an inferred schema and storage design per file, and the table it describes."""

import contextlib
import time
from pathlib import Path

import dagster as dg

from media_assets.defs.assets.ingest import media_file
from media_assets.defs.partitions import per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.analysis.json_llm import ask_llm, build_prompt, parse_answer
from media_assets.lib.analysis.json_load import load_table, read_records
from media_assets.lib.analysis.json_schema import infer_schema
from media_assets.lib.catalog.json_docs import (load_design, record_load, store_design,
                                                unique_table_name)
from media_assets.lib.inbox import COMMENT_SUFFIX
from media_assets.lib.models.locate import ModelNotFound, locate

JSON_GROUP = "json"


class JsonSchemaConfig(dg.Config):
    """Inference settings; editable in the launchpad."""

    sample_size: int = 2000
    use_llm: bool = True


def _design_markdown(name: str, design) -> str:
    rows = "\n".join(f"| {f.name[:40].replace('|', '/')} | {f.type} | "
                     f"{'yes' if f.column else 'jsonb'} | "
                     f"{f.description[:100].replace('|', '/')} |" for f in design.fields[:30])
    return (f"### {name} → `json_data.{design.table_name}` ({design.storage_type})\n"
            f"{design.reasoning}\n\n| field | type | column | description |\n"
            f"|---|---|---|---|\n{rows}")


def _json_files(cat, keys):
    rows = cat.files.get(keys)
    return [(k, r) for k, r in rows.items() if r.kind == "json" and r.status == "ok"]


@per_file_asset(group_name=JSON_GROUP, deps=[media_file], uses_models=True, kinds={"postgres"})
def json_schemas(context: dg.AssetExecutionContext, config: JsonSchemaConfig,
                 catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """For each JSON/NDJSON file: field types (unions, nullability, enums, formats, maps),
    a storage design (sql, jsonb or hybrid) with its reasoning, and suggested indexes, from a
    sample of records. Phi-3.5, loaded on demand, improves names and descriptions from 5
    sample documents and the optional `<file>.comment` sidecar; its JSON answer is validated
    and the heuristics stand when it fails."""
    cat = catalog.get()
    todo = _json_files(cat, context.partition_keys)
    llm_ok, llm_reason = config.use_llm, "off in config"
    if llm_ok:
        try:
            locate("llm", gpu.config().models["llm"])
        except ModelNotFound as exc:
            llm_ok, llm_reason = False, f"off: {exc}"[:300]
    previews, statuses = [], {}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        llm = None
        if llm_ok and todo:
            try:  # one load for the whole batch; on_demand: unloaded when the batch is done
                llm = stack.enter_context(gpu.manager.use("llm"))
            except Exception as exc:  # OOM, broken weights: the heuristics stand
                llm_reason = f"not used: {type(exc).__name__}: {exc}"[:500]
        llm_ran = llm is not None
        for key, row in todo:
            path = Path(cat.files.paths_of(key)[0])
            records, _ = read_records(path, row.details)
            design = infer_schema(records, path.name.split(".")[0], config.sample_size,
                                  total=len(records))
            status = llm_reason
            if llm is not None and records:
                comment_file = path.with_name(path.name + COMMENT_SUFFIX)
                comment = (comment_file.read_text(errors="replace")
                           if comment_file.is_file() else None)
                try:
                    answer = ask_llm(llm, build_prompt(design, records, comment))
                    improved, status = parse_answer(answer, design)
                except Exception as exc:
                    improved, status = None, f"{type(exc).__name__}: {exc}"[:500]
                if improved is not None:
                    design = improved
                else:
                    status = f"not used: {status}"
            design.table_name = unique_table_name(cat.engine, key, design.table_name)
            store_design(cat.engine, key, design,
                         gpu.manager.spec("llm").model_id if status == "used" else None, status)
            statuses[path.name] = status
            previews.append(_design_markdown(path.name, design))
    # The model, device, load time and peak memory, when the LLM was loaded for this batch.
    llm_meta = gpu.report("llm") if llm_ran else {}
    return dg.MaterializeResult(metadata={
        **llm_meta,
        "files": dg.MetadataValue.int(len(todo)),
        "llm": dg.MetadataValue.json(statuses),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - start, 3)),
        "preview": dg.MetadataValue.md("\n\n".join(previews[:10]) or "no JSON in this batch"),
    })


@per_file_asset(group_name=JSON_GROUP, deps=[json_schemas], kinds={"postgres"})
def json_tables(context: dg.AssetExecutionContext,
                catalog: CatalogResource) -> dg.MaterializeResult:
    """Each JSON file loaded into `json_data.<table>` as its design says, with the suggested
    indexes; records that do not fit go to `<table>__rejects` with the reason. A reload
    replaces the table atomically. Loaded rows + rejects = records in the file."""
    cat = catalog.get()
    results, metadata = [], {}
    for key, row in _json_files(cat, context.partition_keys):
        design = load_design(cat.engine, key)
        if design is None:
            continue
        records, pre_rejects = read_records(Path(cat.files.paths_of(key)[0]), row.details)
        result = load_table(cat.engine, design, records, pre_rejects)
        record_load(cat.engine, key, result)
        results.append((design, result))
    lines = ["| table | storage | rows | rejects |", "|---|---|---|---|"]
    lines += [f"| json_data.{r.table} | {d.storage_type} | {r.row_count} | {r.reject_count} |"
              for d, r in results]
    metadata["tables"] = dg.MetadataValue.md("\n".join(lines))
    metadata["rows_loaded"] = dg.MetadataValue.int(sum(r.row_count for _, r in results))
    metadata["rejected"] = dg.MetadataValue.int(sum(r.reject_count for _, r in results))
    if len(results) == 1:  # one file: the UI shows its table's columns and row count
        design, r = results[0]
        cols = [dg.TableColumn("_row", "bigint", description="record number in the file")]
        if design.storage_type == "jsonb":
            cols.append(dg.TableColumn("_doc", "jsonb", description="the whole record"))
        else:
            cols += [dg.TableColumn(f.name, f.pg_type, description=f.description)
                     for f in design.fields if f.column]
            if design.storage_type == "hybrid":
                cols.append(dg.TableColumn("_extra", "jsonb", description="the other fields"))
        metadata["dagster/column_schema"] = dg.TableSchema(columns=cols)
        metadata["dagster/row_count"] = dg.MetadataValue.int(r.row_count)
        metadata["dagster/table_name"] = f"json_data.{r.table}"
    return dg.MaterializeResult(metadata=metadata)
