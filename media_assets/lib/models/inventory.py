"""The models on this machine, one entry per role: where the weights are, their identity
(id @ fingerprint), found or missing, and why missing with how to get them.

One `ModelInventory` per process part that needs models (the `GpuResource`'s manager, the
HTTP server's state, a CLI command) is the only place that locates and fingerprints
weights. `doctor`, `/ready`, the run planner, the resources and every "use the optional
model or degrade" site ask it; `build_manager` loads through it, so the weights a model
was loaded from are the ones its results are versioned by, hashed once.

Found weights are remembered; a missing model is looked for again at each ask, so weights
copied in while a server runs are seen without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.locate import Located, ModelNotFound, locate
from media_assets.lib.models.roles import Role, spec_of


@dataclass(frozen=True)
class ModelStatus:
    """One role's model on this machine: found (with where) or missing (with why)."""

    role: Role
    model_id: str  # what the settings name: a hub id, a folder or a .gguf file
    required: bool  # the catalogue needs it; optional roles degrade without it
    does: str
    found: Located | None
    why_missing: str | None  # ModelNotFound's message: places looked in, how to get it

    @property
    def status(self) -> str:
        return "found" if self.found is not None else "missing"

    @property
    def usable(self) -> bool:
        return self.found is not None

    def as_dict(self) -> dict:
        """What `/ready` shows per role (and the shape a notebook or a tool can read)."""
        out: dict = {"status": self.status, "id": self.model_id, "required": self.required}
        if self.found is not None:
            out["path"] = str(self.found.path)
        else:
            out["how"] = (self.why_missing or "")[:500]
        return out


class ModelInventory:
    """Every role's model as configured: located once, fingerprinted once (thread-safe)."""

    def __init__(self, config: ModelConfig):
        self.config = config
        self._found: dict[Role, Located] = {}
        self._refs: dict[Role, str] = {}
        self._lock = threading.Lock()

    # -- where and whether -----------------------------------------------------------
    def locate(self, role: str | Role) -> Located:
        """The role's weights; raises `ModelNotFound` (with advice) when they are not here."""
        role = Role(role)
        with self._lock:
            found = self._found.get(role)
        if found is None:
            found = locate(role, self.config.model_id(role),  # raises ModelNotFound
                           self.config.model_dir)
            with self._lock:
                found = self._found.setdefault(role, found)
        return found

    def status(self, role: str | Role) -> ModelStatus:
        role = Role(role)
        spec = spec_of(role)
        try:
            found, why = self.locate(role), None
        except ModelNotFound as exc:
            found, why = None, str(exc)
        return ModelStatus(role, self.config.model_id(role), spec.required, spec.does,
                           found, why)

    def statuses(self) -> list[ModelStatus]:
        """Every configured role, in the settings' order (doctor and /ready show this)."""
        return [self.status(role) for role in self.config.models]

    def available(self, role: str | Role) -> bool:
        return self.why_missing(role) is None

    def why_missing(self, role: str | Role) -> str | None:
        """None when the role's weights are here; else why not and how to get them."""
        try:
            self.locate(role)
            return None
        except ModelNotFound as exc:
            return str(exc)

    def missing_required(self) -> list[ModelStatus]:
        """The required roles without weights: what makes `doctor` fail and `/ready` 503."""
        return [s for s in self.statuses() if s.required and not s.usable]

    # -- identity --------------------------------------------------------------------
    def ref(self, role: str | Role) -> str:
        """The model's identity, what results are versioned by: the configured id (plus the
        GGUF file's name when a folder was named) @ the weights' fingerprint. Tells weights
        apart that share an id (real vs tiny). Raises `ModelNotFound`."""
        role = Role(role)
        with self._lock:
            ref = self._refs.get(role)
        if ref is None:
            found = self.locate(role)
            name = self.config.model_id(role)
            if found.gguf is not None and not name.endswith(".gguf"):
                name = f"{name}/{found.gguf.name}"
            ref = f"{name}@{found.fingerprint}"  # hashes the first MB of each weight file
            with self._lock:
                ref = self._refs.setdefault(role, ref)
        return ref

    def ref_or_none(self, role: str | Role) -> str | None:
        """The ref, or None when the model is missing (optional models: the fallback runs,
        and results made without the model carry no version)."""
        try:
            return self.ref(role)
        except ModelNotFound:
            return None


__all__ = ["ModelInventory", "ModelNotFound", "ModelStatus"]
