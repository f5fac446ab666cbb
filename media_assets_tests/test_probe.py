"""Kind detection and per-kind facts, on real files decoded by real decoders."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import vega_datasets

from media_assets.lib.files.probe import Limits, ProbeError, probe_file
from media_assets.lib.samples import encode_audio, encode_video, png_bomb, solid_image, tone, write_wav

SKIMAGE = Path(skimage.data.__file__).parent
VEGA = Path(vega_datasets.__file__).parent / "_data"


def _verdict(path: Path, limits: Limits = Limits()) -> tuple[str, str]:
    try:
        return probe_file(path, limits).kind, "ok"
    except ProbeError as exc:
        return exc.kind, exc.status


@pytest.mark.parametrize("name", ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                  "camera.png", "hubble_deep_field.jpg"])
def test_real_photos_are_images_with_dimensions(name):
    probe = probe_file(SKIMAGE / name)
    assert probe.kind == "image"
    assert probe.mime_type in ("image/png", "image/jpeg")
    assert probe.details["width"] > 100 and probe.details["height"] > 100


def test_kind_comes_from_content_not_name(tmp_path):
    disguised = tmp_path / "holiday.txt"
    shutil.copy(SKIMAGE / "rocket.jpg", disguised)
    assert probe_file(disguised).kind == "image"
    no_ext = tmp_path / "memo"
    write_wav(no_ext, tone(1.0))
    assert probe_file(no_ext).kind == "audio"


def test_exif_taken_at_camera_gps_orientation(tmp_path):
    path = solid_image(tmp_path / "p.jpg", exif={"camera": ("FUJIFILM", "X-T3"),
                       "taken": "2023:05:01 18:45:10", "gps": (-33.8568, 151.2153),
                       "orientation": 6})
    probe = probe_file(path)
    exif = probe.details["exif"]
    assert exif["camera"] == "FUJIFILM X-T3"
    assert exif["taken_at"] == "2023-05-01T18:45:10"
    assert exif["orientation"] == 6
    assert exif["gps"]["lat"] == pytest.approx(-33.8568, abs=1e-4)
    assert exif["gps"]["lon"] == pytest.approx(151.2153, abs=1e-4)
    assert probe.taken_at.year == 2023


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"])
def test_audio_formats_report_duration_and_codec(tmp_path, suffix):
    path = encode_audio(tmp_path / f"a{suffix}", tone(3.0))
    probe = probe_file(path)
    assert probe.kind == "audio"
    assert probe.details["duration_s"] == pytest.approx(3.0, abs=0.15)
    assert probe.details["streams"][0]["type"] == "audio"
    assert probe.details["streams"][0]["codec"]


def test_video_reports_streams(tmp_path):
    frames = [np.full((64, 80, 3), v, np.uint8) for v in (10, 200, 90)]
    probe = probe_file(encode_video(tmp_path / "v.mp4", frames, fps=1, audio=tone(3.0)))
    assert probe.kind == "video"
    types = sorted(s["type"] for s in probe.details["streams"])
    assert types == ["audio", "video"]
    video = next(s for s in probe.details["streams"] if s["type"] == "video")
    assert (video["width"], video["height"]) == (80, 64)
    assert probe.details["duration_s"] == pytest.approx(3.0, abs=0.2)


def test_truncated_audio_is_failed(tmp_path):
    # FLAC's header states the total length, so a file cut short is caught: its data stops
    # long before the declared end.
    path = encode_audio(tmp_path / "long.flac", tone(20.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 4])
    with pytest.raises(ProbeError, match=r"truncated audio|corrupt audio data") as err:
        probe_file(path)
    assert (err.value.kind, err.value.status) == ("audio", "failed")


@pytest.mark.parametrize("name,records", [("cars.json", 406), ("iris.json", 150),
                                          ("barley.json", 120)])
def test_vega_json_record_counts(name, records):
    probe = probe_file(VEGA / name)
    assert probe.kind == "json" and probe.details["format"] == "json"
    assert probe.details["records"] == records
    assert probe.details["shape"].startswith(f"array of {records} object")


def test_ndjson_with_a_bad_line(tmp_path):
    lines = [json.dumps({"n": i}) for i in range(9)]
    lines.insert(4, '{"n": oops}')
    path = tmp_path / "log"
    path.write_text("\n".join(lines))
    probe = probe_file(path)
    assert probe.kind == "json" and probe.details["format"] == "ndjson"
    assert probe.details["records"] == 9
    assert probe.details["invalid_lines"] == [5]


def test_deeply_nested_json(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200 + "]" * 200)
    probe = probe_file(path)
    assert probe.kind == "json"
    hostile = tmp_path / "deeper.json"
    hostile.write_text("[" * 100_000 + "]" * 100_000)
    assert _verdict(hostile) == ("json", "failed")


def test_an_object_of_records_keyed_by_id_is_records_and_a_document_is_not(tmp_path):
    """A Firebase-style export `{"u0000": {...}, ...}` was one JSONB row with every id a
    "field"; a settings document with a few sections stays one document."""
    users = tmp_path / "users_by_id.json"
    users.write_text(json.dumps({f"u{i:04d}": {"name": f"User {i}", "age": 20 + i}
                                 for i in range(60)}))
    details = probe_file(users).details
    assert (details["records"], details["records_map"]) == (60, "id"), details
    with_id = tmp_path / "with_id.json"
    with_id.write_text(json.dumps({str(i): {"id": i, "v": "x"} for i in range(12)}))
    assert probe_file(with_id).details["records_map"] == "key"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({f"section{i}": {f"option{i}": True} for i in range(12)}))
    assert probe_file(config).details["records"] == 1
    assert "records_map" not in probe_file(config).details


def test_text_encoding_and_length(tmp_path):
    path = tmp_path / "latin1"
    line = "Café crème, déjà vu à Montréal.\n"
    path.write_bytes(line.encode("latin-1") * 20)
    probe = probe_file(path)
    assert probe.kind == "text"
    assert probe.details["characters"] == len(line) * 20
    assert probe.details["encoding"] == "cp1252"


@pytest.mark.parametrize("text,encoding", [
    ("Réunion à la café: crème brûlée for grand-mère's birthday", "latin-1"),
    ("Señor, mañana comemos piñatas", "latin-1"),
    ("Naïve café", "latin-1"),
    ("Prêt à midi — 20 € the crêpes", "cp1252"),
    ("Zażółć gęślą jaźń, to jest polski tekst o żółwiach i pogodzie", "cp1250"),
    ("Привет, как дела? Это русский текст о погоде на завтра", "cp1251"),
])
def test_a_note_not_in_utf8_reads_back_as_written(tmp_path, text, encoding):
    """Before: short French and Spanish notes in Latin-1 were read as Windows-1250 or as
    Urdu ("crčme brűlée", "Naﺅve cafﻠ"), and stored, embedded and indexed that way."""
    path = tmp_path / "note.txt"
    path.write_bytes(text.encode(encoding))
    probe = probe_file(path)
    assert probe.kind == "text"
    assert path.read_bytes().decode(probe.details["encoding"]) == text, probe.details


@pytest.mark.parametrize("name,content", [
    ("todo.md", "[ ] water the orchids\n[x] pay the bill\n"),
    ("link.md", "[Recipe](https://example.org/x) for dinner\n"),
    ("brace.txt", "{draft} Letter to the landlord\n"),
    ("list.txt", "[1] first point\n[2] second point\n"),
])
def test_a_note_that_only_opens_like_json_is_text(tmp_path, name, content):
    """Before: a Markdown task list or a note opening with a link failed as "invalid
    JSON" and dropped out of search."""
    path = tmp_path / name
    path.write_text(content)
    assert probe_file(path).kind == "text"


