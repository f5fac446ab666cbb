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

    from media_assets.lib.models.constrained import (ConstraintUnavailable, logits_processor,
                                                     stop_ids)

    start = time.perf_counter()
    tok = bundle.processor
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True).to(bundle.device)
    sampling = ({"do_sample": True, "temperature": float(temperature)} if temperature > 0
                else {"do_sample": False})
    constraint, extra = "free", {}
    if json_schema is not None:
        try:
            extra["logits_processor"] = [logits_processor(bundle, json_schema)]
            constraint = "schema"
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
