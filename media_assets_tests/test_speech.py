"""Transcripts with the real faster-whisper base model on espeak-ng speech; video timelines;
search over spoken words."""

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from media_assets.lib.files.store import FileStore
from media_assets.cli import main
from media_assets.defs.jobs import PER_FILE_ASSETS
from media_assets.defs.partitions import media_files, range_tags
from media_assets.defs.resources import resources_from_settings
from media_assets.lib.speech.store import transcript_of
from media_assets.lib.video.store import frames_of
from media_assets.lib.files.inbox import register, walk
from media_assets.lib.speech.transcribe import transcribe
from media_assets.lib.samples import encode_audio, encode_video, read_wav, speech, write_wav
from media_assets_tests.conftest import use_models

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Local models keep your media private and fast.",
    "We walked along the river to the old stone bridge before dinner.",
    "The museum opens at nine in the morning on weekdays.",
]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(ref: str, hyp: str) -> float:
    r, h = _words(ref), _words(hyp)
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)] / max(1, len(r))


@pytest.fixture(scope="session")
def whisper_model(tiny_models):
    from media_assets.lib.models.loaders import load_whisper

    return load_whisper(tiny_models / "Systran--faster-whisper-base", "cpu")


@pytest.fixture(scope="session")
def english_wav(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    return speech(" ".join(SENTENCES), folder / "english.wav")


@pytest.mark.slow
def test_english_wer_and_ordered_timestamps(whisper_model, english_wav):
    t = transcribe(whisper_model, str(english_wav))
    assert wer(" ".join(SENTENCES), t.text) <= 0.15, t.text
    assert t.language == "en" and t.language_probability > 0.5
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    assert all(0 <= s.start <= s.end <= t.duration_s + 0.5 for s in t.segments)


@pytest.mark.parametrize("voice,lang,text", [
    ("de", "de", "Guten Morgen. Heute gehen wir mit den Kindern in den Park und essen Kuchen."),
    ("es", "es", "Buenos días. Mañana vamos a la playa con nuestros amigos y comemos pescado."),
])
def test_other_languages_are_detected(whisper_model, tmp_path, voice, lang, text):
    t = transcribe(whisper_model, str(speech(text, tmp_path / f"{voice}.wav", voice)))
    assert t.language == lang


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".flac", ".ogg", ".opus", ".wav"])
def test_every_format_decodes(whisper_model, english_wav, tmp_path, suffix):
    samples, rate = read_wav(english_wav)
    path = encode_audio(tmp_path / f"speech{suffix}", samples[: rate * 4], rate)
    t = transcribe(whisper_model, str(path), language="en")
    assert "fox" in _words(t.text) or "brown" in _words(t.text), t.text


def test_silence_gives_an_empty_transcript(whisper_model, tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 8, dtype=np.float32))
    t = transcribe(whisper_model, str(path))
    assert t.text == "" and t.segments == []


def test_corrupt_audio_raises(whisper_model, tmp_path):
    path = tmp_path / "bad.mp3"
    path.write_bytes(b"ID3" + bytes(range(256)) * 40)
    with pytest.raises(Exception):
        transcribe(whisper_model, str(path))


@pytest.mark.slow
def test_long_audio_is_chunked_with_progress(whisper_model, english_wav, tmp_path):
    samples, rate = read_wav(english_wav)
    long = np.concatenate([samples, np.zeros(rate * 2, np.float32), samples])
    path = write_wav(tmp_path / "long.wav", long, rate)
    progress = []
    t = transcribe(whisper_model, str(path), chunk_seconds=15,
                   on_progress=lambda done, total: progress.append((done, total)))
    assert len(progress) >= 2 and progress[-1][0] == pytest.approx(progress[-1][1], abs=0.1)
    assert [s.start for s in t.segments] == sorted(s.start for s in t.segments)
    assert t.segments[-1].end > 15  # later chunks carry their offset


