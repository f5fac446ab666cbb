"""Speakers and text in pictures as a person uses them: naming a voice from the CLI, search
by speaker (CLI and API), transcripts in turns (CLI and the API's file record), and the
services' `diarize` option and `text` task. Real models: Whisper base, the GE2E encoder
(Resemblyzer's weights) and PP-OCRv6 (rapidocr); one small catalogue per module."""

import base64
import json
import re

import dagster as dg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from media_assets.api.app import create_app
from media_assets.cli import main
from media_assets.defs.assets.files import media_file
from media_assets.defs.assets.picture_text import image_text
from media_assets.defs.assets.speakers import speakers
from media_assets.defs.assets.images import image_embeddings
from media_assets.defs.assets.speech import transcripts
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.db import open_catalog
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.files.store import FileStore
from media_assets.lib.images.synthetic_text import screenshot
from media_assets.lib.settings import Settings
from media_assets.lib.speech.speaker_store import speakers_of
from media_assets.lib.speech.store import transcript_of
from media_assets.lib.speech.synthetic import VOICES, conversation
from media_assets_tests.conftest import fresh_databases

# The whole module shares one ingest (Whisper, GE2E and OCR over three files: ~20-30 s).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lib(pg_server, db_templates, tiny_models, tmp_path_factory):
    """A two-voice interview, a recording of the interviewer's voice alone (the same
    conversations as test_speakers.py, whose naming carries over at these seeds) and a
    screenshot, through media_file, transcripts, speakers and image_text."""
    folder = tmp_path_factory.mktemp("wiring")
    conversation(folder / "interview.wav", 2, 6, seed=7, voices=VOICES[:2])
    conversation(folder / "one speaker.wav", 1, 3, seed=8, voices=VOICES[:1])
    lines = screenshot(folder / "screen.png")
    _, url, dagster_url = fresh_databases(pg_server, db_templates, "t_wiring_")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"MEDIA_ASSETS_HOME": str(tmp_path_factory.mktemp("home")),
                     "MEDIA_ASSETS_INBOX": str(folder), "MEDIA_ASSETS_DATABASE_URL": url,
                     "MEDIA_ASSETS_DAGSTER_DATABASE_URL": dagster_url,
                     "MEDIA_ASSETS_MODEL_DIR": str(tiny_models)}.items():
            mp.setenv(k, v)
        settings = Settings.from_env()
        catalog = open_catalog(settings)
        keys = register(FileStore(catalog.engine), walk([folder]))[0].new_keys
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(media_files.name, keys)
            # CLIP too: the screenshot is then a visual hit that a speaker filter must drop.
            result = dg.materialize([media_file, transcripts, speakers, image_text,
                                     image_embeddings],
                                    instance=instance, tags=range_tags(keys),
                                    resources=resources_from_settings(settings))
        assert result.success
        store = FileStore(catalog.engine)
        by_name = {store.get([k])[k].primary_path.rsplit("/", 1)[-1]: k for k in keys}
        yield {"settings": settings, "engine": catalog.engine, "folder": folder,
               "keys": by_name, "screen_lines": lines}
        catalog.dispose()


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_a_name_given_once_in_the_cli_follows_the_voice(lib):
    folder, keys = lib["folder"], lib["keys"]
    code, out = cli("speakers", "name", str(folder / "one speaker.wav"), "S1", "Ana")
    assert code == 0, out
    # The interviewer's voice in the interview carries the name: one of its two speakers.
    assert "interview.wav" in out and "1 other file" in out, out
    named = [s for s in speakers_of(lib["engine"], keys["interview.wav"])["speakers"]
             if s["name"] == "Ana"]
    assert len(named) == 1, out
    code, out = cli("speakers", "show", str(folder / "interview.wav"))
    assert code == 0 and f"Ana ({named[0]['label']})" in out, out
    # The transcript in turns: the name where the voice speaks, the other label elsewhere.
    code, out = cli("transcript", str(folder / "interview.wav"))
    other = {"S1", "S2"} - {named[0]["label"]}
    assert code == 0 and f"Ana ({named[0]['label']}):" in out, out
    assert re.search(rf"\] {other.pop()}: \w", out), out
    # A label the file does not have is refused, with the labels it has.
    code, out = cli("speakers", "name", keys["one speaker.wav"], "S4", "Bo")
    assert code != 0 and "no speaker S4" in out and "S1" in out, out


def _spoken_word(lib) -> str:
    """A long word Whisper heard in the interview (so the transcript leg finds it)."""
    text = transcript_of(lib["engine"], lib["keys"]["interview.wav"])["text"]
    return max(re.findall(r"[A-Za-z]{5,}", text), key=len)


def test_search_by_speaker_in_the_cli_and_the_api(lib):
    keys = lib["keys"]
    code, _ = cli("speakers", "name", keys["one speaker.wav"], "S1", "Ana")
    assert code == 0
    word = _spoken_word(lib)
    code, out = cli("search", word, "--speaker", "ana", "--json")
    assert code == 0, out
    found = {h["key"] for h in json.loads(out[out.index("["):])}
    assert keys["interview.wav"] in found, out
    assert found <= {keys["interview.wav"], keys["one speaker.wav"]}, out
    # S2 is a label only the interview has; a name nobody has finds nothing and says so.
    code, out = cli("search", word, "--speaker", "S2", "--json")
    assert {h["key"] for h in json.loads(out[out.index("["):])} == {keys["interview.wav"]}, out
    r = CliRunner().invoke(main, ["search", word, "--speaker", "Nobody"])
    assert r.exit_code == 0 and "no speaker is named 'Nobody'" in r.output, r.output
    with TestClient(create_app(lib["settings"]), base_url="http://127.0.0.1") as client:
        body = client.get("/search", params={"q": word, "speaker": "Ana"}).json()
        assert {r["key"] for r in body["results"]} >= {keys["interview.wav"]}, body
        assert all(h["key"] in (keys["interview.wav"], keys["one speaker.wav"])
                   for h in body["hits"]), body
        none = client.get("/search", params={"q": word, "speaker": "Nobody"}).json()
        assert none["results"] == [] and any("Nobody" in n for n in none["notes"]), none


