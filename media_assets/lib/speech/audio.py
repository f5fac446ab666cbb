"""Streaming audio decode: 16 kHz mono float32 in chunks, never the whole file at once.

A one-hour podcast is 230 MB of float32 at 16 kHz; decoding it in 10-minute chunks keeps
memory at ~40 MB whatever the length, and lets transcription report progress per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

RATE = 16000


def audio_duration(path: str) -> float | None:
    import av

    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.audio:
            return None
        if container.duration:
            return container.duration / 1e6
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base) if stream.duration else None


MAX_RESAMPLER_CHANNELS = 8


def _mono(frame):
    """The frame's channels averaged into one float32 mono frame at the same rate."""
    import av

    data = frame.to_ndarray()
    channels = frame.layout.nb_channels if hasattr(frame.layout, "nb_channels") else len(
        frame.layout.channels)
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        data = data.reshape(-1, channels).T
    scale = {"s16": 32768.0, "s32": 2147483648.0, "u8": 128.0}.get(frame.format.name.rstrip("p"))
    mono = data.astype(np.float32).mean(axis=0)
    if frame.format.name.rstrip("p") == "u8":
        mono -= 128.0
    if scale:
        mono /= scale
    out = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
    out.sample_rate = frame.sample_rate
    return out


def stream_chunks(path: str, chunk_seconds: float = 600.0) -> Iterator[tuple[float, np.ndarray]]:
    """(offset seconds, samples) for consecutive chunks of the first audio stream.

    Raises ValueError when the file has no audio stream, av.error.FFmpegError on corrupt data.
    """
    import av

    chunk_len = int(chunk_seconds * RATE)
    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        # One preallocated buffer per chunk, filled in place: no concatenation copies.
        buf, have, offset = np.empty(chunk_len, np.float32), 0, 0.0

        # FFmpeg's resampler has no down-mix matrix past 8 channels (a 64-channel WAV fails
        # with EINVAL): such audio is averaged to mono here first, then resampled.
        downmix = stream.channels > MAX_RESAMPLER_CHANNELS

        def frames():
            for frame in container.decode(stream):
                yield from resampler.resample(_mono(frame) if downmix else frame)
            yield from resampler.resample(None)

        for frame in frames():
            data = frame.to_ndarray().reshape(-1)
            while len(data):
                take = min(len(data), chunk_len - have)
                buf[have:have + take] = data[:take]
                have, data = have + take, data[take:]
                if have == chunk_len:
                    yield offset, buf
                    offset += chunk_len / RATE
                    buf, have = np.empty(chunk_len, np.float32), 0
        if have:
            yield offset, buf[:have]
