"""Video frames: one every N seconds, plus scene changes found on the way (cheap: the frames
are decoded anyway, and a 32x32 grey thumbnail difference tells a cut)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

THUMB = 512
SCENE_CHANGE = 0.25     # mean absolute difference of 32x32 grey thumbnails, 0..1
MIN_GAP_S = 1.0         # no two sampled frames closer than this


@dataclass
class Frame:
    ms: int
    image: Image.Image
    reason: str  # "interval" or "scene_change"


def _video_stream(container):
    """The first real video stream (cover art in audio files is a video stream too)."""
    import av

    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise ValueError("no video stream")
    return streams[0]


def sample_frames(path: str, every_s: float = 2.0, scene_changes: bool = True,
                  max_frames: int = 2000) -> Iterator[Frame]:
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        next_at, last_kept, prev, count = 0.0, -1e9, None, 0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t = float(frame.time)
            grey = None
            reason = None
            if t >= next_at:
                reason = "interval"
            if scene_changes:
                grey = np.asarray(frame.to_image().convert("L").resize((32, 32)),
                                  dtype=np.float32) / 255.0
                if (reason is None and prev is not None and t - last_kept >= MIN_GAP_S
                        and float(np.abs(grey - prev).mean()) > SCENE_CHANGE):
                    reason = "scene_change"
                prev = grey
            if reason is None:
                continue
            img = frame.to_image()
            img.thumbnail((THUMB, THUMB))
            yield Frame(int(round(t * 1000)), img, reason)
            count += 1
            last_kept = t
            if reason == "interval":
                next_at = (int(t / every_s) + 1) * every_s
            if count >= max_frames:
                return


def frame_at(path: str, ms: int, size: int = THUMB) -> Image.Image:
    """The first frame at or after `ms` (the nearest key frame before it is sought, then
    decoded forward), reduced to fit `size`."""
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = _video_stream(container)
        target = max(0, ms) / 1000
        if stream.time_base:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is not None and frame.time >= target - 1e-3:
                break
        if last is None:
            raise ValueError(f"no frame at {ms} ms")
        img = last.to_image()
        img.thumbnail((size, size))
        return img
