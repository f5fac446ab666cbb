"""A cluster's place in a hierarchy, its folder, 10-20 tags, relationships and a search
description (the enrich-cluster contract).

The LLM (Phi-3.5, SmolLM2, ...) is asked for one JSON object under `answer_schema`: a
category out of the heuristic's (so both file into the same tree: Personal › Pets, Places ›
Nature, ...), 1-3 sub-folders below it (3-5 levels in all), 10-20 tags, a bounded
description. Generation is constrained to that schema token by token, so the answer is
valid by construction; it is validated all the same: a hierarchy of 2-6 short parts, 10-20
tags (a few short of 10, duplicates say, are made up from the label's own tags, a repair),
a bounded description; the folder path is rebuilt from safe parts whatever the LLM wrote.
An invalid free answer (no constraint possible) gets one retry with the reason; then, or
without an LLM, a deterministic heuristic from the label's category, name and tags takes
its place, and the row says so.
`similar_to` comes from centroid similarity and `parent` from the hierarchy, never from
the LLM.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import asdict, dataclass

from media_assets.lib.models.text import choose, generate, json_object

MIN_TAGS, MAX_TAGS = 10, 20
MAX_PART = 40  # characters per hierarchy level / folder name
MAX_DEPTH = 6
MAX_FOLDER = 200
MAX_DESCRIPTION = 500
# category -> (top level, branch) for the heuristic hierarchy.
TREE = {
    "people": ("Personal", "People"), "pets": ("Personal", "Pets"),
    "animals": ("Nature", "Animals"), "food": ("Personal", "Food"),
    "nature": ("Places", "Nature"), "city": ("Places", "Cities"),
    "home": ("Personal", "Home"), "documents": ("Work", "Documents"),
    "vehicles": ("Things", "Vehicles"), "events": ("Personal", "Events"),
    "sports": ("Personal", "Sports"), "art": ("Creative", "Art"),
    "travel": ("Places", "Travel"), "objects": ("Things", "Objects"),
}
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


@dataclass
class LabelView:
    """What enrichment starts from: a cluster's label, as stored or as sent to the API."""
    cluster_name: str
    description: str
    tags: list[str]
    primary_category: str = "objects"
    captions: tuple[str, ...] = ()
    clip_terms: tuple[str, ...] = ()


@dataclass
class Enrichment:
    hierarchy: list[str]
    folder_path: str
    extended_tags: list[str]
    relationships: dict
    search_description: str
    source: str  # "llm" or "heuristic"
    source_reason: str | None = None
    model_id: str | None = None
    llm_ref: str | None = None  # the LLM asked (used or not); None: there was none
    llm_seconds: float | None = None  # what asking it cost

    def contract(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in ("hierarchy", "folder_path", "extended_tags",
                                  "relationships", "search_description")} | {
            "source": self.source, "source_reason": self.source_reason}


def safe_part(text: str) -> str:
    """One folder name: no separators, control or reserved characters, no leading dots,
    bounded; NFC so the same name is the same folder."""
    text = unicodedata.normalize("NFC", str(text))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").strip()
    return text[:MAX_PART].strip()


def sanitize_folder_path(path: str, fallback: list[str] | None = None) -> str:
    """A relative folder path that cannot leave its destination: split on both slashes,
    `.` and `..` and empty parts dropped, each part made safe, at most 6 levels and 200
    characters. Empty: the fallback's parts, else "Unsorted"."""
    parts = [safe_part(p) for p in re.split(r"[/\\]+", str(path or ""))
             if p.strip() not in ("", ".", "..")]
    parts = [p for p in parts if p and p not in (".", "..")][:MAX_DEPTH]
    out = "/".join(parts)
    while len(out) > MAX_FOLDER and parts:
        parts.pop()
        out = "/".join(parts)
    if not out:
        return sanitize_folder_path("/".join(fallback)) if fallback else "Unsorted"
    return out


def _tags(values, extra=()) -> list[str]:
    out: list[str] = []
    for v in [*values, *extra]:
        if not isinstance(v, str):
            continue
        t = re.sub(r"\s+", " ", "".join(ch for ch in v if ch.isprintable())).strip().lower()[:40]
        if t and t not in out:
            out.append(t)
    return out[:MAX_TAGS]


