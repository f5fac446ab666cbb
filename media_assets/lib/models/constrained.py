"""Generation constrained to a JSON schema: each token the LLM may pick keeps the answer a
valid prefix of a document of that schema, so a finished answer is valid by construction.

xgrammar does the work (chosen by measurement, README "JSON to tables"): of the four
libraries on the package index it is the one that runs with transformers 5 here;
lm-format-enforcer 0.11.3 and transformers-cfg 0.2.7 fail to import or to read
transformers 5's tokenizers, and outlines 1.3.3 brings eight packages and was ~5x slower
per token in the same test. The schema is compiled once per tokenizer and schema text (a
string with `maxLength` costs a few seconds to compile; a `$ref` to one shared definition
compiles it once for every property that uses it).

A grammar cannot say "no item twice" (`uniqueItems`), and small models repeat a tag until
the array is full (SmolLM2-135M: "cats", "cats", ...). `DistinctItems` does it beside the
grammar: inside an array of strings marked `uniqueItems`, a token that would close the
current string on the text of an earlier item is masked, unless nothing else is left.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

_LOCK = threading.Lock()
COMPILE_THREADS = 2  # the compiler's default (8) only contends on small machines


class ConstraintUnavailable(RuntimeError):
    """xgrammar is missing or cannot read this tokenizer: answers are validated only."""


def _vocab_size(bundle) -> int:
    """The model's logits width (it may exceed the tokenizer's: padded embeddings)."""
    out = bundle.model.get_output_embeddings()
    if out is not None and hasattr(out, "weight"):
        return int(out.weight.shape[0])
    return int(bundle.model.config.get_text_config().vocab_size)


def stop_ids(bundle) -> list[int]:
    """End-of-turn tokens: the generation config's and the tokenizer's."""
    ids: set[int] = set()
    cfg = getattr(bundle.model, "generation_config", None)
    eos = getattr(cfg, "eos_token_id", None)
    ids.update([eos] if isinstance(eos, int) else list(eos or []))
    if bundle.processor.eos_token_id is not None:
        ids.add(int(bundle.processor.eos_token_id))
    return sorted(ids)


def compiler(bundle):
    """The bundle's grammar compiler, made on first use and kept with the loaded model."""
    with _LOCK:
        existing = getattr(bundle, "_grammar_compiler", None)
        if existing is not None:
            return existing
        try:
            import xgrammar as xgr
        except ImportError as exc:
            raise ConstraintUnavailable(f"xgrammar is not installed ({exc})") from None
        try:
            info = xgr.TokenizerInfo.from_huggingface(
                bundle.processor, vocab_size=_vocab_size(bundle), stop_token_ids=stop_ids(bundle))
        except Exception as exc:  # a tokenizer xgrammar cannot read
            raise ConstraintUnavailable(f"xgrammar cannot read this tokenizer: "
                                        f"{type(exc).__name__}: {exc}"[:300]) from None
        made = xgr.GrammarCompiler(info, max_threads=COMPILE_THREADS)
        bundle._grammar_compiler = made
        return made


def logits_processor(bundle, schema: dict[str, Any]):
    """A fresh transformers logits processor for one `generate` call under `schema`
    (compact JSON: no free whitespace, so no tokens are spent on it). `uniqueItems` is
    left to `DistinctItems`."""
    import xgrammar as xgr

    comp = compiler(bundle)
    try:
        grammar = comp.compile_json_schema(json.dumps(schema, sort_keys=True),
                                           any_whitespace=False, strict_mode=True)
    except Exception as exc:
        raise ConstraintUnavailable(f"schema not compiled: {type(exc).__name__}: {exc}"[:300]
                                    ) from None
    return xgr.contrib.hf.LogitsProcessor(grammar)


def unique_string_arrays(schema: dict[str, Any]) -> list[str]:
    """The top-level properties of `schema` that are arrays of distinct strings."""
    return [k for k, v in (schema.get("properties") or {}).items()
            if v.get("type") == "array" and v.get("uniqueItems")
            and (v.get("items") or {}).get("type") == "string"]


def _enders(bundle) -> tuple[dict[str, list[int]], ...]:
    """For the tokens that can end a JSON string ("closing": those holding a double quote)
    and those that can end a word ("word end": a space or a double quote), keyed by their
    text before that character, and for every token keyed by its text: which ids they are.
    The text is decoded after a plain letter, so a sentencepiece token keeps its leading
    space. Made once per loaded model (0.2 s for SmolLM2's 49k tokens)."""
    with _LOCK:
        made = getattr(bundle, "_string_enders", None)
        if made is not None:
            return made
        tok = bundle.processor
        lead = tok.encode("a", add_special_tokens=False)[:1]
        base = tok.decode(lead)
        closing: dict[str, list[int]] = {}
        word_end: dict[str, list[int]] = {}
        pieces: dict[str, list[int]] = {}
        for i in range(len(tok)):
            text = tok.decode(lead + [i])[len(base):]
            pieces.setdefault(text, []).append(i)
            if '"' in text:
                closing.setdefault(text[:text.index('"')], []).append(i)
            end = re.search(r'[ "]', text)
            if end:
                word_end.setdefault(text[:end.start()], []).append(i)
        bundle._string_enders = made = (closing, word_end, pieces)
        return made


class DistinctItems:
    """Logits processor for the arrays of distinct strings in a schema (see the module's
    docstring). It reads the answer so far, so it works after the grammar's processor:
    whatever it leaves is still valid under the schema. Three masks: a string may not
    close on an earlier item's text; its first word may not end as an earlier item's first
    word; and its first token may not be the start of an earlier first word. Without the
    last two a small model copies an earlier item letter by letter ("animals",
    "animalscience", "animalsciencef", ...) until the pattern's length runs out and only
    the duplicate is left."""

    def __init__(self, bundle, prompt_length: int, keys: list[str]):
        self.tok, self.start = bundle.processor, prompt_length
        self.closing, self.word_end, self.pieces = _enders(bundle)
        # xgrammar writes `"key": [` (its separators have a space); any spacing is read
        self.heads = [re.compile(r'"' + re.escape(k) + r'"\s*:\s*\[') for k in keys]

    def __call__(self, input_ids, scores):
        text = self.tok.decode(input_ids[0, self.start:], skip_special_tokens=True)
        for head in self.heads:
            found = list(head.finditer(text))
            inside = text[found[-1].end():] if found else "]"
            if "]" in inside or inside.count('"') % 2 == 0:
                continue  # not in this array, or between its items
            earlier = re.findall(r'"((?:[^"\\]|\\.)*)"', inside)
            partial = inside[inside.rfind('"') + 1:]
            banned = [i for e in earlier if e.startswith(partial)
                      for i in self.closing.get(e[len(partial):], ())]
            firsts = {e.split(" ")[0] for e in earlier}
            if " " not in partial:
                banned += [i for w in firsts if w.startswith(partial)
                           for i in self.word_end.get(w[len(partial):], ())]
            if not partial:
                banned += [i for w in firsts for k in range(1, len(w) + 1)
                           for i in self.pieces.get(w[:k], ())]
            if banned:
                kept = scores[0, banned].clone()
                scores[0, banned] = float("-inf")
                if not bool((scores[0] > float("-inf")).any()):  # nothing else: let it be
                    scores[0, banned] = kept
        return scores
