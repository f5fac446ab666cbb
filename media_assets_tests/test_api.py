"""The HTTP API against a real catalogue (ingested with the tiny models and the real Whisper
base): every endpoint, its errors and its limits; a bounded load test on loopback; the
budget shared with a Dagster run in another process."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from media_assets.api.app import create_app
from media_assets.cli import main
from media_assets.lib.samples import photo_groups, png_bomb
from media_assets.lib.settings import Settings
from media_assets_tests.live_server import Server

PATHS = {"/analyze-image", "/label-cluster", "/transcribe", "/generate", "/analyze-json-schema",
         "/enrich-cluster", "/health", "/ready", "/search", "/similar/{key}", "/files/{key}",
         "/files/{key}/thumbnail", "/files/{key}/frame", "/files/{key}/content", "/clusters",
         "/login", "/logout", "/library", "/library/facets"}


@pytest.fixture(scope="module")
def library(api_library):
    """The session's API catalogue (conftest.py), its environment set for this module."""
    mp = pytest.MonkeyPatch()
    for k, v in api_library[2].items():
        mp.setenv(k, v)
    # The Phi-3 architecture (tiny, random) answers the LLM routes: what the routes do with
    # an answer; the real SmolLM2's answers are tested in test_llm_real.py.
    mp.setenv("MEDIA_ASSETS_LLM_MODEL", str(Path(api_library[2]["MEDIA_ASSETS_MODEL_DIR"])
                                            / "tiny-phi3"))
    yield Settings.from_env(), api_library[1], api_library[2]
    mp.undo()


@pytest.fixture(scope="module")
def client(library):
    # Host 127.0.0.1: the server answers loopback names only (DNS rebinding).
    with TestClient(create_app(library[0]), base_url="http://127.0.0.1") as c:
        yield c


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def key_of(client, name: str) -> str:
    hits = client.get("/search", params={"q": name.split(".")[0], "k": 50}).json()["hits"]
    return next(h["key"] for h in hits if h["path"].endswith(name))


