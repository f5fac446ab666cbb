"""Real sample media, made locally: a folder to try the catalog on, and the tests' inputs.

Everything is written with real encoders (Pillow, PyAV, zlib), so the decoders that read it
back are exercised for real. Broken files are broken the way real ones are: cut short,
overwritten, lying in their headers.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def solid_image(path: Path, color=(200, 40, 40), size=(320, 240), exif: dict | None = None,
                fmt: str | None = None) -> Path:
    img = Image.new("RGB", size, color)
    kwargs = {}
    if exif:
        e = Image.Exif()
        if "camera" in exif:
            e[271], e[272] = exif["camera"]
        if "taken" in exif:
            e.get_ifd(0x8769)[36867] = exif["taken"]
        if "orientation" in exif:
            e[274] = exif["orientation"]
        if "gps" in exif:
            lat, lon = exif["gps"]
            def dms(v):
                v = abs(v)
                d = int(v); m = int((v - d) * 60); s = round(((v - d) * 60 - m) * 60, 4)
                return (float(d), float(m), float(s))
            gps = e.get_ifd(0x8825)
            gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
            gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
        kwargs["exif"] = e
    img.save(path, format=fmt, **kwargs)
    return path


def tone(seconds: float, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


_AUDIO_CODECS = {".mp3": ("mp3", "mp3", "s16p"), ".flac": ("flac", "flac", "s16"),
                 ".ogg": ("ogg", "vorbis", "fltp"), ".opus": ("ogg", "libopus", "s16"),
                 ".m4a": ("ipod", "aac", "fltp"), ".wav": ("wav", "pcm_s16le", "s16")}


def encode_audio(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Encode mono float samples with PyAV into the format the suffix names."""
    import av

    fmt, codec, sample_fmt = _AUDIO_CODECS[path.suffix.lower()]
    out_rate = 48000 if codec == "libopus" else rate
    # FFmpeg's own Vorbis encoder is experimental and stereo-only.
    layout = "stereo" if codec == "vorbis" else "mono"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=out_rate, layout=layout)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        _encode_samples(out, stream, samples, rate, sample_fmt, layout)
    return path


def _encode_samples(out, stream, samples: np.ndarray, rate: int, sample_fmt: str,
                    layout: str) -> None:
    """Resample mono float samples to the stream's format in 1024-sample frames, encode,
    mux, and flush the resampler and the encoder."""
    import av

    resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=stream.rate,
                                  frame_size=1024)
    for frame in list(_frames(samples.astype(np.float32), rate)) + [None]:
        for piece in resampler.resample(frame):
            for packet in stream.encode(piece):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _frames(samples: np.ndarray, rate: int, size: int = 1024):
    import av

    for start in range(0, len(samples), size):
        frame = av.AudioFrame.from_ndarray(samples[start:start + size].reshape(1, -1),
                                           format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        yield frame


def encode_video(path: Path, frames: list[np.ndarray], fps: float = 1.0,
                 audio: np.ndarray | None = None, rate: int = 16000) -> Path:
    """An MP4 (MPEG-4 Part 2 video, AAC audio) from RGB frames and an optional soundtrack."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_stream = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        for arr in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if a_stream is not None:
            _encode_samples(out, a_stream, audio, rate, "fltp", "mono")
    return path


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid 1-bit PNG of side x side pixels that compresses to ~100 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) +
                     chunk(b"IEND", b""))
    return path


def make_sample_folder(folder: Path) -> dict[str, str]:
    """A mixed folder of good and broken files; returns name -> expected 'kind/status'."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def put(name: str, want: str) -> Path:
        expected[name] = want
        return folder / name

    solid_image(put("red.jpg", "image/ok"), exif={"camera": ("Canon", "EOS 5D"),
                "taken": "2024:07:14 09:30:00", "gps": (48.8584, 2.2945), "orientation": 1})
    solid_image(put("blue.png", "image/ok"), color=(20, 40, 220))
    data = (folder / "red.jpg").read_bytes()
    put("copy of red.jpg", "image/ok").write_bytes(data)  # same content: an alias
    put("truncated.jpg", "image/failed").write_bytes(data[: len(data) // 2])
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 128, 0)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[60:90] = os.urandom(30)  # garbage over the image data: a CRC and inflate error
    put("corrupt.png", "image/failed").write_bytes(bytes(png))
    png_bomb(put("bomb.png", "image/refused"))
    memo = put("voice memo.wav", "audio/ok")
    try:  # words, so the transcript and search have something to show (a tone has none)
        speech("Remember to buy milk on the way home, and call the dentist tomorrow "
               "morning about the appointment.", memo)
    except (OSError, subprocess.CalledProcessError):  # no espeak-ng: a tone still decodes
        write_wav(memo, tone(3.0))
    encode_audio(put("song.mp3", "audio/ok"), tone(4.0, 330))
    frames = [np.full((96, 128, 3), c, np.uint8) for c in (30, 120, 220, 60)]
    encode_video(put("clip.mp4", "video/ok"), frames, fps=1.0, audio=tone(4.0, 520))
    vid = (folder / "clip.mp4").read_bytes()
    put("cut short.mp4", "video/failed").write_bytes(vid[: len(vid) // 3])
    put("records.json", "json/ok").write_text(json.dumps(
        [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(25)]))
    put("events.ndjson", "json/ok").write_text(
        "\n".join(json.dumps({"event": "click", "n": i}) for i in range(10)) + "\n")
    put("broken, bad\nreport.json", "json/failed").write_text('{"a": [1, 2,, 3]')
    put("notes, draft\nfinal ünïcode.txt", "text/ok").write_text(
        "Grocery list: apples, pears.\nCall Ana about the trip to Lisbon.\n", encoding="utf-8")
    put("empty.dat", "unknown/failed").write_bytes(b"")
    put("mystery.bin", "other/unsupported").write_bytes(bytes(range(256)) * 8)
    put("still downloading.mp4.part", "skipped").write_bytes(vid)
    link = put("outside-link.txt", "unknown/refused")
    if not link.is_symlink():
        os.symlink("/etc/hostname", link)
    return {k: v for k, v in expected.items() if v != "skipped"}


def speech(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    """A WAV of `text` spoken by espeak-ng (Debian package espeak-ng)."""
    import shutil
    import subprocess

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng "
                                "(.ci/setup does this as root)")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        rate, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768
    return pcm.reshape(-1, ch).mean(axis=1), rate


PHOTO_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")


def photo_groups(folder: Path, per_group: int = 8, sources=PHOTO_SOURCES,
                 seed: int = 0) -> dict[str, list[Path]]:
    """Groups of real photographs (scikit-image's sample images), each shot again and
    again: random crops, flips, exposure and small rotations of one scene, as a camera roll
    has them. Source name -> the files written (JPEG)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for name in sources:
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = img.size
        paths = []
        for i in range(per_group):
            s = rng.uniform(0.75, 0.95)
            cw, ch = int(w * s), int(h * s)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            shot = img.crop((x, y, x + cw, y + ch)).rotate(float(rng.uniform(-6, 6)))
            if rng.random() < 0.5:
                shot = shot.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            shot = Image.eval(shot, lambda v, g=rng.uniform(0.85, 1.15): min(255, int(v * g)))
            path = folder / f"{name}_{i:02d}.jpg"
            shot.save(path, quality=90)
            paths.append(path)
        out[name] = paths
    return out
