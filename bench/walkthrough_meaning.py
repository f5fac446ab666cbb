"""Issue 21's "Done when", run as a new user runs it: after the README's set-up, with the
weights the set-up installs (the real Whisper base and multilingual-e5-small; no CLIP or
BLIP-2, so those legs are off and say why), `media-assets ingest` of a corpus like the
issue's, then `media-assets search` and `media-assets transcript` in a shell.

    python bench/walkthrough_meaning.py [--keep DIR]

The corpus is bench_search_quality's (espeak-ng memos in English, German and Spanish,
videos with speech, text notes, JSON exports, distractors; its photos carry no stored
captions here) plus a video with one sentence at about 1 s and another after 8 s of
silence. It prints, per check, what was asked, where the target came, and PASS or MISS;
the exit status is the number of misses. Everything runs in a scratch home of its own
(its own embedded PostgreSQL), so the user's library is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search_quality import GROUPS, build_corpus, files_in_order  # noqa: E402

TOP = 3  # "every paraphrase target in the top 3"
LATE = "The second sentence is about the blue boat on the lake."


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "media_assets.cli", *args], env=env,
                          capture_output=True, text=True, timeout=1800)


def late_video(path: Path) -> float:
    """A video whose second sentence starts after 8 s of silence; returns its start (s)."""
    import numpy as np
    from PIL import Image
    import skimage.data

    from media_assets.lib.samples import encode_video, read_wav, speech

    tmp = Path(tempfile.mkdtemp())
    first, rate = read_wav(speech("Hello, this is the start of the clip.", tmp / "a.wav"))
    second, _ = read_wav(speech(LATE, tmp / "b.wav"))
    lead, gap = np.zeros(rate, np.float32), np.zeros(8 * rate, np.float32)
    audio = np.concatenate([lead, first, gap, second, np.zeros(rate, np.float32)])
    frame = np.asarray(Image.fromarray(skimage.data.coffee()).resize((96, 64)))
    encode_video(path, [frame] * (len(audio) // rate + 1), fps=1.0, audio=audio, rate=rate)
    return (len(lead) + len(first) + len(gap)) / rate


def rank(hits: list[dict], name: str) -> int | None:
    files = files_in_order(h["path"] for h in hits)
    return files.index(name) + 1 if name in files else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=Path, help="write the corpus and home here and keep them")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="walkthrough-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEDIA_ASSETS_")}  # a new user's shell: nothing set
    env["MEDIA_ASSETS_HOME"] = str(work / "home")
    corpus = work / "corpus"
    build_corpus(corpus)
    late_at = late_video(corpus / "videos" / "boat trip.mp4")
    t = time.perf_counter()
    out = cli("ingest", str(corpus), env=env)
    print(f"ingest: exit {out.returncode} in {time.perf_counter() - t:.0f} s")
    print("\n".join(out.stdout.strip().splitlines()[-6:]))
    if out.returncode != 0:
        print(out.stderr[-3000:])
        return 99
    misses = 0

    def check(ok: bool, what: str) -> None:
        nonlocal misses
        misses += not ok
        print(f"{'PASS' if ok else 'MISS'}  {what}")

    asked = {**GROUPS["paraphrase_en"], **GROUPS["paraphrase_de"],
             **GROUPS["cross_language"], **GROUPS["notes_json"]}
    for query, grades in asked.items():
        target = max(grades, key=grades.get)
        if target.endswith(".jpg"):
            continue  # photos: only a real captioner or CLIP can say what they show
        res = cli("search", query, "--json", "-k", "10", env=env)
        hits = json.loads(res.stdout) if res.returncode == 0 else []
        r = rank(hits, target)
        check(r is not None and r <= TOP, f"{query!r} -> {target} at rank {r}")
        if not (r is not None and r <= TOP) and target.endswith(".wav"):
            heard = cli("transcript", str(corpus / "memos" / target), "--json", env=env)
            heard = json.loads(heard.stdout) if heard.returncode == 0 else {}
            print(f"      what Whisper heard in {target}: {heard.get('language')!r}, "
                  f"{heard.get('text')!r}")  # a miss no search leg can mend
    t_json = json.loads(cli("transcript", str(corpus / "memos" / "reise.wav"), "--json",
                            env=env).stdout)
    said = t_json.get("text", "")
    check(t_json.get("language") == "de" and "Berlin" in said,
          f"the German memo in German: language {t_json.get('language')!r}, {said!r}")
    res = cli("search", "a small vessel on the water", "--kind", "video", "--json", env=env)
    hits = json.loads(res.stdout) if res.returncode == 0 else []
    boat = [h for h in hits if h["path"].endswith("boat trip.mp4")]
    at = boat[0]["timestamp_s"] if boat else None
    check(at is not None and abs(at - late_at) <= 1.5,
          f"the late sentence of the video (said at {late_at:.1f} s) found at {at} s")
    print(f"{misses} misses")
    return misses


if __name__ == "__main__":
    sys.exit(main())