_DECODE_SCRIPT = """
import json, sys, psutil
import av  # imported before the baseline: its own size is not decoded audio
from media_assets.lib.speech.audio import stream_chunks
p = psutil.Process(); base = p.memory_info().rss; peak = 0; longest = 0; total = 0
for off, chunk in stream_chunks(sys.argv[1], 300):
    longest = max(longest, len(chunk)); total += len(chunk)
    peak = max(peak, p.memory_info().rss - base)
print(json.dumps({"peak_mb": peak / 2**20, "longest": longest, "total": total}))
"""


def test_one_hour_file_is_never_decoded_whole(tmp_path):
    path = write_wav(tmp_path / "hour.wav", np.zeros(16000 * 3600, dtype=np.float32))
    out = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, str(path)], check=True,
                         capture_output=True, text=True).stdout
    import json

    m = json.loads(out.strip().splitlines()[-1])
    assert m["total"] == 16000 * 3600 and m["longest"] == 16000 * 300
    assert m["peak_mb"] < 100  # the whole hour as float32 would be 230 MB


@pytest.fixture
def speech_video(english_wav, tmp_path) -> Path:
    samples, rate = read_wav(english_wav)
    duration = len(samples) / rate
    cat = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((160, 120)))
    rocket = np.asarray(Image.fromarray(skimage.data.rocket()).resize((160, 120)))
    n = int(duration)  # one frame a second
    frames = [cat if i < n // 2 else rocket for i in range(n)]
    folder = tmp_path / "videos"
    folder.mkdir()
    return encode_video(folder / "holiday clip.mp4", frames, fps=1.0, audio=samples, rate=rate)


@pytest.mark.slow
def test_video_frames_transcript_summary_and_spoken_search(settings, catalog, tiny_models,
                                                            speech_video, monkeypatch):
    settings = use_models(settings, monkeypatch, tiny_models)
    keys = register(FileStore(catalog.engine), walk([speech_video]))[0].new_keys
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(media_files.name, keys)
        result = dg.materialize(PER_FILE_ASSETS, instance=instance, tags=range_tags(keys),
                                resources=resources_from_settings(settings))
    assert result.success
    key = keys[0]
    frames = frames_of(catalog.engine, key)
    interval = [f["frame_ms"] for f in frames if f["reason"] == "interval"]
    assert interval[:3] == [0, 2000, 4000]  # a frame every 2 s, at its timestamp
    assert all(f["caption"] for f in frames)
    t = transcript_of(catalog.engine, key)  # the transcribe response (docs/contracts.md), read back
    assert set(t) >= {"text", "language", "segments", "processing_time_ms"}
    assert t["language"] == "en" and wer(" ".join(SENTENCES), t["text"]) <= 0.2
    out = CliRunner().invoke(main, ["search", "museum", "--kind", "video", "--json"])
    assert out.exit_code == 0, out.output
    import json

    hits = json.loads(out.stdout)
    assert hits and all(h["path"].endswith("holiday clip.mp4") for h in hits)
    spoken = next(h for h in hits if "speech" in h["source"])
    museum = next(s for s in t["segments"] if "museum" in s["text"].lower())
    assert spoken["timestamp_s"] == pytest.approx(museum["start"], abs=0.01)
    assert "museum" in spoken["caption"].lower()
    mats = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {"transcripts", "video_frames", "video_summary"} <= mats


@pytest.mark.slow
def test_word_timestamps_when_asked(whisper_model, english_wav):
    t = transcribe(whisper_model, str(english_wav), word_timestamps=True, batch_size=8)
    words = [w for s in t.segments for w in s.words]
    assert len(words) >= 30
    assert all(s.start - 0.05 <= w["start"] <= w["end"] <= s.end + 0.05
               for s in t.segments for w in s.words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    plain = transcribe(whisper_model, str(english_wav))
    assert all(s.words is None for s in plain.segments)
