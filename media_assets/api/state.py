"""The server process's state: the catalogue, the model manager (in the machine-wide budget,
`lib/db/ledger.py`) behind one lock per model, the lanes model work queues in, and the
picture cache. Built once at start-up; nothing here is re-read per request."""

from __future__ import annotations

import threading

from media_assets.api.cache import PictureCache
from media_assets.api.inference import Lanes, OneAtATime
from media_assets.lib.files.probe import Limits
from media_assets.lib.models.inventory import ModelInventory
from media_assets.lib.models.roles import Role
from media_assets.lib.settings import Settings


class State:
    """The catalogue, the model manager (with the ledger), the lanes and the caches."""

    def __init__(self, settings: Settings):
        from media_assets.lib.db import open_catalog
        from media_assets.lib.db.ledger import ModelLedger
        from media_assets.lib.models.registry import build_manager

        self.settings = settings
        threads = {"speech": 2, "vision": 2, "llm": 2, "search": 8, "pictures": 2}
        # A connection for each lane thread, and two for the event loop and the ledger.
        self.catalog = open_catalog(settings, pool_size=sum(threads.values()) + 2)
        # The models on this machine, located and fingerprinted once for the process; the
        # manager loads through it, /ready and the optional-model routes ask it.
        self.inventory = ModelInventory(settings.models)
        self.manager = build_manager(settings.models, self.inventory)
        self.ledger = (ModelLedger(self.catalog.engine, self.manager.device)
                       if settings.shared_budget else None)
        self.manager.ledger = self.ledger
        self.models = OneAtATime(self.manager)
        q = settings.api_queue
        wide = max(64, 8 * q)  # searches and pictures are short: a deeper queue
        self.lanes = Lanes(depths={"speech": q, "vision": q, "llm": q, "search": wide,
                                   "pictures": wide},
                           threads=threads)
        self.limits = Limits(settings.max_image_pixels, settings.max_json_bytes,
                             settings.max_text_bytes)
        self.pictures = PictureCache(settings.home / "api-cache", settings.api_cache_mb * 2**20,
                                     settings.api_cache_files,
                                     made_by_ingest=settings.home / "thumbnails")
        self._stop = threading.Event()
        self._ttl = threading.Thread(target=self._unload_idle, daemon=True, name="idle-unload")
        self._ttl.start()

    def _unload_idle(self) -> None:
        ttl = self.settings.api_idle_unload_s
        while not self._stop.wait(max(1.0, min(ttl / 4, 30.0))):
            self.manager.unload_idle(ttl)

    def close(self) -> None:
        self._stop.set()
        self.manager.unload_all()
        if self.ledger is not None:
            self.ledger.close()
        self.catalog.dispose()

    @property
    def engine(self):
        return self.catalog.engine

    def clip_ref(self) -> str:
        """The CLIP space's reference (the inventory's: located and hashed once)."""
        return self.inventory.ref(Role.CLIP)

    def optional_llm(self):
        """(the LLM's role name when its weights are here, or None; why not)."""
        why = self.inventory.why_missing(Role.LLM)
        return (Role.LLM, "") if why is None else (None, f"no LLM: {why}"[:300])