def test_a_json_file_that_does_not_parse_stays_a_broken_json_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text("[ ] water the orchids\n")
    with pytest.raises(ProbeError, match="invalid JSON") as err:
        probe_file(path)
    assert err.value.kind == "json" and err.value.status == "failed"


def test_a_note_with_a_stray_nul_is_text_and_a_binary_is_not(tmp_path):
    """Before: one NUL byte made a note "unsupported file type"."""
    note = tmp_path / "nul.txt"
    note.write_bytes(b"Meeting notes about the quarterly budget\0 review with finance.")
    assert probe_file(note).kind == "text"
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ProbeError) as err:
        probe_file(binary)
    assert err.value.status == "unsupported"


def test_bomb_is_refused_before_decoding(tmp_path):
    path = png_bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 200_000
    with pytest.raises(ProbeError) as err:
        probe_file(path)
    assert err.value.status == "refused" and "30000x30000" in str(err.value) or \
        "900000000" in str(err.value)
    # Under Pillow's own threshold, our limit still refuses without decoding.
    small = png_bomb(tmp_path / "big.png", side=12000)
    with pytest.raises(ProbeError, match="too large: 12000x12000"):
        probe_file(small, Limits(max_image_pixels=100_000_000))


def test_permission_denied_is_reported(tmp_path, monkeypatch):
    path = solid_image(tmp_path / "secret.jpg")
    os.chmod(path, 0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        real_open = open

        def deny(p, *a, **k):
            if str(p) == str(path):
                raise PermissionError(13, "Permission denied")
            return real_open(p, *a, **k)
        monkeypatch.setattr("builtins.open", deny)
        real_os_open = os.open  # the probe's first read opens as hashing does (os.open)

        def deny_os(p, *a, **k):
            if str(p) == str(path):
                raise PermissionError(13, "Permission denied")
            return real_os_open(p, *a, **k)
        monkeypatch.setattr("os.open", deny_os)
    with pytest.raises(ProbeError, match="permission denied") as err:
        probe_file(path)
    assert err.value.status == "failed"


def test_sample_folder_verdicts(sample_folder):
    folder, expected = sample_folder
    for name, want in expected.items():
        if want.endswith("refused") and (folder / name).is_symlink():
            continue  # symlinks are judged by the walker (test_inbox)
        assert "/".join(_verdict(folder / name)) == want, name


def test_a_utf16_json_file_is_json_and_its_records_load(tmp_path):
    """Before: a UTF-16 `.json` (with its BOM, as Windows tools write it) was taken for
    text by its first bytes, so no table was ever made of it."""
    from media_assets.lib.files.kinds import document_kind, possible_kinds
    from media_assets.lib.json_docs.load import read_records

    records = [{"id": i, "name": f"café {i}"} for i in range(5)]
    for encoding in ("utf-16", "utf-16-be"):
        path = tmp_path / f"{encoding}.json"
        data = json.dumps(records, ensure_ascii=False).encode(encoding)
        path.write_bytes(data if encoding == "utf-16" else b"\xfe\xff" + data)
        assert document_kind(path.read_bytes()[:64]) == "json"
        assert possible_kinds(str(path), peek=True) == {"json"}
        probe = probe_file(path)
        assert probe.kind == "json" and probe.details["records"] == 5, probe.details
        assert read_records(path, probe.details) == (records, [])
    assert document_kind("a note".encode("utf-16")) == "text"
