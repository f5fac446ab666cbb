"""Text generation with the local LLM (Phi-3.5), shared by JSON schema naming, cluster
hierarchies and the HTTP API's /generate."""

from __future__ import annotations

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
