"""Text in a video's sampled frames: each frame read at the OCR's working size, a frame
that looks like the one before it not read again, and a text that stays on screen stored
once, with the span of frames that showed it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from media_assets.lib.images.ocr import OCR_SIDE, PictureText, read_image, same_text
from media_assets.lib.video.frames import _video_stream

UNCHANGED = 0.002  # mean absolute difference of 128x128 grey thumbnails: the same picture
# (a new line of text on a slide changes few pixels; coarser thumbnails miss it)


def read_frames(engine, path: str, frame_ms: Sequence[int], side: int = OCR_SIDE,
                ) -> tuple[list[tuple[int, int | None, PictureText]], int]:
    """(reads, frames read): one (frame_ms, until_ms, text) per run of frames showing the
    same text; frames are decoded in one pass, and a frame that looks like the last read one
    reuses its text."""
    import av

    targets = sorted(set(int(ms) for ms in frame_ms if ms >= 0))
    reads: list[list] = []  # [frame_ms, until_ms, PictureText]
    last_grey, last_text, read_count, at = None, None, 0, 0
    if not targets:
        return [], 0
    with av.open(path, metadata_errors="ignore") as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is None or at >= len(targets):
                if at >= len(targets):
                    break
                continue
            if frame.time * 1000 < targets[at] - 1:
                continue
            ms = targets[at]
            while at < len(targets) and targets[at] <= frame.time * 1000 + 1:
                at += 1
            image = frame.to_image()
            size = image.size
            image.thumbnail((side, side))
            grey = np.asarray(image.convert("L").resize((128, 128)), np.float32) / 255
            if last_grey is not None and float(np.abs(grey - last_grey).mean()) < UNCHANGED:
                text = last_text
            else:
                text = read_image(engine, image, size, side)
                read_count += 1
            last_grey, last_text = grey, text
            if reads and same_text(reads[-1][2].text, text.text):
                reads[-1][1] = ms  # the same text still on screen
            else:
                reads.append([ms, ms, text])
    return [(ms, until, t) for ms, until, t in reads], read_count
