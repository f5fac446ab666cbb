"""A GGUF LLM's dequantised weights, kept on disk so the next load skips the dequantising.

transformers reads a `.gguf` file by dequantising every tensor in Python and converting its
tokenizer: 15-19 s for the 135M SmolLM2 on 2 cores, every time a run loads it (the LLM role is
loaded for a batch, then unloaded). The same weights written once as safetensors, with the
config and the tokenizer beside them, load in 0.4 s. The copy is exact (the dtype the GGUF
was dequantised to, fp32 on the CPU and fp16 on CUDA), so answers do not change.

Where: MEDIA_ASSETS_GGUF_CACHE, else `$XDG_CACHE_HOME/media_assets/dequantised` (as the
Hugging Face cache lives in ~/.cache). A copy is only written when it is at most
MEDIA_ASSETS_GGUF_CACHE_MB (default 4096; 0 turns the cache off): a 3.8B model in fp32 would
take 15 GB of disk. One copy per GGUF file: a changed file (another name, size or first MB:
the weights' fingerprint) replaces its older copy. A copy that cannot be read is removed
and the GGUF loaded again.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from media_assets.lib.models.fingerprint import weights_fingerprint

log = logging.getLogger(__name__)

DONE = "complete"  # written last: a folder without it is a copy that was interrupted
DEFAULT_MB = 4096


def limit_mb() -> float:
    """MEDIA_ASSETS_GGUF_CACHE_MB (settings.py refuses a value that is not a number >= 0
    before any command runs; a caller outside the CLI gets the default)."""
    raw = os.environ.get("MEDIA_ASSETS_GGUF_CACHE_MB", "").strip()
    try:
        return float(raw) if raw else DEFAULT_MB
    except ValueError:
        return DEFAULT_MB


def cache_root() -> Path | None:
    """The folder of the copies, or None when the cache is off."""
    if limit_mb() <= 0:
        return None
    given = os.environ.get("MEDIA_ASSETS_GGUF_CACHE", "").strip()
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "media_assets" / "dequantised"


def copy_folder(gguf: Path, dtype_name: str) -> Path | None:
    """Where this file's copy in this dtype lives, named by the file and its weights'
    fingerprint (the one its model_ref carries); None when the cache is off."""
    root = cache_root()
    if root is None:
        return None
    return root / f"{gguf.stem}-{weights_fingerprint([gguf])}-{dtype_name}"


def load_copy(folder: Path, dtype) -> tuple[Any, Any] | None:
    """(model, tokenizer) from a complete copy, or None (none there, or unreadable: then
    removed, so the GGUF is loaded and the copy written again)."""
    if not (folder / DONE).is_file():
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - any damage: fall back to the GGUF itself
        log.warning("the dequantised copy in %s could not be read (%s): loading the GGUF "
                    "file instead and writing the copy again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return model, tokenizer


def write_copy(model, tokenizer, folder: Path) -> bool:
    """Write the copy beside its siblings, atomically (a temporary folder renamed), when it
    fits the limit; remove older copies of the same file. False when not written."""
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    if size_mb > limit_mb():
        log.info("not keeping a dequantised copy of %s: %.0f MB is over "
                 "MEDIA_ASSETS_GGUF_CACHE_MB=%.0f", folder.name, size_mb, limit_mb())
        return False
    from safetensors.torch import save_model

    tmp = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder.parent))
        config = copy.deepcopy(model.config)  # the loaded model keeps its own
        # The GGUF loader marks the config as quantised; the copy is plain weights.
        with contextlib.suppress(AttributeError):
            del config.quantization_config
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))  # tied weights stored once
        tokenizer.save_pretrained(tmp)
        (tmp / DONE).write_text("")
        stem = folder.name.rsplit("-", 2)[0]
        for old in folder.parent.glob(f"{stem}-*"):
            # Only this file's older copies: "model-instruct-…" is another file's.
            if (old != folder and old.is_dir() and not old.name.startswith(".")
                    and old.name.rsplit("-", 2)[0] == stem):
                shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process wrote it first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:  # a full or read-only disk costs the next load time, nothing else
        log.warning("could not keep a dequantised copy in %s: %s", folder.parent, exc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True
