"""A video's timeline (frames and speech in time order) and a plain-text summary."""

from __future__ import annotations


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def build_summary(duration_s: float | None, frames: list[dict],
                  transcript: dict | None) -> tuple[str, list[dict]]:
    timeline = [{"t": f["frame_ms"] / 1000, "type": "frame", "text": f["caption"] or ""}
                for f in frames]
    segments = (transcript or {}).get("segments", [])
    timeline += [{"t": s["start"], "end": s["end"], "type": "speech", "text": s["text"]}
                 for s in segments]
    timeline.sort(key=lambda e: (e["t"], e["type"]))
    parts = [f"{_clock(duration_s or 0)} long" if duration_s else "video"]
    captions = []
    for f in frames:  # distinct captions, in order
        c = f.get("caption")
        if c and c not in captions:
            captions.append(c)
    if captions:
        parts.append(f"{len(frames)} frames; seen: " + "; ".join(captions[:5]))
    if transcript and transcript.get("text"):
        text = transcript["text"]
        parts.append(f"speech ({transcript.get('language') or '?'}): "
                     + (text[:300] + "…" if len(text) > 300 else text))
    else:
        parts.append("no speech")
    return ". ".join(parts), timeline
