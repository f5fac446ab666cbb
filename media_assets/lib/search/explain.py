"""Search results as a person reads them: only the relevant hits, one per file with its
moments, each with why it matched in plain words; beside them, the nearest pictures that
matched nothing else, as "visually similar" (none when nothing matched at all).

A fused hit that no leg found relevant scores 0 (`query.fuse` lists them after the
relevant ones to fill `k`); those are never counted as results.
"""

from __future__ import annotations

from media_assets.lib.search.query import LEGS, Hit

MAX_SIMILAR = 8  # a row, not a second result list


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def _quote(text: str | None, n: int = 140) -> str:
    text = " ".join(str(text or "").split())
    return "“" + (text if len(text) <= n else text[:n - 1].rstrip() + "…") + "”"


def plain(leg: str, why: dict, kind: str) -> str:
    """One leg's evidence in words."""
    at, text = why.get("at_s"), why.get("text")
    where = f" at {clock(at)}" if at is not None else ""
    if leg == "speech":
        return f"said{where}: {_quote(text)}"
    if leg == "caption":
        return (f"in a frame{where}: {_quote(text)}" if kind == "video"
                else f"in the caption: {_quote(text)}")
    if leg == "answer":
        return f"in what the picture shows: {_quote(text)}"
    if leg == "text_in_picture":
        return f"written in the picture{where}: {_quote(text)}"
    if leg == "content":
        return f"in the text: {_quote(text)}"
    if leg == "name":
        return "in the file name"
    if leg == "cluster":
        return f"in the name of its group: {_quote(text, 60)}"
    if leg == "meaning" and why.get("source") == "picture_text":
        return f"written in the picture{where}, close in meaning: {_quote(text)}"
    if leg == "meaning":
        return f"close in meaning{where}: {_quote(text)}"
    return "looks like what you described" + (f"{where}" if kind == "video" else "")


def reasons(hit: Hit) -> list[str]:
    """Why a hit matched, strongest evidence first (the legs' order)."""
    legs = sorted(hit.why, key=lambda leg: (LEGS.index(leg) if leg in LEGS else 99))
    out, texts = [], set()
    for leg in legs:
        w = hit.why[leg]
        if not w.get("score", 0) > 0:
            continue
        if leg == "meaning" and w.get("text") in texts:
            continue  # the same words already quoted, found a second way
        texts.add(w.get("text"))
        out.append(plain(leg, w, hit.kind))
    return out


def present(hits: list[Hit]) -> tuple[list[dict], list[Hit]]:
    """(one result per file, the relevant hits only, best first, each with its moments;
    the pictures nearest the query that nothing made relevant)."""
    by_key: dict[str, dict] = {}
    similar: list[Hit] = []
    for h in hits:
        if not (h.fused or 0) > 0:
            if h.kind in ("image", "video") and h.distance < 2.0 and \
                    all(s.key != h.key for s in similar):
                similar.append(h)
            continue
        r = by_key.get(h.key)
        moment = {"at_s": h.frame_ms / 1000 if h.frame_ms >= 0 else None,
                  "why": reasons(h), "score": round(h.score, 4), "legs": h.source}
        if r is None:
            by_key[h.key] = {"key": h.key, "path": h.path, "name": h.path.rsplit("/", 1)[-1],
                             "kind": h.kind, "score": round(h.score, 4), "why": moment["why"],
                             "at_s": moment["at_s"], "moments": [moment],
                             "legs": h.source, "text": h.caption}
        else:
            r["moments"].append(moment)
    for r in by_key.values():
        r["moments"].sort(key=lambda m: (m["at_s"] is None, m["at_s"] or 0))
    if not by_key:
        # Nothing matched: the nearest pictures of an unmatched query are only the least
        # unlike, which is noise ("xqzzyv blorf" listed 24 of them), so none are shown.
        return [], []
    return list(by_key.values()), [s for s in similar if s.key not in by_key][:MAX_SIMILAR]