def heuristic(label: LabelView) -> tuple[list[str], list[str], str]:
    """(hierarchy, extended tags, search description) from the label alone."""
    root, branch = TREE.get(label.primary_category, ("Things", "Other"))
    name = safe_part(label.cluster_name) or "Unnamed"
    hierarchy = [root, branch] + ([name] if name.lower() != branch.lower() else [])
    tags = _tags(label.tags, [label.primary_category, *(h.lower() for h in hierarchy),
                              *label.clip_terms, *(w for c in label.captions for w in
                                                   re.findall(r"[a-z]{4,}", c.lower()))])
    description = (f"{label.cluster_name}: {label.description} "
                   f"Filed under {' › '.join(hierarchy)}. Tags: {', '.join(tags)}.")
    return hierarchy, tags, description[:MAX_DESCRIPTION]


# What the LLM writes, as patterns: folder names in Title Case words, tags of 1-3
# lowercase words, a description that is a sentence. Words, not copied punctuation; each
# word bounded, so the answer's length is bounded.
FOLDER_PATTERN = r"^[A-Z][a-z]{1,14}( [A-Za-z][a-z]{0,14}){0,3}$"
TAG_PATTERN = r"^[a-z]{2,15}( [a-z]{1,15}){0,2}$"
DESCRIPTION_PATTERN = r"^[A-Z][a-z]{0,14}( [a-z0-9,]{1,15}){4,24}\.$"


def answer_schema(category: str | None = None) -> dict:
    """The JSON schema the answer is generated under (`parse_answer` checks it again);
    with `category`, that one is the only one allowed (`choose_category` picked it)."""
    return {
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": [category] if category else sorted(TREE)},
            "subfolders": {"type": "array", "items": {"type": "string",
                                                      "pattern": FOLDER_PATTERN},
                           "minItems": 1, "maxItems": 3},
            "extended_tags": {"type": "array", "items": {"type": "string",
                                                         "pattern": TAG_PATTERN},
                              "minItems": MIN_TAGS, "maxItems": MAX_TAGS,
                              # no tag twice: not a grammar's, enforced beside it
                              "uniqueItems": True},
            "search_description": {"type": "string", "pattern": DESCRIPTION_PATTERN}},
        "required": ["category", "subfolders", "extended_tags", "search_description"],
        "additionalProperties": False}


# The longest answer the schema allows, in characters (a token is at least one): a
# constrained answer is never cut off by the token limit.
MAX_ANSWER_TOKENS = 100 + 3 * (4 * 16 + 4) + MAX_TAGS * (3 * 16 + 4) + 25 * 16


def build_prompt(label: LabelView) -> list[dict]:
    captions = "\n".join(f"- {c[:200]}" for c in list(label.captions)[:5])
    known = label.primary_category if label.primary_category != "objects" else None
    user = (
        "You organise a personal photo library. A group of similar photos:\n"
        f"Name: {label.cluster_name}\nDescription: {label.description}\n"
        + (f"Tags: {', '.join(label.tags)}\n" if label.tags else "")
        + (f"Category guess: {known}\n" if known else "")
        + (f"Sample captions:\n{captions}\n" if captions else "")
        + "Answer with JSON: category (one of " + ", ".join(sorted(TREE)) + "), subfolders "
        "(1 to 3 folder names below the category, general to specific, ending with the "
        "group's own name), extended_tags (10 to 20 lowercase search words about these "
        "photos), search_description (one sentence).")
    return [{"role": "system", "content": "You sort photos into folders. You answer with "
                                          "one JSON object."},
            {"role": "user", "content": user}]


# The answer starts with its category (the schema's properties are generated in name order).
CATEGORY_PREFIX = '{"category": "'


def choose_category(llm, label: LabelView) -> str:
    """The category the LLM finds likeliest for this label, each option scored whole
    (`text.choose`) and calibrated: minus its score for a label that says nothing, so a
    category the prompt's wording favours by itself does not win every time (contextual
    calibration, Zhao et al. 2021). SmolLM2-135M chose "animals" for 19 of the bench's
    20 labels by greedy decoding under the enum, receipts and wedding included; with this,
    9 of 20 land in a right category (README "Clusters")."""
    options = sorted(TREE)
    neutral = getattr(llm, "_neutral_category_scores", None)
    if neutral is None:  # the same for every label: once per loaded model
        nothing = LabelView("N/A", "N/A", [], "objects")
        neutral = choose(llm, build_prompt(nothing), CATEGORY_PREFIX, options)[1]
        llm._neutral_category_scores = neutral
    scores = choose(llm, build_prompt(label), CATEGORY_PREFIX, options)[1]
    return max(options, key=lambda o: scores[o] - neutral[o])


def _hierarchy_of(answer: dict):
    """The answer's hierarchy: the schema's category (as the heuristic's root and branch)
    and sub-folders, or a plain `hierarchy` list (unconstrained answers may give one)."""
    if "hierarchy" in answer or "category" not in answer:
        return answer.get("hierarchy")
    category, subs = answer.get("category"), answer.get("subfolders")
    if category not in TREE or not isinstance(subs, list):
        return None
    root, branch = TREE[category]
    out = [root, branch]
    for s in subs:
        if isinstance(s, str) and s.strip().lower() not in {p.lower() for p in out}:
            out.append(s)
    return out


