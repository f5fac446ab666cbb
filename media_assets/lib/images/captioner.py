"""BLIP-2 captions and visual questions, batched over images."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from media_assets.lib.models.loaders import HfBundle


def _generate(bundle: HfBundle, images: Sequence[Image.Image], prompt: str | None,
              max_new_tokens: int) -> list[str]:
    import torch

    rgb = [im.convert("RGB") for im in images]
    kwargs = {"images": rgb, "return_tensors": "pt"}
    if prompt:
        kwargs["text"] = [prompt] * len(rgb)
    inputs = bundle.processor(**kwargs).to(bundle.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(bundle.model.dtype)
    with torch.inference_mode():
        out = bundle.model.generate(**inputs, max_new_tokens=max_new_tokens)
    texts = bundle.processor.batch_decode(out, skip_special_tokens=True)
    # Decoder-only language models echo the prompt before the answer.
    texts = [t[len(prompt):] if prompt and t.startswith(prompt) else t for t in texts]
    return [clean_text(t) for t in texts]


def clean_text(text: str) -> str:
    """Generated text without control characters (PostgreSQL refuses NUL), trimmed."""
    return "".join(ch for ch in text if ch.isprintable() or ch == " ").strip()


def caption_images(bundle: HfBundle, images: Sequence[Image.Image],
                   max_new_tokens: int = 30) -> list[str]:
    return _generate(bundle, images, None, max_new_tokens)


def answer_question(bundle: HfBundle, images: Sequence[Image.Image], question: str,
                    max_new_tokens: int = 20) -> list[str]:
    return _generate(bundle, images, f"Question: {question} Answer:", max_new_tokens)
