"""One model memory budget across processes holds before a load, not after: a lease reserves
the larger of the model's estimate and what it last measured on this device, and a wait for
memory says who holds what. Two real processes, real allocations measured as RSS."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from media_assets.lib.db.ledger import ModelLedger
from media_assets.lib.models.manager import ModelBudgetError, ModelManager, ModelSpec

MB = 300
HOLDER = f"""
import os, sys
import numpy as np
import sqlalchemy as sa
from media_assets.lib.db.ledger import ModelLedger
from media_assets.lib.models.manager import ModelManager, ModelSpec
m = ModelManager(500)
m.ledger = ModelLedger(sa.create_engine(os.environ["CATALOG_URL"]), m.device)
m.register(ModelSpec("big", lambda: np.ones({MB} * 2**20 // 8), 8, model_id="test/big"))
with m.use("big"):
    print("holding", flush=True)
    sys.stdin.readline()
m.ledger.close()
"""


def _big() -> ModelSpec:
    # Estimated at 8 MB, as a model nobody has measured yet; it takes 300 MB once loaded.
    return ModelSpec("big", lambda: np.ones(MB * 2**20 // 8), 8, model_id="test/big")


@pytest.mark.slow
def test_a_lease_reserves_the_measured_footprint_and_a_wait_says_who_holds_it(catalog,
                                                                              caplog):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env={**os.environ,
                        "CATALOG_URL": catalog.url.render_as_string(hide_password=False)})
    ledger = ModelLedger(catalog.engine, "cpu")
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr
        assert ledger.footprint("big:test/big") > 0.8 * MB  # measured by the other process

        # A second process wanting the same model: 8 MB would fit beside the 300 held, and
        # 300 more would not, so it must wait, and say for whom, instead of overshooting.
        waiting = ModelManager(500, wait_timeout_s=12)
        waiting.ledger = ledger
        waiting.register(_big())
        with caplog.at_level(logging.WARNING, logger="media_assets.lib.models.manager"):
            with pytest.raises(ModelBudgetError, match=f"pid {holder.pid} big"):
                with waiting.use("big"):
                    pass
        assert ledger.used_mb() <= 500
        said = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
        assert said and f"pid {holder.pid} big" in said[0], caplog.text

        # The holder ends: the memory is free and the model loads.
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(30)
        with waiting.use("big"):
            assert waiting.loaded()["big"] > 0.8 * MB
    finally:
        holder.kill()
        ledger.close()
