"""Text generation with the local LLM (Phi-3.5), shared by JSON schema naming, cluster
hierarchies and the HTTP API's /generate."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Generated:
    text: str
    tokens_generated: int


def generate(bundle, messages: list[dict], max_new_tokens: int = 400,
             temperature: float = 0.0, stop_sequences: list[str] | None = None) -> Generated:
    """Chat-templated generation. Temperature 0 is greedy (deterministic, what the
    catalogue uses); a stop sequence cuts the text at its first occurrence."""
    import torch

    tok = bundle.processor
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True).to(bundle.device)
    sampling = ({"do_sample": True, "temperature": float(temperature)} if temperature > 0
                else {"do_sample": False})
    with torch.inference_mode():
        out = bundle.model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
    new = out[0][inputs["input_ids"].shape[1]:]
    text = tok.decode(new, skip_special_tokens=True)
    for stop in stop_sequences or []:
        if stop and stop in text:
            text = text[:text.index(stop)]
    return Generated(text, int(len(new)))


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
