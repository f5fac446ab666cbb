"""Better names and descriptions for an inferred schema, from a local LLM (Phi-3.5,
SmolLM2, ...).

The heuristics decide types and storage; the LLM only proposes a table name, field
descriptions and a sentence of reasoning. It answers under a JSON schema (`answer_schema`):
the table name matches a safe identifier pattern, the field names are exactly the inferred
ones (each described once, in order), texts are bounded; generation is constrained to it
token by token, so the answer is valid by construction. It is still parsed and validated
(the second line, and the only one where the constraint cannot be applied). When anything
is off, the heuristic design stands and the reason is recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from media_assets.lib.json_docs.schema import SchemaDesign
from media_assets.lib.models.text import Generated, generate, json_object

SAMPLE_DOCS = 3
MAX_DOC_CHARS = 400
MAX_DESCRIPTION = 300
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,54}$")
# What the LLM is asked to write: a name of 1-4 snake_case words (at most 54 characters,
# so `_TABLE` and PostgreSQL's 63 bytes hold with room for suffixes), at most DESCRIBED
# fields (the rest keep the heuristic's empty description), texts of bounded words.
TABLE_PATTERN = r"^[a-z]{3,15}(_[a-z]{2,12}){0,2}$"
DESCRIBED = 12
MAX_TEXT = 8 * 16  # the longest description the pattern allows
# A description is words, not a value copied from the sample ("Jane Roe", "A-1001"): a
# capital, then lowercase words without digits. The table name comes first: asked for the
# reasoning first, SmolLM2-135M copied the example's sentence and then named the table
# after the example ("books_and_order"); measured, README "JSON to tables".
DESCRIPTION_PATTERN = r"^[A-Z][a-z]{0,14}( [a-z]{1,15}){1,7}$"
REASONING_PATTERN = r"^[A-Z][a-z]{0,14}( [a-z]{1,15}){2,14}\.$"
# One worked example, as a previous turn: small models follow an example far better than
# a description of the format. Books are in no bench set (bench/bench_llm.py).
EXAMPLE_DOCS = [{"isbn": "978-0141439518", "title": "Pride and Prejudice",
                 "author": "Jane Austen", "pages": 432}]
EXAMPLE_ANSWER = {"table_name": "books", "fields": {
    "isbn": "ISBN of the book", "title": "Title of the book", "author": "Name of the author",
    "pages": "Number of pages"}, "reasoning": "Each record is a book in a library catalogue."}


# Names that say nothing about what a record is: what exporters, browsers and tools call
# their files. Only then does the LLM's table name replace the file's: a name the user gave
# ("recipes.json", "invoices_2024.json") is theirs and the strongest signal there is
# (SmolLM2-135M renamed `reviews` to `curry_urn`, README "JSON to tables"); the LLM still
# describes the fields and the records.
GENERIC_NAMES = frozenset({
    "archive", "backup", "copy", "data", "dataset", "document", "documents", "download",
    "downloads", "dump", "export", "exports", "file", "files", "items", "json", "list",
    "new", "out", "output", "records", "response", "result", "results", "sample", "table",
    "test", "untitled"})


def says_nothing(name: str) -> bool:
    """Whether a table name from a file name says nothing of its records: only generic
    words, numbers (dates, counters) and one- or two-letter scraps."""
    return all(w in GENERIC_NAMES or w.isdigit() or len(w) < 3 for w in name.split("_") if w)


def _clip(doc, limit: int = MAX_DOC_CHARS) -> str:
    text = json.dumps(doc, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def described(design: SchemaDesign) -> list[str]:
    """The fields the LLM describes: the first DESCRIBED, in the design's order."""
    return [f.name for f in design.fields[:DESCRIBED]]


def answer_schema(design: SchemaDesign) -> dict:
    """The JSON schema the answer is generated under (and `parse_answer` checks again)."""
    names = described(design)
    return {
        "type": "object",
        "$defs": {"text": {"type": "string", "pattern": DESCRIPTION_PATTERN}},
        "properties": {
            "table_name": {"type": "string", "pattern": TABLE_PATTERN},
            "fields": {"type": "object", "properties": {n: {"$ref": "#/$defs/text"}
                                                        for n in names},
                       "required": names, "additionalProperties": False},
            "reasoning": {"type": "string", "pattern": REASONING_PATTERN}},
        "required": ["table_name", "fields", "reasoning"], "additionalProperties": False}


def max_answer_tokens(design: SchemaDesign) -> int:
    """Enough tokens for the longest answer the schema allows (a token is at least one
    character), so a constrained answer is never cut off."""
    names = described(design)
    return 120 + sum(len(json.dumps(n)) + MAX_TEXT + 4 for n in names) + 14 * 16


def _request(docs: str, names: list[str], comment: str | None = None) -> str:
    return (f"Sample records:\n{docs}\n"
            + (f"The user says about this data: {comment[:1000]}\n" if comment else "")
            + f"Fields: {', '.join(names)}\n"
            "Answer with JSON: table_name (a short plural snake_case noun for what one record "
            "is), fields (a short description of each field), reasoning (one sentence on what "
            "one record is).")


def build_prompt(design: SchemaDesign, records: list, comment: str | None) -> list[dict]:
    docs = "\n".join(_clip(r) for r in records[:SAMPLE_DOCS])
    example = "\n".join(_clip(r) for r in EXAMPLE_DOCS)
    return [{"role": "system", "content": "You name database tables. You answer with one "
                                          "JSON object."},
            {"role": "user", "content": _request(example, list(EXAMPLE_DOCS[0]))},
            {"role": "assistant", "content": json.dumps(EXAMPLE_ANSWER)},
            {"role": "user", "content": _request(docs, described(design), comment)}]


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


def ask_llm(bundle, messages: list[dict], max_new_tokens: int = 400,
            schema: dict | None = None) -> Generated:
    return generate(bundle, messages, max_new_tokens, json_schema=schema)


def improve(bundle, design: SchemaDesign, records: list, comment: str | None,
            constrained: bool = True) -> tuple[SchemaDesign, str]:
    """The LLM's names and descriptions on `design` when its answer passes validation:
    (design, "used"); otherwise (the heuristic design, "not used: <why>"). Never raises.
    `constrained=False` asks without the schema constraint (the bench compares both)."""
    if not records:
        return design, "not used: no records"
    try:
        answer = ask_llm(bundle, build_prompt(design, records, comment),
                         max_answer_tokens(design), answer_schema(design) if constrained
                         else None)
        improved, status = parse_answer(answer.text, design)
        if improved is not None and answer.constraint.startswith("unconstrained"):
            status = f"used ({answer.constraint})"[:300]
        if improved is not None and not says_nothing(design.table_name):
            status += (f"; the file's own name kept as the table's (the LLM proposed "
                       f"{improved.table_name})")
            improved = replace(improved, table_name=design.table_name)
    except Exception as exc:  # generation failed (OOM, a broken tokenizer): heuristics stand
        improved, status = None, f"{type(exc).__name__}: {exc}"[:500]
    return (improved, status) if improved is not None else (design, f"not used: {status}")
