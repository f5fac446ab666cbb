"""Better names and descriptions for an inferred schema, from a local LLM (Phi-3.5).

The heuristics decide types and storage; the LLM only proposes a table name, field
descriptions and a sentence of reasoning. Its answer is parsed as JSON and validated: the
table name must be a safe identifier, described fields must exist, texts are bounded. When
anything is off, the heuristic design stands and the reason is recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from media_assets.lib.json_docs.schema import SchemaDesign
from media_assets.lib.models.text import generate, json_object

SAMPLE_DOCS = 5
MAX_DOC_CHARS = 600
MAX_DESCRIPTION = 300
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,54}$")


def _clip(doc, limit: int = MAX_DOC_CHARS) -> str:
    text = json.dumps(doc, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def build_prompt(design: SchemaDesign, records: list, comment: str | None) -> list[dict]:
    fields = "\n".join(f"- {f.name}: {f.type}" + (f" one of {f.enum[:8]}" if f.enum else "")
                       for f in design.fields[:60])
    docs = "\n".join(_clip(r) for r in records[:SAMPLE_DOCS])
    user = (
        "You design PostgreSQL tables for JSON data. Here are sample documents:\n"
        f"{docs}\n\nInferred fields:\n{fields}\n\n"
        + (f"The user says about this data: {comment[:1000]}\n\n" if comment else "")
        + "Answer with JSON only, no prose, in this form:\n"
        '{"table_name": "snake_case_name", "reasoning": "one sentence on what the data is",'
        ' "fields": {"<field name>": "<one-sentence description>"}}')
    return [{"role": "system", "content": "You answer with a single JSON object."},
            {"role": "user", "content": user}]


def parse_answer(text: str, design: SchemaDesign) -> tuple[SchemaDesign | None, str]:
    """(improved design or None, status). Never raises on bad model output."""
    answer, why = json_object(text)
    if answer is None:
        return None, why
    name = answer.get("table_name")
    if not isinstance(name, str) or not _TABLE.match(name) or "__" in name:
        return None, f"unsafe or missing table_name {str(name)[:60]!r}"
    descriptions = answer.get("fields")
    if not isinstance(descriptions, dict):
        return None, "fields is not an object"
    known = {f.name for f in design.fields}
    unknown = [k for k in descriptions if k not in known]
    if unknown:
        return None, f"describes fields that do not exist: {unknown[:5]}"
    fields = []
    for f in design.fields:
        d = descriptions.get(f.name)
        if isinstance(d, str) and d.strip():
            f = replace(f, description=d.strip()[:MAX_DESCRIPTION])
        fields.append(f)
    reasoning = answer.get("reasoning")
    why = design.reasoning
    if isinstance(reasoning, str) and reasoning.strip():
        why = reasoning.strip()[:MAX_DESCRIPTION] + " Storage: " + design.reasoning
    return replace(design, table_name=name, fields=fields, reasoning=why), "used"


def ask_llm(bundle, messages: list[dict], max_new_tokens: int = 400) -> str:
    return generate(bundle, messages, max_new_tokens).text


def improve(bundle, design: SchemaDesign, records: list,
            comment: str | None) -> tuple[SchemaDesign, str]:
    """The LLM's names and descriptions on `design` when its answer passes validation:
    (design, "used"); otherwise (the heuristic design, "not used: <why>"). Never raises."""
    if not records:
        return design, "not used: no records"
    try:
        improved, status = parse_answer(ask_llm(bundle, build_prompt(design, records, comment)),
                                        design)
    except Exception as exc:  # generation failed (OOM, a broken tokenizer): heuristics stand
        improved, status = None, f"{type(exc).__name__}: {exc}"[:500]
    return (improved, status) if improved is not None else (design, f"not used: {status}")
