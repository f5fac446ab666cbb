"""Transcription with faster-whisper: language, segments, optional word timestamps.

The VAD filter is always on, so silence and music give no invented text. Long audio is
transcribed chunk by chunk (see media.audio.stream_chunks); the language found in the first
chunk is kept for the rest, unless one was configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from media_assets.lib.speech.audio import RATE, audio_duration, stream_chunks


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[dict] | None = None


@dataclass
class Transcript:
    text: str
    language: str | None
    language_probability: float | None
    segments: list[Segment] = field(default_factory=list)
    duration_s: float = 0.0
    processing_time_ms: float = 0.0

    def as_response(self) -> dict:
        """The transcribe response (docs/contracts.md)."""
        return {"text": self.text, "language": self.language,
                "segments": [{"start": s.start, "end": s.end, "text": s.text,
                              **({"words": s.words} if s.words is not None else {})}
                             for s in self.segments],
                "processing_time_ms": self.processing_time_ms}


def transcribe(model, path: str, *, language: str | None = None, beam_size: int = 5,
               word_timestamps: bool = False, chunk_seconds: float = 600.0, batch_size: int = 1,
               on_progress: Callable[[float, float | None], None] | None = None) -> Transcript:
    """Transcribe an audio file or a video's soundtrack; `on_progress(done_s, total_s)`.

    `batch_size > 1` uses faster-whisper's BatchedInferencePipeline: speech regions found by
    VAD are decoded side by side (measured here: RTF 0.15 vs 0.25 for sequential beam 5, with
    a lower WER), at the cost of ~650 MB RSS.
    """
    start = time.perf_counter()
    runner, extra = model, {}
    if batch_size > 1:
        from faster_whisper import BatchedInferencePipeline

        runner, extra = BatchedInferencePipeline(model), {"batch_size": batch_size}
    total = audio_duration(path)
    segments: list[Segment] = []
    lang, prob = language, None
    decided = language is not None  # the first chunk with speech decides the language
    done = 0.0
    for offset, samples in stream_chunks(path, chunk_seconds):
        parts, info = runner.transcribe(samples, language=lang if decided else None,
                                        beam_size=beam_size, vad_filter=True,
                                        word_timestamps=word_timestamps,
                                        condition_on_previous_text=False, **extra)
        before = len(segments)
        for s in parts:
            text = s.text.strip()
            if not text:
                continue
            words = None
            if word_timestamps and s.words:
                words = [{"word": w.word.strip(), "start": round(float(offset + w.start), 3),
                          "end": round(float(offset + w.end), 3),
                          "probability": round(float(w.probability), 3)} for w in s.words]
            segments.append(Segment(round(float(offset + s.start), 3),
                                    round(float(offset + s.end), 3), text,
                                    words))
        if not decided:
            lang, prob = info.language, info.language_probability
            decided = len(segments) > before
        elif language is not None and prob is None:
            prob = info.language_probability
        done += len(samples) / RATE
        if on_progress:
            on_progress(done, total)
    text = " ".join(s.text for s in segments)
    return Transcript(text=text, language=lang, language_probability=prob, segments=segments,
                      duration_s=round(done, 3),
                      processing_time_ms=(time.perf_counter() - start) * 1000)
