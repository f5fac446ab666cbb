"""The whole `ingest` of a generated folder against a bare loop over the same files, in one
process: how much of an ingest is the models, and how much the pipeline around them.

    python bench/bench_ingest.py [--photos 64] [--speech-minutes 1] [--videos 2] [--json 2]
    python bench/bench_ingest.py --photos 200 --speech-minutes 5 --videos 4 --json 4  # README

The folder: N distinct 384x384 JPEG photos (crops of scikit-image's photographs), voice
memos spoken by espeak-ng (M minutes in all, about 40 s each), short videos with a
soundtrack, and NDJSON exports. Models: CLIP ViT-B-32 with random weights (the real
model's compute; `--clip tiny` for the test suite's), a tiny random BLIP-2 (the real
architecture; no trained weights for either can be had here), the real Whisper base, the real
multilingual-e5-small, the real OCR, the real speaker encoder, no LLM (the heuristics) —
`make_tiny`, as the tests use them.

Ours: `media-assets ingest FOLDER --no-clusters -q` in this process, on a fresh catalogue
after a warm-up ingest of one file of each kind (so neither side pays first imports).
Each asset's time is the sum of its steps' durations over every run (Dagster's step
stats); what is left of the wall time is run planning, run start and the sensor-free
bookkeeping between steps.

Bare: for each asset, the same model calls through the same functions (`embed_images`,
`analyse_images`, `transcribe`, `diarize`, `read_path`, the embedder's `passage`) with the
same batch sizes and settings, each model loaded once, and the outputs written with one
COPY per table into a scratch schema. No Dagster, no per-file catalogue rows, no events.
Inputs the pipeline derives in an earlier asset (a transcript's segments for `speakers`,
the frame times for a video's OCR, the texts `text_embeddings` embeds) are read from
ours' catalogue before the clock starts.

Printed per asset: files, seconds and files/s ours vs bare, the ratio (bare s / ours s:
1.00 means no overhead) and the pipeline's own cost per file ((ours - bare) / files). Then
the wall time, the part outside steps per file, Dagster events per file, and peak RSS of
each phase (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

SENTENCES = [
    "Remember to call the dentist on Monday morning about the appointment.",
    "The heating in the flat stopped working again, please ring the landlord.",
    "Our flight to Lisbon leaves at seven, so we should be at the airport by five.",
    "Buy milk, bread, eggs and a bag of coffee beans on the way home.",
    "The meeting about the garden project moved to Thursday afternoon.",
    "I finished the first chapter of the book and started on the second one.",
]


class PeakRss:
    """The process's peak resident memory while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(), 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self.stop.wait(0.05)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def make_folder(folder: Path, photos: int, speech_minutes: float, videos: int,
                json_files: int, seed: int = 0, notes: int = 0) -> dict[str, int]:
    """The generated inbox; returns how many files of each kind it holds."""
    from skimage import data

    from media_assets.lib.samples import encode_video, read_wav, speech

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    sources = [np.asarray(Image.fromarray(getattr(data, n)()).convert("RGB"))
               for n in ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")]
    for i in range(photos):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        s = int(min(h, w) * rng.uniform(0.5, 0.95))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        img = Image.fromarray(src[y:y + s, x:x + s]).resize((384, 384))
        img = Image.eval(img, lambda v, g=rng.uniform(0.8, 1.2): min(255, int(v * g)))
        img.save(folder / f"photo_{i:05d}.jpg", quality=88)
    memos = 0
    spoken = 0.0
    while spoken < speech_minutes * 60:
        # "Memo N" first: no two memos (and no warm-up memo) are the same audio, which
        # the catalogue would count as one content.
        text = f"Memo {memos + 1000 * seed}. " + " ".join(
            SENTENCES[(memos + j + seed) % len(SENTENCES)] for j in range(6))
        path = speech(text, folder / f"memo_{memos:03d}.wav")
        spoken += len(read_wav(path)[0]) / 16000 if path.stat().st_size else 0
        memos += 1
    for i in range(videos):
        wav = speech(f"Clip {i + 1000 * seed}. " + SENTENCES[(i + seed) % len(SENTENCES)],
                     folder / f"_v{i}.wav")
        audio, rate = read_wav(wav)
        wav.unlink()
        seconds = int(len(audio) / rate) + 2
        frames = [np.asarray(Image.fromarray(sources[(i + k // 3) % len(sources)])
                             .resize((320, 240))) for k in range(seconds)]
        encode_video(folder / f"clip_{i:02d}.mp4", frames, fps=1.0, audio=audio, rate=rate)
    for i in range(json_files):
        with open(folder / f"export_{i:02d}.ndjson", "w") as fh:
            for r in range(2000):
                fh.write(json.dumps({"id": r, "title": f"song {r}", "artist": f"band {r % 40}",
                                     "plays": int(rng.integers(0, 10_000)),
                                     "at": f"2024-0{1 + r % 9}-1{r % 10}T10:00:00Z"}) + "\n")
    for i in range(notes):  # short text notes, each its own content
        (folder / f"note_{i:05d}.txt").write_text(
            f"Note {i + 100_000 * seed}. " + " ".join(
                SENTENCES[(i + j + seed) % len(SENTENCES)] for j in range(1 + i % 3)) + "\n")
    return {"image": photos, "audio": memos, "video": videos, "json": json_files,
            "text": notes}


def ours(folder: Path) -> dict:
    """`ingest` in this process; per-asset step seconds, events and wall time of the runs
    it made."""
    from click.testing import CliRunner

    from media_assets.cli import main
    from media_assets.cli.run import instance_for
    from media_assets.lib.db import open_catalog
    from media_assets.lib.settings import Settings

    settings = Settings.from_env()
    catalog = open_catalog(settings)
    instance = instance_for(settings, catalog)
    before = {r.run_id for r in instance.get_runs()}
    start = time.perf_counter()
    with PeakRss() as rss:
        result = CliRunner().invoke(main, ["ingest", str(folder), "--no-clusters", "-q"])
    wall = time.perf_counter() - start
    if result.exit_code not in (0, 1):
        raise SystemExit(f"ingest failed ({result.exit_code}): {result.output[-2000:]}")
    steps: dict[str, float] = defaultdict(float)
    first: dict[str, float] = {}
    events = runs = 0
    for run in instance.get_runs():
        if run.run_id in before:
            continue
        runs += 1
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                steps[stat.step_key] += stat.end_time - stat.start_time
                first[stat.step_key] = min(first.get(stat.step_key, stat.start_time),
                                           stat.start_time)
        events += len(instance.all_logs(run.run_id))
    return {"wall": wall, "steps": dict(steps), "order": sorted(first, key=first.get), "events": events, "runs": runs,
            "rss_mb": rss.mb, "exit": result.exit_code, "catalog": catalog}


class Bare:
    """The same model calls over the same files, outputs by one COPY per table."""

    def __init__(self, catalog):
        from media_assets.lib.models.inventory import ModelInventory
        from media_assets.lib.models.registry import build_manager
        from media_assets.lib.settings import Settings

        settings = Settings.from_env()
        self.engine = catalog.engine
        self.manager = build_manager(settings.models, ModelInventory(settings.models))
        self.settings = settings
        self.thumbs = Path(settings.home) / "bare-thumbnails"
        with self.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS bench_bare CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA bench_bare")

    def copy(self, table: str, columns: str, rows) -> None:
        """One COPY of `rows` into a fresh `bench_bare.<table>` (`columns` with types)."""
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(f"CREATE TABLE bench_bare.{table} ({columns})")
            names = ", ".join(c.split()[0] for c in columns.split(", "))
            with cur.copy(f"COPY bench_bare.{table} ({names}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
            raw.commit()
        finally:
            raw.close()

    def media_file(self, files):
        from media_assets.lib.files.probe import Limits, probe_file

        rows = []
        for key, path, _ in files:
            try:
                p = probe_file(path, Limits())
                rows.append((key, path, p.kind, p.mime_type,
                             json.dumps(p.details, default=str)))
            except Exception as exc:  # noqa: BLE001 - a bad file is a row, as in ours
                rows.append((key, path, "failed", None, json.dumps({"error": str(exc)})))
        self.copy("media_file", "key text, path text, kind text, mime text, details jsonb", rows)

    def image_embeddings(self, files):
        from media_assets.lib.models.clip import embed_images
        from media_assets.defs.assets.images import CLIP_BATCH
        from media_assets.lib.models.roles import Role

        with self.manager.use(Role.CLIP) as clip:
            vectors, _ = embed_images(clip, [p for _, p, _ in files], CLIP_BATCH)
        self.vectors = vectors
        self.copy("image_embeddings", "key text, v vector(512)",
                  ((k, "[" + ",".join(f"{x:.7g}" for x in v) + "]")
                   for (k, _, _), v in zip(files, vectors)))

    def image_analysis(self, files):
        from media_assets.defs.assets.images import ImageAnalysisConfig
        from media_assets.lib.images.analysis import (AnalysisSettings, analyse_images,
                                                      open_thumbnail)
        from media_assets.lib.images.thumbnails import save_thumbnail

        cfg = ImageAnalysisConfig()
        settings = AnalysisSettings(cfg.questions, cfg.objects, cfg.scenes, cfg.use_captioner)
        rows = []
        for i in range(0, len(files), cfg.batch_size):
            chunk = files[i:i + cfg.batch_size]
            thumbs = [open_thumbnail(p) for _, p, _ in chunk]
            for (key, _, _), thumb, a in zip(chunk, thumbs,
                                             analyse_images(self.manager, thumbs, settings)):
                save_thumbnail(self.thumbs, key, thumb)
                rows.append((key, a.caption, a.scene_type, json.dumps(a.objects),
                             json.dumps(a.dominant_colors), json.dumps(a.answers)))
        self.copy("image_analysis", "key text, caption text, scene text, objects jsonb, "
                  "colours jsonb, answers jsonb", rows)

    def image_duplicates(self, files):
        from media_assets.lib.images.store import DUPLICATE_DISTANCE

        with self.engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ON bench_bare.image_embeddings "
                                 "USING hnsw (v vector_cosine_ops)")
        pairs = []
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            for key, _, _ in files:
                cur.execute("SELECT b.key, a.v <=> b.v FROM bench_bare.image_embeddings a, "
                            "LATERAL (SELECT key, v FROM bench_bare.image_embeddings o "
                            "ORDER BY o.v <=> a.v LIMIT 6) b WHERE a.key = %s "
                            "AND b.key <> a.key", (key,))
                pairs += [(key, k, d) for k, d in cur.fetchall() if d <= DUPLICATE_DISTANCE]
        finally:
            raw.close()
        self.copy("image_duplicates", "a text, b text, distance float8", pairs)

    def image_text(self, files):
        from media_assets.lib.images.ocr import read_path
        from media_assets.lib.models.roles import Role
        from media_assets.lib.video.frame_text import read_frames
        from media_assets.lib.video.store import frames_of

        frames = {k: [f["frame_ms"] for f in frames_of(self.engine, k)]
                  for k, _, kind in files if kind == "video"}
        rows = []
        with self.manager.use(Role.OCR) as engine:
            for key, path, kind in files:
                if kind == "image":
                    t = read_path(engine, path)
                    rows.append((key, -1, t.text))
                else:
                    reads, _ = read_frames(engine, path, frames[key][:300])
                    rows += [(key, ms, t.text) for ms, _, t in reads]
        self.copy("image_text", "key text, at_ms int, text text", rows)

    def transcripts(self, files):
        from media_assets.defs.assets.speech import TranscriptConfig
        from media_assets.lib.models.roles import Role
        from media_assets.lib.speech.transcribe import transcribe

        cfg = TranscriptConfig()
        rows = []
        with self.manager.use(Role.WHISPER) as model:
            for key, path, _ in files:
                t = transcribe(model, path, language=cfg.language or None,
                               beam_size=cfg.beam_size, word_timestamps=cfg.word_timestamps,
                               chunk_seconds=cfg.chunk_minutes * 60,
                               batch_size=cfg.batch_size, languages=self.settings.languages,
                               pause_s=cfg.pause_seconds or None)
                rows += [(key, i, s.start, s.end, s.text, json.dumps(s.words or []))
                         for i, s in enumerate(t.segments)]
        self.copy("transcripts", "key text, i int, start_s float8, end_s float8, text text, "
                  "words jsonb", rows)

    def speakers(self, files):
        from media_assets.lib.models.roles import Role
        from media_assets.lib.speech.speakers import diarize
        from media_assets.lib.speech.store import transcript_of

        segments = {k: transcript_of(self.engine, k)["segments"] for k, _, _ in files}
        rows = []
        with self.manager.use(Role.SPEAKER) as encoder:
            for key, path, _ in files:
                d = diarize(encoder, path, segments[key])
                rows.append((key, json.dumps(d.turns())))
        self.copy("speakers", "key text, turns jsonb", rows)

    def video_frames(self, files):
        from media_assets.defs.assets.video import VideoFramesConfig
        from media_assets.lib.images.analysis import AnalysisSettings, analyse_images
        from media_assets.lib.models.clip import image_features
        from media_assets.lib.models.roles import Role
        from media_assets.lib.video.frames import sample_frames

        cfg = VideoFramesConfig()
        settings = AnalysisSettings(questions=[], use_captioner=cfg.use_captioner)
        rows = []
        for key, path, _ in files:
            frames = list(sample_frames(path, cfg.every_seconds, cfg.scene_changes,
                                        cfg.max_frames))
            images = [f.image for f in frames]
            if not frames:
                continue
            with self.manager.use(Role.CLIP) as clip:
                vectors = image_features(clip, images)
            results = analyse_images(self.manager, images, settings, feats=vectors)
            rows += [(key, f.ms, "[" + ",".join(f"{x:.7g}" for x in v) + "]", a.caption)
                     for f, v, a in zip(frames, vectors, results)]
        self.copy("video_frames", "key text, ms int, v vector(512), caption text", rows)

    def text_embeddings(self, files):
        from media_assets.lib.models.roles import Role
        from media_assets.lib.search.units import units_of
        from media_assets.lib.files.store import FileStore

        store = FileStore(self.engine)
        got = store.get([k for k, _, _ in files])
        texts = {k: [u.text for u in units_of(self.engine, k, got[k].kind, Path(p),
                                               got[k].details)]
                 for k, p, _ in files}
        start = time.perf_counter()
        rows = []
        with self.manager.use(Role.TEXT) as embedder:
            for key, _, _ in files:
                todo = list(dict.fromkeys(texts[key]))
                for i, v in enumerate(embedder.passage(todo) if todo else []):
                    rows.append((key, i, todo[i],
                                 "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
        dim = len(rows[0][3].split(",")) if rows else 384
        self.copy("text_embeddings", f"key text, i int, text text, v vector({dim})", rows)
        return time.perf_counter() - start  # without reading the units


# Which catalogued kinds each asset takes (as `per_file_asset(file_kinds=...)` says; the
# transcripts' and speakers' videos only when they have a soundtrack, which ours all do).
# In the order the in-process executor runs ours' steps (by dependency level, then by name), so
# the first use of a shared model (CLIP's load, its label prompts) falls to the same asset.
KINDS = {
    "media_file": ("image", "audio", "video", "json", "text"),
    "image_analysis": ("image",), "image_embeddings": ("image",),
    "image_duplicates": ("image",), "image_text": ("image", "video"),
    "transcripts": ("audio", "video"), "speakers": ("audio", "video"),
    "video_frames": ("video",), "video_summary": ("video",),
    "json_schemas": ("json",), "json_tables": ("json",),
    "text_embeddings": ("image", "audio", "video", "json", "text"),
}


def make_models(folder: Path, clip: str) -> None:
    """The tiny models, and ViT-B-32 with random weights where the tiny CLIP was (`full`).

    Run in a child process, not on this process's main thread: once the main thread has
    used OpenMP (torch writing the weights does), libgomp counts its idle team beside the
    run thread's and, with more threads than cores, stops spinning between parallel
    regions. Every small op of ours then waits for a sleeping thread: on 2 cores, 200
    photos' colour k-means took 3.5 s instead of 2.9, the tiny captioner's captions and
    answers 3.1 s instead of 1.9 (2026-12-05), and `image_analysis` measured 0.81x where
    it is 0.97x. `media-assets ingest` does no model work on its main thread; the bare
    loop runs on this main thread, so it was never slowed."""
    from media_assets.lib.models.tiny import make_tiny

    make_tiny(folder, llm="none")
    if clip == "full":
        from media_assets.lib.models.locate import folder_name
        from media_assets.lib.models.roles import DEFAULT_MODELS, Role
        from media_assets.lib.models.tiny import write_clip

        write_clip(folder / folder_name(DEFAULT_MODELS[Role.CLIP]), "ViT-B-32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--speech-minutes", type=float, default=1.0)
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--json", type=int, default=2)
    ap.add_argument("--notes", type=int, default=0,
                    help="short text notes: many files, light models (media_file and "
                         "text_embeddings), so the pipeline's per-file cost at scale shows")
    ap.add_argument("--clip", choices=("full", "tiny"), default="full",
                    help="full: ViT-B-32 with random weights (the real model's compute); "
                         "tiny: the test suite's tiny CLIP")
    ap.add_argument("--home", default=".bench_home/ingest")
    args = ap.parse_args()

    home = Path(args.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # In a child process: torch work on this (main) thread would make every later OpenMP
    # call in ingest's run thread slower (see `make_models`).
    child = multiprocessing.get_context("spawn").Process(
        target=make_models, args=(home / "models", args.clip))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"making the models failed (exit {child.exitcode})")
    os.environ.update(MEDIA_ASSETS_HOME=str(home / "home"),
                      MEDIA_ASSETS_MODEL_DIR=str(home / "models"))
    folder = home / "inbox"
    t = time.perf_counter()
    counts = make_folder(folder, args.photos, args.speech_minutes, args.videos, args.json,
                         notes=args.notes)
    print(f"folder: {counts} made in {time.perf_counter() - t:.1f} s; "
          f"{os.cpu_count()} cores", flush=True)
    # A first ingest of one file of each kind (other files, same catalogue): the libraries
    # each step imports on first use are imported for both loops alike. Models are still
    # loaded inside the measured ingest (it unloads them at its end) and by the bare loop.
    make_folder(home / "warm-up", 1, 0.1, 1, 1, seed=1, notes=1)
    t = time.perf_counter()
    ours(home / "warm-up")
    print(f"warm-up ingest: {time.perf_counter() - t:.1f} s", flush=True)

    o = ours(folder)
    print(f"ours: ingest exit {o['exit']}, {o['runs']} runs, {o['wall']:.1f} s wall, "
          f"peak RSS {o['rss_mb']:.0f} MB; steps began in the order {', '.join(o['order'])}",
          flush=True)
    catalog = o["catalog"]
    with catalog.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT f.key, f.primary_path, f.kind FROM media_files f WHERE f.status = 'ok' "
            "AND starts_with(f.primary_path, %(folder)s) ORDER BY 2",
            {"folder": str(folder) + "/"}).all()
    by_kind = defaultdict(list)
    for key, path, kind in rows:
        by_kind[kind].append((key, path, kind))

    bare = Bare(catalog)
    bare_s: dict[str, float] = {}
    with PeakRss() as rss:
        for asset, kinds in KINDS.items():
            files = [f for k in kinds for f in by_kind.get(k, [])]
            if not files or asset not in o["steps"] or not hasattr(bare, asset):
                continue
            t = time.perf_counter()
            took = getattr(bare, asset)(files)
            bare_s[asset] = took if isinstance(took, float) else time.perf_counter() - t
    print(f"bare: {sum(bare_s.values()):.1f} s in the model loops, peak RSS {rss.mb:.0f} MB",
          flush=True)

    total_files = len(rows)
    print()
    print(f"{'asset':<18}{'files':>6}{'ours s':>9}{'bare s':>9}{'ours f/s':>10}"
          f"{'bare f/s':>10}{'ratio':>7}{'own ms/file':>13}")
    in_steps = 0.0
    for asset, seconds in sorted(o["steps"].items(), key=lambda kv: -kv[1]):
        in_steps += seconds
        n = len([f for k in KINDS.get(asset, ()) for f in by_kind.get(k, [])])
        b = bare_s.get(asset)
        if b is None or not n:
            print(f"{asset:<18}{n:>6}{seconds:>9.2f}{'-':>9}"
                  f"{(n / seconds if seconds and n else 0):>10.1f}{'-':>10}{'-':>7}"
                  f"{(1000 * seconds / n if n else 0):>13.1f}  (no bare loop: all of it)")
            continue
        print(f"{asset:<18}{n:>6}{seconds:>9.2f}{b:>9.2f}{n / seconds:>10.1f}{n / b:>10.1f}"
              f"{b / seconds:>7.2f}{1000 * (seconds - b) / n:>13.1f}")
    outside = o["wall"] - in_steps
    timed = [a for a in o["steps"] if a in bare_s]
    ours_m, bare_m = sum(o["steps"][a] for a in timed), sum(bare_s[a] for a in timed)
    print(f"{'with a bare loop':<18}{'':>6}{ours_m:>9.2f}{bare_m:>9.2f}{'':>10}{'':>10}"
          f"{bare_m / ours_m:>7.2f}")
    print()
    print(f"wall {o['wall']:.1f} s: {in_steps:.1f} s in steps, {outside:.1f} s outside them "
          f"(run planning, run start, between steps): {1000 * outside / total_files:.0f} ms "
          f"per file")
    print(f"Dagster events: {o['events']} for {total_files} files "
          f"({o['events'] / total_files:.1f} per file); peak RSS ours {o['rss_mb']:.0f} MB, "
          f"bare {rss.mb:.0f} MB")
    catalog.dispose()


if __name__ == "__main__":
    main()
