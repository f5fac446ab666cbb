"""Inferred JSON designs and loaded tables in the catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from media_assets.lib.db.values import json_text

from media_assets.lib.json_docs.load import SCHEMA, LoadResult, quote_ident, rejects_table_name
from media_assets.lib.json_docs.schema import FieldSchema, SchemaDesign


def unique_table_name(engine: sa.Engine, key: str, wanted: str) -> str:
    """`wanted`, unless another file's table has it: then `wanted_<key prefix>`."""
    with engine.connect() as conn:
        owner = conn.execute(sa.text(
            "SELECT key FROM json_schemas WHERE table_name = :t AND key <> :k "
            "UNION SELECT key FROM json_tables WHERE table_name = :t AND key <> :k"),
            {"t": wanted, "k": key}).first()
    return wanted if owner is None else f"{wanted[:54].rstrip('_')}_{key[:8]}"


def store_design(engine: sa.Engine, key: str, d: SchemaDesign, llm_model: str | None,
                 llm_status: str, llm_ref: str | None = None,
                 llm_seconds: float | None = None) -> None:
    """`llm_ref`: the LLM that was asked (used or not), null when there was none."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO json_schemas (key, table_name, storage_type, reasoning, fields, "
            " columns, indexes, sample_size, record_count, llm_model, llm_status, llm_ref, "
            " llm_seconds) VALUES "
            " (:k, :t, :s, :r, CAST(:f AS jsonb), CAST(:c AS jsonb), CAST(:i AS jsonb), :n, "
            " :rc, :lm, :ls, :lr, :lsec) ON CONFLICT (key) DO UPDATE SET table_name = EXCLUDED.table_name,"
            " storage_type = EXCLUDED.storage_type, reasoning = EXCLUDED.reasoning, "
            " fields = EXCLUDED.fields, columns = EXCLUDED.columns, indexes = EXCLUDED.indexes,"
            " sample_size = EXCLUDED.sample_size, record_count = EXCLUDED.record_count, "
            " llm_model = EXCLUDED.llm_model, llm_status = EXCLUDED.llm_status, "
            " llm_ref = EXCLUDED.llm_ref, llm_seconds = EXCLUDED.llm_seconds, "
            " inferred_at = now()"),
            {"k": key, "t": d.table_name, "s": d.storage_type, "r": d.reasoning,
             "f": json_text({f.name: f.description for f in d.fields}),
             "c": json_text([asdict(f) for f in d.fields]), "i": json_text(d.indexes),
             "n": d.sample_size, "rc": d.record_count, "lm": llm_model, "ls": llm_status,
             "lr": llm_ref, "lsec": llm_seconds})


def load_design(engine: sa.Engine, key: str) -> SchemaDesign | None:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM json_schemas WHERE key = :k"),
                           {"k": key}).mappings().first()
    if row is None:
        return None
    return SchemaDesign(row["table_name"], row["storage_type"], row["reasoning"],
                        [FieldSchema(**c) for c in row["columns"]], row["indexes"],
                        row["sample_size"], row["record_count"])


def record_load(engine: sa.Engine, key: str, r: LoadResult) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM json_tables WHERE key = :k OR table_name = :t"),
                     {"k": key, "t": r.table})
        conn.execute(sa.text(
            "INSERT INTO json_tables (key, table_name, row_count, reject_count, input_count, "
            " rejects_table) VALUES (:k, :t, :n, :r, :i, :rt)"),
            {"k": key, "t": r.table, "n": r.row_count, "r": r.reject_count, "i": r.input_count,
             "rt": rejects_table_name(r.table)})


def json_overview(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT f.primary_path AS path, s.table_name, s.storage_type, s.reasoning, "
            "       s.llm_status, t.row_count, t.reject_count, t.input_count "
            "FROM json_schemas s JOIN media_files f USING (key) "
            "LEFT JOIN json_tables t USING (key) ORDER BY s.table_name"))]


def rejected_records(engine: sa.Engine, paths: Sequence[str]) -> list[dict]:
    """The loaded tables, of files at `paths`, that rejected records: path, table, rows,
    rejects, records read, and the table holding each rejected record with its reason."""
    from media_assets.lib.files.store import display_path  # as paths are stored

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT DISTINCT p.path, t.table_name, t.row_count, t.reject_count, t.input_count "
            "FROM json_tables t JOIN media_paths p USING (key) "
            "WHERE t.reject_count > 0 AND p.path = ANY(:p) ORDER BY t.table_name, p.path"),
            {"p": [display_path(p) for p in paths]}).all()
    return [{"path": r.path, **_table_facts(r)} for r in rows]


def _table_facts(r) -> dict:
    """A `json_tables` row as `ingest`, `where` and their --json say it."""
    return {"table": f"{SCHEMA}.{r.table_name}", "rows": r.row_count,
            "rejected": r.reject_count, "records": r.input_count,
            "rejects_table": f"{SCHEMA}.{rejects_table_name(r.table_name)}"
            if r.reject_count else None}


def table_of(engine: sa.Engine, key: str) -> dict | None:
    """Where a JSON file's records went: its table (schema-qualified), storage, rows,
    rejects and records read, and the rejects' table; None before `json_tables` ran."""
    with engine.connect() as conn:
        r = conn.execute(sa.text(
            "SELECT t.table_name, t.row_count, t.reject_count, t.input_count, s.storage_type "
            "FROM json_tables t LEFT JOIN json_schemas s USING (key) WHERE t.key = :k"),
            {"k": key}).first()
    return None if r is None else {**_table_facts(r), "storage": r.storage_type}


def load_mismatches(engine: sa.Engine, keys: Sequence[str]) -> list[str]:
    """Keys whose table does not hold the input minus its rejects."""
    out = []
    with engine.connect() as conn:
        for key, table, rows, rejects, inputs in conn.execute(sa.text(
                "SELECT key, table_name, row_count, reject_count, input_count FROM json_tables "
                "WHERE key = ANY(:k)"), {"k": list(keys)}):
            held = conn.execute(sa.text(
                f"SELECT count(*) FROM {SCHEMA}.{quote_ident(table)}")).scalar()
            if held != rows or rows + rejects != inputs:
                out.append(key)
    return out
