"""Loading each model role from a located folder, the same way for real and tiny weights."""

from __future__ import annotations

import functools
import glob
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


# Where a GPU shows itself on Linux: NVIDIA's driver (/dev/nvidia0..., /proc/driver/nvidia),
# Jetson/Tegra boards (/dev/nvhost-*, /dev/nvmap, /dev/nvgpu), AMD's ROCm (/dev/kfd) and WSL
# (/dev/dxg).
_GPU_SIGNS = ("/dev/nvidia[0-9]*", "/proc/driver/nvidia", "/dev/nvhost-*", "/dev/nvmap",
              "/dev/nvgpu", "/dev/kfd", "/dev/dxg")


def _no_gpu_here() -> bool:
    """True on a Linux machine with none of the GPU signs above. There "auto" is the CPU
    without importing torch (3-4 s and some 200 MB in a fresh process), so a run whose
    models need no torch (notes, JSON; speech without the speaker model) never imports
    it. Elsewhere (macOS, Windows), or with any sign of a GPU, torch is asked."""
    return sys.platform == "linux" and not any(glob.glob(sign) for sign in _GPU_SIGNS)


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    return _auto_device()


def device_problem(device: str) -> str | None:
    """Why the device MEDIA_ASSETS_DEVICE names cannot be used here, or None. Asked before
    any work: otherwise every model step fails file by file, in CUDA's own words ("driver
    version is insufficient" on a machine with no GPU at all)."""
    if not device.startswith("cuda"):
        return None
    if "torch" not in sys.modules and _no_gpu_here():
        return (f"MEDIA_ASSETS_DEVICE={device} but this machine has no GPU: set it to auto "
                "or cpu")
    import torch

    if not torch.cuda.is_available():
        return (f"MEDIA_ASSETS_DEVICE={device} but CUDA is not available here: set it to "
                "auto or cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return (f"MEDIA_ASSETS_DEVICE={device} but torch sees {torch.cuda.device_count()} "
                f"GPU(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return None


@functools.cache  # one answer for the process's life
def _auto_device() -> str:
    if "torch" not in sys.modules and _no_gpu_here():
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


@dataclass
class ClipBundle:
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    model_ref: str = ""  # model id @ weights fingerprint: the vector space's name
    # Zero-shot label prompts' vectors, made once per loaded model (`clip.zero_shot`).
    label_vectors: dict = field(default_factory=dict)


def load_clip(path: Path, device: str) -> ClipBundle:
    import open_clip

    ref = "local-dir:" + str(path)
    model, _, preprocess = open_clip.create_model_and_transforms(ref, device=device)
    model.eval()
    return ClipBundle(model, preprocess, open_clip.get_tokenizer(ref), device)


def load_whisper(path: Path, device: str, compute_type: str = "auto"):
    from faster_whisper import WhisperModel

    if compute_type == "auto":  # int8 on CPU; float16 where CUDA has it
        compute_type = "float16" if device.startswith("cuda") else "int8"
    return WhisperModel(str(path), device="cuda" if device.startswith("cuda") else "cpu",
                        compute_type=compute_type)


def _quantization(device: str, quantize_8bit: bool):
    """bitsandbytes 8-bit config on CUDA, or None (CPU, or bitsandbytes missing)."""
    if not quantize_8bit or not device.startswith("cuda"):
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        log.warning("quantize_8bit is set but bitsandbytes is not installed: loading in fp16")
        return None
    return BitsAndBytesConfig(load_in_8bit=True)


@dataclass
class HfBundle:
    model: Any
    processor: Any  # a processor (captioner) or a tokenizer (LLM)
    device: str


def _load_hf(model_cls, processor_cls, path: Path, device: str, quantize_8bit: bool) -> HfBundle:
    """fp16 on CUDA (8-bit with bitsandbytes when asked), fp32 on CPU."""
    import torch

    quant = _quantization(device, quantize_8bit)
    kwargs: dict = {"dtype": torch.float16 if device.startswith("cuda") else torch.float32}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": 0})
    model = model_cls.from_pretrained(str(path), **kwargs)
    if quant is None:
        model.to(device)
    model.eval()
    return HfBundle(model, processor_cls.from_pretrained(str(path)), device)


def load_captioner(path: Path, device: str, quantize_8bit: bool = True) -> HfBundle:
    from transformers import AutoProcessor, Blip2ForConditionalGeneration

    return _load_hf(Blip2ForConditionalGeneration, AutoProcessor, path, device, quantize_8bit)


def load_llm(path: Path, device: str, quantize_8bit: bool = True) -> HfBundle:
    """A hub folder, or a `.gguf` file (transformers dequantises it: fp16 on CUDA, fp32 on
    the CPU; bitsandbytes does not apply)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path.suffix == ".gguf" and path.is_file():
        return load_gguf_llm(path, device)
    return _load_hf(AutoModelForCausalLM, AutoTokenizer, path, device, quantize_8bit)


def load_gguf_llm(path: Path, device: str) -> HfBundle:
    import functools

    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from media_assets.lib.models import dequantised

    # transformers asks gguf for the same tensor-name table once per module (397 times for
    # a 30-layer model, about 40 % of the load time here); the table depends only on its
    # arguments, so one cached copy serves them all.
    if not hasattr(gguf.get_tensor_name_map, "cache_info"):
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=8)(gguf.get_tensor_name_map)
    # Its "Converting and de-quantizing GGUF tensors" bar is drawn with tqdm itself, past
    # transformers' own switch for progress bars, which `-q` and `dev` turn off; transformers'
    # logging.tqdm is the same bar that obeys the switch.
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    gguf_utils.tqdm = hf_logging.tqdm
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    # A copy of the weights as dequantised before (lib/models/dequantised.py): 0.4 s
    # against 15-19 s for the 135M SmolLM2 on 2 cores.
    folder = dequantised.copy_folder(path, str(dtype).removeprefix("torch."))
    loaded = dequantised.load_copy(folder, dtype) if folder is not None else None
    if loaded is None:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        if folder is not None:
            dequantised.write_copy(model, tokenizer, folder)
    else:
        model, tokenizer = loaded
    model.to(device)
    model.eval()
    return HfBundle(model, tokenizer, device)


def load_voice_encoder(path: Path, device: str):
    from media_assets.lib.models.voice import load_voice_encoder as load

    return load(path, device)


def load_ocr(path: Path, device: str):
    from media_assets.lib.models.ocr import load_ocr as load

    return load(path, device)