def test_the_file_record_shows_speaker_turns_and_the_text_in_a_picture(lib):
    keys = lib["keys"]
    with TestClient(create_app(lib["settings"]), base_url="http://127.0.0.1") as client:
        rec = client.get(f"/files/{keys['interview.wav']}").json()
        assert rec["speakers"]["speaker_count"] == 2, rec["speakers"]
        turns = rec["speakers"]["turns"]
        assert [t["speaker"] for t in turns[:2]] == ["S1", "S2"] and all(
            t["text"] for t in turns), turns
        assert {t["speaker"] for t in turns} == {"S1", "S2"}, turns
        said = re.findall(r"\w+", rec["transcript"]["text"].lower())
        assert re.findall(r"\w+", " ".join(t["text"] for t in turns).lower()) == said, turns
        # Whisper's segments can hold several turns: each says whose voice is most of it.
        segs = rec["transcript"]["segments"]
        assert segs and {s["speaker"] for s in segs} <= {"S1", "S2"}, segs
        assert rec["picture_text"] is None
        shot = client.get(f"/files/{keys['screen.png']}").json()
        assert shot["speakers"] is None and shot["picture_text"]["is_document"], shot
        read = shot["picture_text"]["texts"][0]["text"]
        assert "Dentist appointment tomorrow" in read, read


def test_transcribe_diarize_gives_a_speaker_per_segment(lib):
    audio = base64.b64encode((lib["folder"] / "interview.wav").read_bytes()).decode()
    # A voice named in the catalogue (the one-speaker file's) is named in the answer too.
    assert cli("speakers", "name", lib["keys"]["one speaker.wav"], "S1", "Ana")[0] == 0
    with TestClient(create_app(lib["settings"]), base_url="http://127.0.0.1") as client:
        r = client.post("/transcribe", json={"audio": audio, "options": {"diarize": True}})
        assert r.status_code == 200, r.text
        body = r.json()
        segs = body["segments"]
        assert [s["speaker"] for s in segs][:2] == ["S1", "S2"], segs
        assert all(s["text"] and s["start"] < s["end"] and "words" not in s for s in segs)
        assert [s["label"] for s in body["speakers"]] == ["S1", "S2"], body["speakers"]
        # Cut at turn changes, the segments still say everything Whisper heard.
        words = re.findall(r"\w+", body["text"].lower())
        assert re.findall(r"\w+", " ".join(s["text"] for s in segs).lower()) == words
        assert sorted(map(str, (s["name"] for s in body["speakers"]))) == ["Ana", "None"], \
            body["speakers"]
        short = base64.b64encode((lib["folder"] / "one speaker.wav").read_bytes()).decode()
        plain = client.post("/transcribe", json={"audio": short}).json()  # the seed's shape
        assert "speakers" not in plain and all("speaker" not in s for s in plain["segments"])


def test_analyze_image_reads_the_text_in_a_picture(lib):
    image = base64.b64encode((lib["folder"] / "screen.png").read_bytes()).decode()
    with TestClient(create_app(lib["settings"]), base_url="http://127.0.0.1") as client:
        r = client.post("/analyze-image", json={"image": image, "tasks": ["text"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["caption"] is None and body["objects"] is None
        text = body["text"]
        assert "Dentist appointment tomorrow at 9:30" in text["text"], text
        assert text["is_document"] and text["language"] == "en", text
        line = next(x for x in text["lines"] if "invoice" in x["text"])
        assert 0.5 < line["confidence"] <= 1 and len(line["box"]) == 4, line
        xs = [p[0] for p in line["box"]]
        assert 0 <= min(xs) < max(xs) <= 1280, line  # the screenshot's own pixels
        seed = client.post("/analyze-image", json={"image": image, "tasks": ["colors"]})
        assert seed.json()["text"] is None and seed.json()["dominant_colors"]


def test_the_page_shows_speaker_turns_and_a_screenshots_text(lib):
    import shutil

    from playwright.sync_api import sync_playwright

    from media_assets_tests.live_server import Server

    keys = lib["keys"]
    assert cli("speakers", "name", keys["one speaker.wav"], "S1", "Ana")[0] == 0
    with Server(lib["settings"]) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium")
                                    or "/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{srv.url}/?open={keys['interview.wav']}")
        page.wait_for_selector("#detail .transcript .who")
        who = page.eval_on_selector_all("#detail .transcript .who",
                                        "els => els.map(e => e.textContent)")
        assert "Ana: " in who and len(set(who)) == 2, who  # the named voice, the other's label
        assert "2 speakers" in page.inner_text("#detail h3:has-text('Transcript')")
        page.goto(f"{srv.url}/?open={keys['screen.png']}")
        page.wait_for_selector("#detail h3:has-text('document or screenshot')")
        assert "Dentist appointment tomorrow" in page.inner_text("#detail pre.note")
        browser.close()
    assert not errors, errors
