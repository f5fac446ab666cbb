"""Generation constrained to a JSON schema: each token the LLM may pick keeps the answer a
valid prefix of a document of that schema, so a finished answer is valid by construction.

xgrammar does the work (chosen by measurement, README "JSON to tables"): of the four
libraries on the package index it is the one that runs with transformers 5 here;
lm-format-enforcer 0.11.3 and transformers-cfg 0.2.7 fail to import or to read
transformers 5's tokenizers, and outlines 1.3.3 brings eight packages and was ~5x slower
per token in the same test. The schema is compiled once per tokenizer and schema text (a
string with `maxLength` costs a few seconds to compile; a `$ref` to one shared definition
compiles it once for every property that uses it).
"""

from __future__ import annotations

import json
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
    (compact JSON: no free whitespace, so no tokens are spent on it)."""
    import xgrammar as xgr

    comp = compiler(bundle)
    try:
        grammar = comp.compile_json_schema(json.dumps(schema, sort_keys=True),
                                           any_whitespace=False, strict_mode=True)
    except Exception as exc:
        raise ConstraintUnavailable(f"schema not compiled: {type(exc).__name__}: {exc}"[:300]
                                    ) from None
    return xgr.contrib.hf.LogitsProcessor(grammar)
