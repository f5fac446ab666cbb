"""Text generation with the local LLM (Phi-3.5, SmolLM2 or any chat model, hub folder or
GGUF), shared by JSON schema naming, cluster hierarchies and the HTTP API's /generate."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Generated:
    text: str
    tokens_generated: int
    # "schema": every token was constrained to the JSON schema asked for; "free": no
    # schema was asked for; "unconstrained: <why>": one was, but could not be enforced.
    constraint: str = "free"
    seconds: float = 0.0


def generate(bundle, messages: list[dict], max_new_tokens: int = 400,
             temperature: float = 0.0, stop_sequences: list[str] | None = None,
             json_schema: dict | None = None) -> Generated:
    """Chat-templated generation. Temperature 0 is greedy (deterministic, what the
    catalogue uses); a stop sequence cuts the text at its first occurrence. With
    `json_schema`, each token is constrained so the answer is a document of that schema
    (lib/models/constrained.py); where that cannot be done the answer is free, and
    `constraint` says why, so the caller's validation still decides."""
    import time

    import torch

    from media_assets.lib.models.constrained import (ConstraintUnavailable, DistinctItems,
                                                     logits_processor, stop_ids,
                                                     unique_string_arrays)

    start = time.perf_counter()
    tok = bundle.processor
    # A lone surrogate (a record's "\ud800" escape) stops a fast tokenizer with a TypeError:
    # each becomes U+FFFD, as the stored values do; valid pairs stay as they are.
    messages = [{**m, "content": m["content"].encode("utf-16", "surrogatepass")
                 .decode("utf-16", "replace")} if isinstance(m.get("content"), str) else m
                for m in messages]
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True).to(bundle.device)
    sampling = ({"do_sample": True, "temperature": float(temperature)} if temperature > 0
                else {"do_sample": False})
    constraint, extra = "free", {}
    if json_schema is not None:
        try:
            extra["logits_processor"] = [logits_processor(bundle, json_schema)]
            constraint = "schema"
            distinct = unique_string_arrays(json_schema)
            if distinct:  # after the grammar's mask: it only narrows what that allows
                extra["logits_processor"].append(DistinctItems(
                    bundle, inputs["input_ids"].shape[1], distinct))
        except ConstraintUnavailable as exc:
            constraint = f"unconstrained: {exc}"
    with torch.inference_mode():
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = bundle.model.generate(**inputs, max_new_tokens=max_new_tokens,
                                    pad_token_id=pad, **sampling, **extra)
    new = out[0][inputs["input_ids"].shape[1]:].tolist()
    ends = {tok.eos_token_id, tok.pad_token_id, *stop_ids(bundle)} - {None}
    while new and new[-1] in ends:  # the end-of-turn token is not part of the answer
        new.pop()
    text = tok.decode(new, skip_special_tokens=True)
    for stop in stop_sequences or []:
        if stop and stop in text:
            text = text[:text.index(stop)]
    return Generated(text, int(len(new)), constraint, time.perf_counter() - start)


def choose(bundle, messages: list[dict], prefix: str, options: list[str],
           suffix: str = '"') -> tuple[str, dict[str, float]]:
    """The option the model finds likeliest as its answer's next words after `prefix`
    (each option's summed log-probability, its `suffix` included), with every score.

    Why not let constrained generation pick it: greedy decoding under an enum takes the
    likeliest first token, and a small model's likeliest first token is the start of
    whichever option it read first ("a" of "animals" for SmolLM2-135M, whatever the photos
    show). Scoring each option whole asks the question that is meant. The prompt is run
    once; each option reuses its cache (cropped back after it)."""
    import torch

    tok = bundle.processor
    head = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    head += prefix
    head_ids = tok(head, add_special_tokens=False).input_ids
    fulls = [tok(head + o + suffix, add_special_tokens=False).input_ids for o in options]

    def common(ids):
        n = 0
        while n < min(len(ids), len(head_ids)) and ids[n] == head_ids[n]:
            n += 1
        return n

    # Tokens are merged across the prefix's end differently per option: the shared part
    # stops where the first option's tokens differ from the prompt's own.
    shared = min(common(ids) for ids in fulls)
    shared = min(shared, min(len(ids) for ids in fulls) - 1)
    device = bundle.device
    rests = [ids[shared:] for ids in fulls]
    width = max(map(len, rests))
    # Padded on the right: causal attention never lets a position see the padding after
    # it, so no mask is needed and the padded positions are simply not read.
    batch = torch.tensor([r + [r[-1]] * (width - len(r)) for r in rests], device=device)
    with torch.inference_mode():
        first = bundle.model(torch.tensor([fulls[0][:shared]], device=device), use_cache=True)
        out = first.past_key_values if hasattr(first, "past_key_values") else first.cache
        out.batch_repeat_interleave(len(options))  # the prompt once, for every option
        after = bundle.model(batch, cache=out, use_cache=True)
        # logits at position t predict token t+1: the prompt's last position predicts the
        # first of each option's tokens, then each of them the next
        logits = torch.cat([first.logits[:, -1:].expand(len(options), 1, -1),
                            after.logits[:, :-1]], dim=1).float()
        logp = torch.log_softmax(logits, dim=-1)
        scores = {}
        for n, (option, ids) in enumerate(zip(options, fulls)):
            scored = range(common(ids) - shared, len(ids) - shared)
            scores[option] = float(sum(logp[n, i, ids[shared + i]] for i in scored))
    return max(scores, key=scores.get), scores


def json_object(text: str) -> tuple[dict | None, str]:
    """The JSON object in an LLM's answer (models wrap it in prose or a code fence), or
    (None, why not). Never raises on model output."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "no JSON object in the answer"
    try:
        answer = json.loads(text[start:end + 1])
    except json.JSONDecodeError as exc:
        return None, f"answer is not valid JSON ({exc.msg})"
    if not isinstance(answer, dict):
        return None, "answer is not a JSON object"
    return answer, ""
