"""Crash recovery: `kill -9` of a real `media-assets ingest` in the middle of a batch leaves
no partial rows (each file's results commit in one transaction), and running it again
completes the batch with nothing written twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import sqlalchemy as sa

from media_assets.lib.samples import encode_video, photo_groups

pytestmark = pytest.mark.slow  # a whole scenario per test: the full suite runs it


def _videos(folder, n: int = 6, seconds: int = 8):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        frames = [np.full((96, 128, 3), rng.integers(0, 255, 3), np.uint8) for _ in range(seconds)]
        encode_video(folder / f"v{i}.mp4", frames, fps=1.0)


def _partial_videos(conn) -> list[str]:
    """Videos with frames but not their vectors, or the other way round."""
    return list(conn.execute(sa.text(
        "SELECT coalesce(f.key, e.key) FROM "
        "(SELECT key, count(*) AS n FROM video_frames GROUP BY key) f FULL JOIN "
        "(SELECT key, count(*) AS n FROM image_embeddings WHERE frame_ms >= 0 GROUP BY key) e "
        "ON e.key = f.key WHERE f.n IS DISTINCT FROM e.n")).scalars())


def test_kill_9_mid_batch_then_rerun_completes_without_duplicates(
        settings, catalog, tiny_models, tmp_path):
    folder = tmp_path / "lib"
    _videos(folder / "videos")
    photo_groups(folder / "photos", per_group=3, sources=("coffee", "rocket"))
    env = {**os.environ, "MEDIA_ASSETS_MODEL_DIR": str(tiny_models)}
    cmd = [sys.executable, "-m", "media_assets.cli", "ingest", "-q", "--no-clusters",
           str(folder)]
    engine = sa.create_engine(settings.database_url)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # kill once some, not all, videos are in
            with engine.connect() as conn:
                done = conn.execute(sa.text(
                    "SELECT count(DISTINCT key) FROM video_frames")).scalar() or 0
            if 1 <= done < 6 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and anything it started
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with engine.connect() as conn:
        assert _partial_videos(conn) == []  # no video half written
        killed_at = conn.execute(sa.text("SELECT count(DISTINCT key) FROM video_frames")).scalar()
    assert killed_at < 6

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    with engine.connect() as conn:
        assert _partial_videos(conn) == []
        assert conn.execute(sa.text("SELECT count(DISTINCT key) FROM video_frames")).scalar() == 6
        assert conn.execute(sa.text(
            "SELECT count(*) FROM image_embeddings WHERE frame_ms = -1")).scalar() == 6
        assert conn.execute(sa.text("SELECT count(*) FROM image_analysis")).scalar() == 6
        # One result per file and asset, one row per file and frame: nothing twice.
        assert conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT key, asset FROM file_asset_results "
            "GROUP BY key, asset HAVING count(*) > 1) d")).scalar() == 0
        assert conn.execute(sa.text(
            "SELECT count(*) FROM media_files WHERE status = 'pending'")).scalar() == 0
