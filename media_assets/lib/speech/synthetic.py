"""Generated conversations with known turns, for the diarization bench and tests.

Each speaker is a distinct espeak-ng voice (a variant, a pitch, a speed, sometimes another
accent or language); turns of 1-10 s alternate between speakers, separated by short pauses
so no two overlap. The truth is (start, end, speaker) per turn.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_assets.lib.samples import read_wav, speech, write_wav

RATE = 16000

# (espeak voice, pitch 0-99, words per minute): far apart in timbre, pitch and pace.
VOICES = [("en-us+m3", 35, 150), ("en-us+f2", 70, 165), ("en-gb+m7", 20, 135),
          ("en-us+f4", 85, 175), ("de+m1", 50, 140), ("en-gb-scotland+f1", 60, 155),
          ("en-us+m6", 10, 145), ("en-us+klatt", 45, 160)]

SENTENCES = [
    "We moved the meeting to Thursday afternoon.",
    "The new camera takes much sharper pictures at night.",
    "Could you send me the report before lunch?",
    "I think the budget for the garden is too small.",
    "Our train leaves from platform seven at eight fifteen.",
    "The children painted the fence bright yellow last summer.",
    "Please remember to water the tomatoes every evening.",
    "My grandmother kept every letter she ever received.",
    "The bakery on the corner sells the best rye bread.",
    "We should check the weather before we drive north.",
    "That old radio still works after forty years.",
    "She finished the marathon in under four hours.",
    "The museum opens late on the first Friday of the month.",
    "I lost my umbrella somewhere between the office and home.",
    "Nobody expected the river to rise so quickly.",
    "He plays the piano every morning before breakfast.",
]


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: int  # 0-based, in order of first speech


def _say(text: str, voice: tuple[str, int, int], folder: Path, n: int) -> np.ndarray:
    import shutil
    import subprocess

    name, pitch, speed = voice
    path = folder / f"t{n}.wav"
    exe = shutil.which("espeak-ng")
    if exe is None:
        speech(text, path)  # raises with the install advice
    subprocess.run([exe, "-v", name, "-p", str(pitch), "-s", str(speed), "-w", str(path),
                    text], check=True, capture_output=True)
    wav, rate = read_wav(path)
    if rate != RATE:
        idx = np.arange(0, len(wav), rate / RATE)
        wav = np.interp(idx, np.arange(len(wav)), wav).astype(np.float32)
    # espeak pads with silence at both ends: trim it, the pause between turns is ours.
    loud = np.nonzero(np.abs(wav) > 0.01)[0]
    return wav[loud[0]:loud[-1] + 1] if len(loud) else wav


def conversation(path: Path, speakers: int, turns: int, seed: int = 0,
                 voices: list[tuple[str, int, int]] | None = None,
                 pause: tuple[float, float] = (0.4, 0.9)) -> list[Turn]:
    """Write a WAV of `turns` alternating turns among `speakers` voices; the truth."""
    rng = random.Random(seed)
    voices = voices or VOICES
    chosen = rng.sample(voices, speakers) if speakers <= len(voices) else [
        (voices[i % len(voices)][0], (voices[i % len(voices)][1] + 23 * (i // len(voices))) % 99,
         voices[i % len(voices)][2]) for i in range(speakers)]
    order = list(range(speakers))  # everyone speaks once first, then at random (no repeats)
    while len(order) < turns:
        order.append(rng.choice([s for s in range(speakers) if s != order[-1]] or [0]))
    audio, truth, t, n = [], [], 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for who in order[:turns]:
            target = rng.uniform(1.0, 10.0)
            parts, length = [], 0.0
            while True:  # sentences until the turn is about `target` seconds long
                wav = _say(rng.choice(SENTENCES), chosen[who], Path(tmp), n)
                n += 1
                if parts and length + len(wav) / RATE > target + 1.0:
                    break
                parts.append(wav)
                length += len(wav) / RATE
                if length >= target:
                    break
            turn = np.concatenate(parts)
            if len(turn) / RATE > 10.0:  # a single long sentence: cut at 10 s
                turn = turn[:int(10.0 * RATE)]
            gap = np.zeros(int(rng.uniform(*pause) * RATE), np.float32)
            audio += [gap, turn]
            t += len(gap) / RATE
            truth.append(Turn(round(t, 3), round(t + len(turn) / RATE, 3), who))
            t += len(turn) / RATE
    audio.append(np.zeros(int(0.5 * RATE), np.float32))
    write_wav(path, np.concatenate(audio), RATE)
    return truth


def der(truth: list[Turn], hyp: list[tuple[float, float, str]], step: float = 0.01,
        collar: float = 0.25) -> float:
    """Diarization error rate: (missed + false alarm + confusion) / speech, on a 10 ms grid,
    with the usual 0.25 s collar around each true boundary left unscored, and hypothesis
    speakers mapped to true ones by the best one-to-one assignment (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    end = max([u.end for u in truth] + [e for _, e, _ in hyp] + [0.0])
    n = int(np.ceil(end / step)) + 1
    ref = np.full(n, -1)
    scored = np.ones(n, bool)
    for u in truth:
        ref[int(u.start / step):int(u.end / step)] = u.speaker
        for b in (u.start, u.end):
            scored[max(0, int((b - collar) / step)):int((b + collar) / step)] = False
    labels = sorted({s for _, _, s in hyp})
    out = np.full(n, -1)
    for s, e, lab in hyp:
        out[int(s / step):int(e / step)] = labels.index(lab)
    ref, out = ref[scored], out[scored]
    speech_frames = int((ref >= 0).sum())
    if not speech_frames:
        return 0.0
    n_ref = max(u.speaker for u in truth) + 1
    overlap = np.zeros((n_ref, max(1, len(labels))))
    for r in range(n_ref):
        for h in range(len(labels)):
            overlap[r, h] = np.sum((ref == r) & (out == h))
    rows, cols = linear_sum_assignment(-overlap)
    mapped = np.full(len(labels) or 1, -2)
    for r, c in zip(rows, cols):
        mapped[c] = r
    hyp_ref = np.where(out >= 0, mapped[np.maximum(out, 0)], -1)
    missed = np.sum((ref >= 0) & (out < 0))
    false_alarm = np.sum((ref < 0) & (out >= 0))
    confusion = np.sum((ref >= 0) & (out >= 0) & (hyp_ref != ref))
    return float((missed + false_alarm + confusion) / speech_frames)