def test_health_ready_and_docs_list_every_endpoint(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert {m["status"] for m in ready.json()["models"].values()} == {"found"}
    assert set(client.get("/openapi.json").json()["paths"]) == PATHS
    assert "swagger" in client.get("/docs").text.lower()
    assert "<form" in client.get("/").text


def test_analyze_image_and_label_cluster_answer_the_seed_contracts(client, library):
    photos = sorted((library[1] / "inbox" / "photos").glob("rocket_*.jpg"))
    r = client.post("/analyze-image", json={"image": b64(photos[0])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"caption", "objects", "scene_type", "dominant_colors",
            "processing_time_ms"} <= set(body)
    assert all(o["bbox"] is None and 0 <= o["confidence"] <= 1 for o in body["objects"])
    # The seed's hex list; the shares beside it (docs/contracts.md).
    assert body["dominant_colors"][0].startswith("#") and body["processing_time_ms"] > 0
    assert body["dominant_colors_detail"][0]["hex"] == body["dominant_colors"][0]
    only = client.post("/analyze-image", json={"image": b64(photos[0]), "tasks": ["colors"]})
    assert only.json()["caption"] is None and only.json()["dominant_colors"]

    r = client.post("/label-cluster", json={"images": [b64(p) for p in photos],
                                            "cluster_size": 40})
    assert r.status_code == 200, r.text
    label = r.json()
    assert set(label) >= {"cluster_name", "description", "tags", "primary_category",
                          "confidence"}
    assert label["cluster_name"] and 0 <= label["confidence"] <= 1
    assert "40 items" in label["description"]


@pytest.mark.slow
def test_transcribe_generate_schema_and_enrich(client, library):
    memo = library[1] / "inbox" / "launch memo.wav"
    r = client.post("/transcribe", json={"audio": b64(memo), "language": "auto",
                                         "options": {"timestamps": True, "word_level": True}})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["language"] == "en" and "rocket" in t["text"].lower()
    assert t["segments"][0]["end"] > t["segments"][0]["start"] >= 0
    assert t["segments"][0]["words"]

    # "auto" chooses among MEDIA_ASSETS_LANGUAGES, as ingest does: with English not among
    # them, the same memo is not reported as English.
    with TestClient(create_app(library[0].with_(languages=("de", "fr"))),
                    base_url="http://127.0.0.1") as narrow:
        r = narrow.post("/transcribe", json={"audio": b64(memo), "language": "auto"})
    assert r.status_code == 200, r.text
    assert r.json()["language"] in ("de", "fr"), r.json()

    g = client.post("/generate", json={"prompt": "Say hello.", "max_tokens": 8,
                                       "temperature": 0, "stop_sequences": []}).json()
    assert 1 <= g["tokens_generated"] <= 8 and isinstance(g["text"], str)
    c = client.post("/generate", json={"prompt": "A name.", "max_tokens": 8, "json_schema": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}})
    assert c.status_code == 200 and c.json()["constraint"] == "schema", c.text
    assert c.json()["text"].lstrip().startswith("{"), c.text  # 8 tokens: a document begun

    s = client.post("/analyze-json-schema", json={
        "json_samples": [{"id": i, "price": f"{i}.50", "tags": ["a"]} for i in range(20)],
        "user_comment": "shop items"}).json()
    assert set(s) >= {"table_name", "storage_type", "reasoning", "fields", "indexes"}
    assert "id" in s["fields"]

    e = client.post("/enrich-cluster", json={
        "cluster_name": "Black Cat", "description": "a black cat at home",
        "sample_captions": ["a black cat on a sofa", "a black cat sleeping"]}).json()
    assert set(e) >= {"hierarchy", "folder_path", "extended_tags", "relationships",
                      "search_description"}
    # The seed's form: /lower_case/underscore_parts/ (docs/contracts.md).
    assert ".." not in e["folder_path"] and e["folder_path"].startswith("/") and \
        e["folder_path"].endswith("/") and e["folder_path"] == e["folder_path"].lower()
    # The schema constraint gives the random Phi-3's answer its exact shape; it repeats its
    # tags, so the label's words complete them (a repair, noted) or, too few, the validation
    # refuses it and the heuristic stands: either way with the reason recorded.
    assert 2 <= len(e["hierarchy"]) <= 6
    if e["source"] == "llm":
        assert 10 <= len(e["extended_tags"]) <= 20
        assert e["source_reason"] is None or "tags completed" in e["source_reason"], e
    else:
        assert "LLM answer invalid" in e["source_reason"], e


def test_bad_input_gets_a_4xx_with_the_catalogues_words(client, library, sample_folder,
                                                         tmp_path):
    folder = sample_folder[0]
    cases = [
        ("/analyze-image", {"image": "not base64 at all!"}, 400, "invalid base64"),
        ("/analyze-image", {"image": ""}, 400, "empty"),
        ("/analyze-image", {"image": b64(folder / "records.json")}, 422, "expected image"),
        ("/analyze-image", {"image": b64(folder / "truncated.jpg")}, 422,
         "corrupt or truncated image"),
        ("/analyze-image", {"image": b64(png_bomb(tmp_path / "bomb.png"))}, 422,
         "decompression bomb"),
        ("/transcribe", {"audio": b64(folder / "mystery.bin")}, 422, "unsupported"),
        ("/label-cluster", {"images": [b64(folder / "red.jpg")] * 6, "cluster_size": 3}, 422,
         "at most 5"),
        ("/generate", {"prompt": "x", "max_tokens": 100000}, 422, "less than or equal"),
    ]
    for url, body, status, words in cases:
        r = client.post(url, json=body)
        assert r.status_code == status, (url, r.text)
        assert words in r.text, (url, r.text)
    cut = (folder / "song.mp3").read_bytes()
    r = client.post("/transcribe", json={"audio": base64.b64encode(cut[:len(cut) // 3]).decode()})
    assert 400 <= r.status_code < 500 or r.status_code == 200  # decodable part, or refused
    big = client.post("/analyze-image", content=b"{" + b" " * (5 * 2**20) + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and "MEDIA_ASSETS_API_MAX_REQUEST_MB" in big.text


def test_files_are_served_by_key_only(client, library):
    for bad in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "0123456789abcdef",
                "ZZZZZZZZZZZZZZZZ"):
        r = client.get(f"/files/{bad}/content")
        assert r.status_code == 404, bad
    assert client.get("/files/0123456789abcdef").status_code == 404


def test_search_files_thumbnails_frames_similar_and_clusters(client, library):
    res = client.get("/search", params={"q": "rocket launch", "k": 10}).json()
    assert res["hits"], res
    memo = next(h for h in res["hits"] if h["kind"] == "audio")
    assert memo["why"]["speech"]["text"] and memo["at_s"] is not None
    photo = next(h for h in res["hits"] if h["kind"] == "image")
    thumb = client.get(photo["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    # Several kinds at once are either kind (only the last one counted before).
    both = client.get("/search", params=[("q", "rocket clip launch"), ("k", 50),
                                         ("kind", "audio"), ("kind", "video")]).json()["hits"]
    assert {h["kind"] for h in both} == {"audio", "video"}, both
    pictures = client.get("/search", params=[("q", "rocket clip"), ("k", 50),
                                             ("kind", "image"), ("kind", "video")]).json()
    assert {h["kind"] for h in pictures["hits"]} == {"image", "video"}, pictures
    cached = list((library[1] / "home" / "thumbnails").glob("*.jpg"))
    assert any(p.stem == photo["key"] for p in cached)

    record = client.get(f"/files/{photo['key']}").json()
    assert record["kind"] == "image" and record["analysis"]["caption"]
    assert {r["asset"] for r in record["results"]} >= {"image_embeddings", "image_analysis"}
    video = key_of(client, "clip.mp4")
    frames = client.get(f"/files/{video}").json()["frames"]
    assert frames and client.get(f"/files/{video}/frame", params={"t": 1.0}).status_code == 200
    assert client.get(f"/files/{video}/content").headers["content-type"] == "video/mp4"
    json_key = key_of(client, "records.json")
    design = client.get(f"/files/{json_key}").json()["json_design"]
    assert design["table_name"] and design["columns"]
    assert client.get(f"/files/{json_key}/thumbnail").status_code == 404

    similar = client.get(f"/similar/{photo['key']}", params={"k": 3}).json()["hits"]
    assert len(similar) == 3 and photo["key"] not in {h["key"] for h in similar}
    clusters = client.get("/clusters").json()
    assert clusters["last_run"]["files"] >= 9


def test_a_token_is_required_when_set(library):
    settings = library[0].with_(api_token="s3cret")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 401
        assert c.get("/ready", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        refused = c.get("/clusters", params={"token": "s3cret"})  # never in a URL
        assert refused.status_code == 401 and "URL" in refused.json()["detail"]
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code != 0 and "MEDIA_ASSETS_API_TOKEN" in r.output


@pytest.mark.slow
def test_load_with_the_token_on_keeps_search_fast_and_clean(library):
    """500 mixed requests at concurrency 32, the token on (bench/bench_api.py, in its own
    process): no 5xx, the models within the budget, and p50/p95 per endpoint printed.
    Before: p95 4.15 s for everything, 11 s with a token (every request waited in the
    shared thread pool, where threads sat blocked on one process-wide model lock). The
    README's target, search p95 <= 500 ms, is for idle cores (bench/bench_api.py); a busy
    test run only asserts that search does better than the old server."""
    import torch

    token = "load-test-token-0123456789"
    settings = library[0].with_(api_token=token)
    from media_assets.lib.models import text_embedder

    threads, engine_threads = torch.get_num_threads(), text_embedder._THREADS[0]
    torch.set_num_threads(settings.api_torch_threads)  # as `media-assets serve` sets them
    text_embedder.limit_threads(settings.api_torch_threads)
    with Server(settings) as srv:
        run = subprocess.run(
            [sys.executable, str(Path(__file__).parents[1] / "bench" / "bench_api.py"),
             "--url", srv.url, "--requests", "500", "--concurrency", "32",
             "--max-seconds", "240", "--json"],
            env={**os.environ, "MEDIA_ASSETS_API_TOKEN": token}, capture_output=True,
            text=True, timeout=300)
        manager = srv.app.state.media.manager
        assert manager.peak_mb <= manager.budget_mb
    torch.set_num_threads(threads)
    text_embedder.limit_threads(engine_threads)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    print("\nload:", json.dumps(summary))
    assert summary["requests"] == 500, summary
    assert set(summary["statuses"]) == {"200"}, summary
    # The old server: p95 4.0 s for search, 11 s for everything with a token. With the
    # machine's load average at 9-13 on its 2 cores (other suites running) this one measured
    # search p95 2.7-4.7 s; the README's numbers come from bench/bench_api.py on quiet cores.
    assert summary["endpoints"]["search"]["p95_ms"] <= 8000, summary
    assert summary["all"]["p95_ms"] <= 8000, summary


@pytest.mark.slow
def test_one_budget_across_the_server_and_a_dagster_run(library, client, tmp_path):
    """A budget that fits one CLIP: the server holds CLIP, a Dagster run in another process
    needs CLIP too. Both finish; the models of both processes, as the ledger saw them every
    20 ms, never exceeded the budget; and the run had to wait for the server's idle CLIP to
    be unloaded (TTL)."""
    settings, root, env = library
    # The module's other server holds idle models in the same ledger: let them go first.
    client.app.state.media.manager.unload_all()
    from media_assets.lib.models.roles import ROLES

    # Every other model pinned small (their measured RSS would otherwise replace the
    # estimate): the budget fits CLIP and the small ones, never two CLIPs.
    fixed = {f"MEDIA_ASSETS_{role.upper()}_MB": "5" for role in ROLES}
    fixed.update({"MEDIA_ASSETS_CLIP_MB": "100", "MEDIA_ASSETS_CPU_BUDGET_MB": "150"})
    os.environ.update(fixed)
    try:
        settings = Settings.from_env().with_(api_idle_unload_s=2.0)
    finally:
        for k in fixed:
            os.environ.pop(k)
    engine = sa.create_engine(env["MEDIA_ASSETS_DATABASE_URL"])
    seen: list[tuple[float, int]] = []  # (MB leased by all processes, CLIP copies)
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            with engine.connect() as conn:
                seen.append(tuple(conn.execute(sa.text(
                    "SELECT coalesce(sum(mb), 0), count(*) FILTER (WHERE model = 'clip') "
                    "FROM model_leases")).one()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    new = tmp_path / "more"
    photo_groups(new, per_group=2, sources=("chelsea",))
    with Server(settings) as srv:
        import httpx

        assert httpx.get(f"{srv.url}/search", params={"q": "cat"}, timeout=60).status_code == 200
        assert "clip" in srv.app.state.media.manager.loaded()
        started = time.monotonic()
        # Without this module's random LLM: with it, the run would rename the shared
        # library's JSON (the LLM changed) with gibberish that other modules then search.
        run_env = {k: v for k, v in {**os.environ, **env, **fixed}.items()
                   if k != "MEDIA_ASSETS_LLM_MODEL"}
        run = subprocess.run([sys.executable, "-m", "media_assets.cli", "ingest", "-q",
                              "--no-clusters", str(new)],
                             env=run_env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        waited = time.monotonic() - started
        # The server needs CLIP again after the run: it gets it.
        assert httpx.get(f"{srv.url}/search", params={"q": "cat"}, timeout=60).status_code == 200
    stop.set()
    watcher.join()
    assert max(mb for mb, _ in seen) <= 150  # the budget held across both processes
    assert max(n for _, n in seen) == 1  # one CLIP at a time, and one was seen
    assert waited >= 1.5  # the run could not load CLIP before the server's TTL unload
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM image_embeddings e JOIN media_paths p "
                                    "ON p.key = e.key WHERE p.path LIKE :d"),
                            {"d": f"{new}%"}).scalar() == 2


ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.mark.slow
def test_the_page_in_a_real_browser(library):
    """Debian's chromium, driven by Playwright: type a query, see results with thumbnails,
    open a detail view, see a memo's transcript line, open the clusters; screenshots are
    saved under test-artifacts/."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.fail("the page test needs Debian's chromium: apt-get install chromium "
                    "(.ci/setup installs it when run as root)")
    ARTEFACTS.mkdir(exist_ok=True)
    with Server(library[0]) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(srv.url + "/")
        page.fill("#q", "rocket")
        page.click("button[type=submit]")
        page.wait_for_selector(".card img", timeout=60000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.card img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length >= 3", timeout=60000)
        assert "results for" in page.inner_text("#status")
        assert page.locator(".card").count() >= 3
        page.screenshot(path=str(ARTEFACTS / "search.png"), full_page=True)

        page.locator(".card", has=page.locator("img")).first.click()
        page.wait_for_selector("#detail[open] img", timeout=30000)
        detail = page.inner_text("#detail")
        assert "Caption" in detail and "Colours" in detail
        page.screenshot(path=str(ARTEFACTS / "detail.png"))
        page.click("#close")

        page.fill("#q", "launch tomorrow")
        page.click("button[type=submit]")
        line = page.wait_for_selector(".card .lines li", timeout=60000)
        assert "launch" in line.inner_text().lower() and ":" in line.inner_text()

        page.click("#nav-clusters")
        page.wait_for_function("() => /clusters,/.test("
                               "document.querySelector('#clusters-status').textContent)",
                               timeout=30000)
        page.screenshot(path=str(ARTEFACTS / "clusters.png"), full_page=True)
        browser.close()
    assert (ARTEFACTS / "search.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_page_logs_in_with_a_form_and_shows_pictures_through_the_cookie(library):
    """With a token set, the page's first request gets 401 and shows the login form; after
    logging in, results and their thumbnails load through the HttpOnly cookie, and the
    token appears in no URL the page requested and in nothing script can read."""
    from playwright.sync_api import sync_playwright

    token = "page-login-token-0123456789"
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.fail("the page test needs Debian's chromium: apt-get install chromium")
    with Server(library[0].with_(api_token=token)) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.goto(srv.url + "/")  # the library's first request asks for the token
        page.wait_for_selector("#login[open]", timeout=30000)
        page.fill("#login-token", "wrong-token")
        page.click("#login-form button[type=submit]")
        page.wait_for_function("() => /wrong token/.test("
                               "document.querySelector('#login-error').textContent)",
                               timeout=30000)
        page.fill("#login-token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#timeline a.tile img", timeout=60000)  # the library, in
        page.fill("#q", "rocket")
        page.click("button[type=submit]")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.card img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length >= 3", timeout=60000)
        assert not page.is_visible("#login")
        readable = page.evaluate("() => document.cookie + JSON.stringify(localStorage)")
        browser.close()
    assert token not in readable
    assert urls and not any(token in u or "token=" in u for u in urls), urls


def test_visual_calibration_is_the_corpus_statistic_and_a_full_sample_is_kept(library,
                                                                               monkeypatch):
    """The visual leg's (mean, std) is the query's cosine similarity to a sample of the
    corpus, as the SQL statistic gives it; a full sample is read once a minute, not per
    search (1000 vectors, 2 MB, each time)."""
    import numpy as np

    from media_assets.lib.db import open_catalog
    from media_assets.lib.search import legs

    catalog = open_catalog(library[0])
    monkeypatch.setattr(legs, "SAMPLE_ROWS", 3)  # this library's sample counts as full
    monkeypatch.setattr(legs, "_samples", {})
    rng = np.random.default_rng(0)
    with catalog.engine.begin() as conn:
        ref = conn.execute(sa.text("SELECT model_id FROM image_embeddings LIMIT 1")).scalar()
        reads = []
        sa.event.listen(conn, "before_cursor_execute",
                        lambda *a: reads.append(a[2]) if "embedding::text" in a[2] else None)
        for _ in range(3):
            q = rng.normal(size=512).astype(np.float32)
            _, (mean, std) = legs.visual(conn, q, ref, 10)
            want = conn.execute(sa.text(
                "SELECT avg(1 - (embedding <=> CAST(:q AS vector))), "
                "stddev_samp(1 - (embedding <=> CAST(:q AS vector))) FROM (SELECT embedding "
                "FROM image_embeddings WHERE model_id = :m LIMIT 3) s"),
                {"q": legs.to_pgvector(q), "m": ref}).one()
            assert abs(mean - want[0]) < 1e-5 and abs(std - want[1]) < 1e-5
        assert len(reads) == 1  # read once, then kept
        # A library smaller than the sample: compared on the server, nothing kept.
        monkeypatch.setattr(legs, "SAMPLE_ROWS", 1000)
        monkeypatch.setattr(legs, "_samples", {})
        q = rng.normal(size=512).astype(np.float32)
        _, (mean, std) = legs.visual(conn, q, ref, 10)
        want = conn.execute(sa.text(
            "SELECT avg(1 - (embedding <=> CAST(:q AS vector))), "
            "stddev_samp(1 - (embedding <=> CAST(:q AS vector))) FROM image_embeddings "
            "WHERE model_id = :m"), {"q": legs.to_pgvector(q), "m": ref}).one()
        assert abs(mean - want[0]) < 1e-5 and abs(std - want[1]) < 1e-5
        assert len(reads) == 1 and legs._samples == {}
    catalog.dispose()