def parse_answer(text: str, label: LabelView) -> tuple[tuple | None, str]:
    """((hierarchy, folder_path, tags, description), "ok" or what was repaired), or (None,
    why it is invalid). Never raises on model output."""
    answer, why = json_object(text)
    if answer is None:
        return None, why
    hierarchy = _hierarchy_of(answer)
    if (not isinstance(hierarchy, list) or not 2 <= len(hierarchy) <= MAX_DEPTH
            or not all(isinstance(h, str) and h.strip() for h in hierarchy)):
        return None, "hierarchy must be a list of 2-6 non-empty strings"
    parts = [safe_part(h) for h in hierarchy]
    if not all(parts):
        return None, "hierarchy has a part with nothing printable in it"
    tags = answer.get("extended_tags")
    if not isinstance(tags, list):
        return None, "extended_tags must be a list of strings"
    tags = _tags(tags)
    repaired = []
    if len(tags) < MIN_TAGS:
        # Small models repeat their tags: three distinct ones of their own are enough when
        # the label's words bring the rest (SmolLM2-135M gave 3-5, README "Clusters").
        if len(tags) < 3:
            return None, f"extended_tags has {len(tags)} usable tags; 10-20 are needed"
        tags = _tags(tags, [*label.tags, *(p.lower() for p in parts), *label.clip_terms,
                            *heuristic(label)[1]])
        if len(tags) < MIN_TAGS:
            return None, f"extended_tags has {len(tags)} usable tags even with the label's"
        repaired.append("tags completed from the label")
    description = answer.get("search_description")
    if not isinstance(description, str) or not description.strip():
        return None, "search_description must be a non-empty string"
    description = " ".join(description.split())[:MAX_DESCRIPTION]
    folder = sanitize_folder_path(answer.get("folder_path") or "/".join(parts), parts)
    if "folder_path" in answer and folder != answer.get("folder_path"):
        repaired.append("folder path made safe")
    return (parts, folder, tags, description), ("ok" if not repaired else
                                                 "repaired: " + "; ".join(repaired))


def enrich(llm, label: LabelView, similar: list[dict], model_id: str | None = None,
           why_no_llm: str = "no LLM", constrained: bool = True,
           llm_ref: str | None = None) -> Enrichment:
    """The LLM's hierarchy when it passes validation (one retry), else the heuristic's.
    `constrained=False` asks without the schema constraint (the bench compares both).
    `llm_ref` names the weights asked, stored so another LLM redoes the hierarchy."""
    parsed, status = None, why_no_llm
    started = time.perf_counter()
    if llm is not None:
        messages = build_prompt(label)
        schema = None
        if constrained:
            try:
                schema = answer_schema(choose_category(llm, label))
            except Exception:  # a model without a usable cache: the enum's greedy choice
                schema = answer_schema()
        # A constrained answer is well-formed; what validation can still refuse (too few
        # distinct tags) a greedy retry rarely mends, so only a free answer is retried.
        attempts = 1 if constrained else 2
        for attempt in range(attempts):
            try:
                answer = generate(llm, messages, max_new_tokens=MAX_ANSWER_TOKENS,
                                  json_schema=schema).text
            except Exception as exc:  # OOM, a broken tokenizer: the heuristic stands
                status = f"generation failed: {type(exc).__name__}: {exc}"[:300]
                break
            parsed, status = parse_answer(answer, label)
            if parsed is not None:
                break
            messages = messages + [
                {"role": "assistant", "content": answer[:2000]},
                {"role": "user", "content": f"That answer is invalid: {status}. Answer again "
                                            "with the JSON object only."}]
        if parsed is None and not status.startswith("generation failed"):
            status = f"LLM answer invalid{' twice' if attempts == 2 else ''}: {status}"
    if parsed is not None:
        hierarchy, folder, tags, description = parsed
        source, reason, model = "llm", None if status == "ok" else status, model_id
    else:
        hierarchy, tags, description = heuristic(label)
        folder = sanitize_folder_path("/".join(hierarchy))
        source, reason, model = "heuristic", status, None
    relationships = {"parent": hierarchy[-2] if len(hierarchy) > 1 else None,
                     "similar_to": similar}
    asked = llm is not None
    return Enrichment(hierarchy, folder, tags, relationships, description, source, reason,
                      model, (llm_ref or model_id) if asked else None,
                      round(time.perf_counter() - started, 3) if asked else None)
