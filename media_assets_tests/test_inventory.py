"""The model inventory: each role located and fingerprinted once, found or missing with why,
and the manager loading from it (the ref a loaded model carries is the inventory's)."""

import shutil

import pytest

from media_assets.lib.models import locate as locate_module
from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.inventory import ModelInventory
from media_assets.lib.models.registry import build_manager
from media_assets.lib.models.roles import DEFAULT_MODELS, Role


@pytest.fixture
def tiny_env(tiny_models, monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tiny_models


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Every fingerprint computed (the first MB of each weight file read), by role."""
    seen: list[str] = []
    real = locate_module.Located.fingerprint

    def counting(self):
        seen.append(self.role)
        return real.fget(self)

    monkeypatch.setattr(locate_module.Located, "fingerprint", property(counting))
    return seen


def test_statuses_say_where_each_model_is_or_why_it_is_missing(tiny_env):
    inv = ModelInventory(ModelConfig(device="cpu", model_dir=tiny_env))
    by_role = {s.role: s for s in inv.statuses()}
    assert set(by_role) == set(Role)
    clip = by_role[Role.CLIP]
    assert clip.status == "found" and clip.found.path.parent == tiny_env
    assert clip.found.source == "model dir" and clip.required and clip.why_missing is None
    llm = by_role[Role.LLM]  # the tests' model folder has no LLM
    assert llm.status == "missing" and not llm.required and llm.found is None
    assert "media-assets models pull" in llm.why_missing
    assert llm.as_dict()["how"] and "path" not in llm.as_dict()
    assert clip.as_dict()["path"] == str(clip.found.path)
    assert inv.available(Role.CLIP) and not inv.available(Role.LLM)
    assert inv.ref_or_none(Role.LLM) is None
    assert [s.role for s in inv.missing_required()] == [
        s.role for s in by_role.values() if s.required and s.status == "missing"]


def test_ref_is_hashed_once_and_is_what_a_loaded_model_carries(tiny_env, hashes):
    inv = ModelInventory(ModelConfig(device="cpu", budget_mb=4000, model_dir=tiny_env))
    manager = build_manager(inv.config, inv)
    assert manager.inventory is inv
    with manager.use(Role.CLIP) as clip:
        loaded_ref = clip.model_ref
    assert loaded_ref == inv.ref(Role.CLIP) == inv.ref("clip")
    assert loaded_ref.startswith(DEFAULT_MODELS[Role.CLIP] + "@")
    assert hashes.count(Role.CLIP) == 1, hashes  # the manager's load and the asks share it


def test_a_model_copied_in_later_is_found_without_a_new_inventory(tiny_env, tmp_path,
                                                                   monkeypatch):
    inv = ModelInventory(ModelConfig(device="cpu", model_dir=tmp_path))
    why = inv.why_missing(Role.CLIP)
    assert why and str(tmp_path) in why
    assert Role.CLIP in {s.role for s in inv.missing_required()}
    folder = DEFAULT_MODELS[Role.CLIP].replace("/", "--")
    shutil.copytree(tiny_env / folder, tmp_path / folder)
    assert inv.available(Role.CLIP)
    assert inv.status(Role.CLIP).found.path == tmp_path / folder


def test_other_weights_under_the_same_id_are_another_ref(tiny_env, tmp_path, monkeypatch):
    """Real and tiny weights share a hub id; results must not be taken for each other's."""
    folder = DEFAULT_MODELS[Role.CLIP].replace("/", "--")
    shutil.copytree(tiny_env / folder, tmp_path / folder)
    weights = next(p for p in (tmp_path / folder).rglob("*")
                   if p.suffix in (".safetensors", ".bin"))
    weights.write_bytes(weights.read_bytes()[::-1])  # same name and size, other bytes
    before = ModelInventory(ModelConfig(model_dir=tiny_env)).ref(Role.CLIP)
    after = ModelInventory(ModelConfig(model_dir=tmp_path)).ref(Role.CLIP)
    assert before.split("@")[0] == after.split("@")[0] and before != after


def test_a_migration_in_progress_does_not_hold_up_a_model_reservation(catalog):
    """Migrations and the model ledger take different advisory locks (lib/db/locks.py)."""
    import threading

    import sqlalchemy as sa

    from media_assets.lib.db import locks
    from media_assets.lib.db.ledger import ModelLedger

    assert len(set(locks.ALL.values())) == len(locks.ALL)
    ledger = ModelLedger(catalog.engine, "cpu")
    done = threading.Event()
    try:
        with catalog.engine.connect() as migrating:
            migrating.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": locks.MIGRATIONS})
            worker = threading.Thread(target=lambda: done.set()
                                      if ledger.reserve("clip", 10, 100) else None)
            worker.start()
            worker.join(10)
            held = done.is_set()
            migrating.execute(sa.text("SELECT pg_advisory_unlock(:id)"),
                              {"id": locks.MIGRATIONS})
            worker.join(10)
        assert held, "the reservation waited for the migrations' lock"
    finally:
        ledger.close()
