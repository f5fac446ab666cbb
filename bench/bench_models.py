"""Load, unload and switch times of each model through the ModelManager, beside file sizes.

    python bench/bench_models.py [MODEL_DIR]

MODEL_DIR defaults to $MEDIA_ASSETS_MODEL_DIR, or a tiny set written to a temporary folder.
Where the real weights are in MODEL_DIR they are measured; a missing model is reported.
The baseline is the bare loader called without the manager, in the same process, so the
ratio shows what the manager's bookkeeping (measuring, locking, releasing) costs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from media_assets.lib.models.locate import ModelNotFound, locate
from media_assets.lib.models.registry import ModelConfig, build_manager, load_role


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if root is None and os.environ.get("MEDIA_ASSETS_MODEL_DIR"):
        root = Path(os.environ["MEDIA_ASSETS_MODEL_DIR"])
    if root is None:
        from media_assets.lib.models.tiny import make_tiny

        root = Path(tempfile.mkdtemp()) / "tiny"
        make_tiny(root)
        print(f"(tiny random models written to {root})")
    os.environ["MEDIA_ASSETS_MODEL_DIR"] = str(root)
    config = ModelConfig(device="auto", model_dir=root)
    manager = build_manager(config)
    print(f"device {manager.device}, budget {manager.budget_mb:.0f} MB")
    print(f"{'model':<10} {'files MB':>9} {'bare load s':>12} {'managed load s':>15} "
          f"{'ratio':>6} {'unload s':>9} {'measured MB':>12}")
    roles = []
    for role, model_id in config.models.items():
        try:
            size = locate(role, model_id).size_mb
        except ModelNotFound:
            print(f"{role:<10} missing: {model_id}")
            continue
        load_role(role, config, manager.device)  # warm-up: imports and file cache, untimed
        t = time.perf_counter()
        bare = load_role(role, config, manager.device)
        bare_s = time.perf_counter() - t
        del bare
        with manager.use(role):
            pass
        stats = manager.stats(role)
        t = time.perf_counter()
        manager.unload(role)  # on_demand models (the LLM) were already unloaded after use
        unload_s = time.perf_counter() - t
        print(f"{role:<10} {size:>9.1f} {bare_s:>12.3f} {stats.load_seconds:>15.3f} "
              f"{stats.load_seconds / bare_s:>6.2f} {unload_s:>9.3f} {stats.measured_mb:>12.1f}")
        roles.append(role)
    # Switching: alternate two resident models under a budget that holds only one.
    if len(roles) >= 2:
        a, b = roles[0], roles[1]
        # RSS deltas on CPU are noisy for small models: leave half a model of headroom.
        one = max(manager.spec(a).estimate_mb, manager.spec(b).estimate_mb, 50)
        small = build_manager(ModelConfig(device=manager.device, budget_mb=one * 1.5,
                                            model_dir=root))
        for role in (a, b):  # start from the measured footprints, not file sizes
            small.spec(role).estimate_mb = manager.spec(role).estimate_mb
        t = time.perf_counter()
        for _ in range(3):
            for role in (a, b):
                with small.use(role):
                    pass
        print(f"switch {a}<->{b} (budget holds one): {(time.perf_counter() - t) / 6:.3f} s "
              f"per switch, peak {small.peak_mb:.0f} MB of {small.budget_mb:.0f} MB")


if __name__ == "__main__":
    main()
