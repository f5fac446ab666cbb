"""Search that finds what people mean: exact words beat unrelated likenesses, one moment
counts once, every filter, captions and names; with real speech, real photos and the tiny
(random) CLIP, whose visual leg is noise by construction."""

import json

import numpy as np
import pytest
import skimage.data
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from media_assets.cli import main
from media_assets.lib.samples import encode_video, solid_image, speech, tone
from media_assets.lib.search.legs import LegHit
from media_assets.lib.search.query import fuse


def _search(*args):
    out = CliRunner().invoke(main, ["search", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@pytest.mark.slow
def test_words_beat_unrelated_likenesses_and_every_filter_holds(settings, catalog, tiny_models,
                                                                tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    lib = tmp_path / "library"
    (lib / "memos").mkdir(parents=True)
    (lib / "photos").mkdir()
    speech("Remember to buy tomatoes and call the plumber tomorrow morning.",
           lib / "memos" / "errands.wav")
    speech("Guten Morgen. Heute nehmen wir den Zug nach Berlin und essen im Zug Kuchen.",
           lib / "memos" / "reise.wav", voice="de")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(
            lib / "photos" / f"{name}.jpg")
    solid_image(lib / "photos" / "holiday beach.jpg", (30, 120, 200),
                exif={"taken": "2021:08:01 10:00:00"})
    frames = [np.asarray(Image.fromarray(skimage.data.chelsea()).resize((96, 64)))] * 6
    encode_video(lib / "cat video.mp4", frames, fps=1.0, audio=tone(6.0, 300))
    out = CliRunner().invoke(main, ["ingest", "-q", str(lib)])
    assert out.exit_code == 0, out.output

    # The two queries that failed: the memo that says the words comes first.
    hits = _search("tomatoes plumber")
    assert hits[0]["path"].endswith("errands.wav") and "speech" in hits[0]["source"]
    assert "tomatoes" in hits[0]["caption"].lower()
    assert hits[0]["why"]["speech"]["at_s"] is not None
    hits = _search("Zug nach Berlin")
    assert hits[0]["path"].endswith("reise.wav")
    # Nothing said or written matches: the nearest images still come, after nothing better.
    assert len(_search("a photo of a cat", "-k", "3")) == 3
    # As text, only what matched is a result; a memo merely nearest in meaning, scored 0,
    # is not listed (it was, as "0.0000 [audio, meaning]").
    text = CliRunner().invoke(main, ["search", "tomatoes plumber"]).output
    assert text.lstrip().startswith("1.") and "errands.wav" in text.splitlines()[0]
    assert "0.0000" not in text and "reise.wav" not in text
    assert CliRunner().invoke(main, ["search", "xqzzyv blorf"]).output.startswith(
        'nothing matched "xqzzyv blorf"')

    # A caption match (known captions stored, as a real captioner would write them).
    with catalog.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE image_analysis a SET caption = 'a red bicycle leaning on a garden fence' "
            "FROM media_files f WHERE f.key = a.key AND f.primary_path LIKE '%coffee.jpg'"))
    hits = _search("bicycle")
    assert hits[0]["path"].endswith("coffee.jpg") and "caption" in hits[0]["source"]
    # File and folder names, tokenised.
    assert _search("holiday")[0]["path"].endswith("holiday beach.jpg")
    assert {h["path"].rsplit("/", 1)[-1] for h in _search("memos", "-k", "5")
            if "name" in h["source"]} == {"errands.wav", "reise.wav"}

    # Filters, each on its own.
    assert {h["kind"] for h in _search("tomatoes", "--kind", "image")} <= {"image"}
    assert all(h["kind"] == "audio" for h in _search("Berlin", "--kind", "audio"))
    assert all("/photos/" in h["path"] for h in _search("cat", "--under", str(lib / "photos")))
    assert [h["path"].rsplit("/", 1)[-1] for h in _search(
        "holiday", "--after", "2021-07-01", "--before", "2021-09-01")] == ["holiday beach.jpg"]
    assert _search("holiday", "--before", "2021-07-01") == []
    long_ones = _search("Berlin tomatoes cat", "--min-duration", "4.5")
    assert long_ones and all(not h["path"].endswith((".jpg", ".png")) for h in long_ones)
    for h in _search("Berlin tomatoes cat", "--max-duration", "1"):
        assert False, f"nothing here is that short: {h['path']}"
    german = _search("Zug", "--lang", "de")
    assert german and all(h["path"].endswith("reise.wav") for h in german)
    # Hostile syntax is words, never an error.
    for q in ['"', "-", "OR", ":", "'; DROP TABLE media_files; --", "a & b | !c", "\\"]:
        assert isinstance(_search(q), list)
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM media_files")).scalar() > 0


def _leg(leg, key, frame_ms, strength, text=None):
    return LegHit(leg, key, f"/{key}", "video" if frame_ms >= 0 else "image", frame_ms,
                  strength, text)


def test_a_moment_counts_once_and_noise_contributes_nothing():
    # mean 0.2, spread 0.02: z = 3 at 0.26, z = 4 at 0.28, z = 1 at 0.22.
    calibration = (0.2, 0.02)
    frames = [_leg("visual", "video", ms, 0.26) for ms in (0, 1000, 2000, 3000, 4000)]
    single = [_leg("visual", "photo", -1, 0.28)]
    noise = [_leg("visual", "noise", -1, 0.22)]
    hits = fuse({"visual": frames + single + noise}, calibration, 10)
    assert [h.key for h in hits] == ["photo", "video", "noise"]  # max over frames, not sum
    assert hits[1].fused == round(1 / 3, 6) and hits[2].fused == 0
    spoken = fuse({"visual": single, "speech": [_leg("speech", "memo", 12000, 0.1, "words")]},
                  calibration, 10)
    assert spoken[0].key == "memo" and spoken[0].why["speech"]["at_s"] == 12.0
