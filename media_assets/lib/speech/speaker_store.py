"""Speakers in the catalog: per-file speakers and turns, and names that follow a voice.

A name is given once, to one file's speaker (`name_speaker`); it is stored with that
speaker's voice centroid and applies to every file speaker whose centroid is within
`NAME_DISTANCE` (cosine) of it, the nearest named voice winning. The name is resolved when
read, so files ingested later are named too.

NAME_DISTANCE = 0.1 (cosine), chosen on bench/bench_diarization.py (10 conversations over
Whisper segments, 2-4 espeak voices): one voice's centroids in different files sat at p50
0.08 / p95 0.17, different voices at p5 0.135 (a few pairs of near-identical espeak variants
closer). At 0.1 a name carried to 57 % of the same voice's other files and to 2 % of other
voices' files: a name may not carry over, which is the safe error (name that file's speaker
too; each naming is kept and the nearest serves).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from media_assets.lib.db.vectors import to_pgvector
from media_assets.lib.speech.speakers import Diarization, words_text

NAME_DISTANCE = 0.1

# For each file speaker, the nearest named voice within NAME_DISTANCE (or no row).
NAMED = ("LEFT JOIN LATERAL (SELECT n.name FROM speaker_names n "
         "  WHERE (n.centroid <=> fs.centroid) <= :name_distance "
         "  ORDER BY n.centroid <=> fs.centroid, n.named_at DESC LIMIT 1) nm ON true")


def store_speakers(engine: sa.Engine, key: str, d: Diarization, model_id: str) -> None:
    """Replace a file's speakers and turns atomically."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM speaker_files WHERE key = :k"), {"k": key})
        conn.execute(sa.text(
            "INSERT INTO speaker_files (key, model_id, speaker_count, speech_s, note) "
            "VALUES (:k, :m, :n, :s, :note)"),
            {"k": key, "m": model_id, "n": len(d.speakers), "s": d.speech_s, "note": d.note})
        if d.speakers:
            conn.execute(sa.text(
                "INSERT INTO file_speakers (key, label, talk_s, first_s, segments, centroid) "
                "VALUES (:k, :l, :t, :f, :n, CAST(:c AS vector))"),
                [{"k": key, "l": s.label, "t": s.talk_s, "f": s.first_s, "n": s.segments,
                  "c": to_pgvector(s.centroid)} for s in d.speakers])
        if d.parts:
            conn.execute(sa.text(
                "INSERT INTO segment_speakers (key, idx, part, start_s, end_s, label, "
                " word_start, word_end) VALUES (:k, :i, :p, :s, :e, :l, :ws, :we)"),
                [{"k": key, "i": p.segment, "p": p.part, "s": p.start, "e": p.end,
                  "l": p.speaker, "ws": p.word_start, "we": p.word_end} for p in d.parts])


def speakers_of(engine: sa.Engine, key: str) -> dict | None:
    """A file's speakers (label, name, talk time, first speech) and turns, or None when the
    `speakers` asset has not run for it. `turns`: consecutive parts of one speaker merged,
    each with its text (the segments' words in that range when the transcript has words)."""
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT * FROM speaker_files WHERE key = :k"),
                            {"k": key}).mappings().first()
        if head is None:
            return None
        speakers = conn.execute(sa.text(
            "SELECT fs.label, nm.name, fs.talk_s, fs.first_s, fs.segments "
            f"FROM file_speakers fs {NAMED} WHERE fs.key = :k ORDER BY fs.first_s"),
            {"k": key, "name_distance": NAME_DISTANCE}).mappings().all()
        parts = conn.execute(sa.text(
            "SELECT p.idx, p.part, p.start_s, p.end_s, p.label, p.word_start, p.word_end, "
            "       s.text, s.words FROM segment_speakers p "
            "JOIN transcript_segments s ON s.key = p.key AND s.idx = p.idx "
            "WHERE p.key = :k ORDER BY p.start_s, p.idx, p.part"), {"k": key}).mappings().all()
    names = {s["label"]: s["name"] for s in speakers}
    turns: list[dict] = []
    for p in parts:
        text = _part_text(p)
        if turns and turns[-1]["speaker"] == p["label"]:
            turns[-1]["end"] = max(turns[-1]["end"], p["end_s"])
            turns[-1]["text"] = (turns[-1]["text"] + " " + text).strip()
        else:
            turns.append({"speaker": p["label"], "name": names.get(p["label"]),
                          "start": p["start_s"], "end": p["end_s"], "text": text})
    return {"speaker_count": head["speaker_count"], "speech_s": head["speech_s"],
            "note": head["note"], "model_id": head["model_id"],
            "speakers": [dict(s) for s in speakers], "turns": turns,
            "segments": [{"idx": p["idx"], "part": p["part"], "start": p["start_s"],
                          "end": p["end_s"], "speaker": p["label"],
                          "word_start": p["word_start"], "word_end": p["word_end"]}
                         for p in parts]}


def _part_text(p) -> str:
    words = p["words"]
    if words and p["word_start"] is not None:
        return words_text(words[p["word_start"]:p["word_end"]])
    if p["part"] == 0 or not words:  # no word times: the whole segment, once
        return p["text"].strip() if p["part"] == 0 else ""
    return ""


def segment_speakers(engine: sa.Engine, key: str) -> dict[int, str]:
    """Transcript segment idx -> the speaker of most of it (for `"speaker"` on segments)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT DISTINCT ON (idx) idx, label FROM segment_speakers WHERE key = :k "
            "ORDER BY idx, (end_s - start_s) DESC"), {"k": key}).all()
    return {r.idx: r.label for r in rows}


def name_speaker(engine: sa.Engine, key: str, label: str, name: str) -> list[tuple[str, str]]:
    """Give file `key`'s speaker `label` a name; returns every (key, label) that now carries
    it (this voice in other files too). Naming the same file speaker again renames it.
    Raises KeyError when the file has no such speaker."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("empty speaker name")
    with engine.begin() as conn:
        centroid = conn.execute(sa.text(
            "SELECT centroid::text FROM file_speakers WHERE key = :k AND label = :l"),
            {"k": key, "l": label}).scalar()
        if centroid is None:
            raise KeyError(f"file {key} has no speaker {label!r}")
        conn.execute(sa.text("DELETE FROM speaker_names WHERE source_key = :k AND "
                             "source_label = :l"), {"k": key, "l": label})
        conn.execute(sa.text(
            "INSERT INTO speaker_names (name, centroid, source_key, source_label) "
            "VALUES (:n, CAST(:c AS vector), :k, :l)"),
            {"n": name, "c": centroid, "k": key, "l": label})
    return files_of_speaker(engine, name)


def files_of_speaker(engine: sa.Engine, name: str) -> list[tuple[str, str]]:
    """(key, label) of every file speaker the name resolves to (nearest named voice)."""
    with engine.connect() as conn:
        return [(r.key, r.label) for r in conn.execute(sa.text(
            f"SELECT fs.key, fs.label FROM file_speakers fs {NAMED} "
            "WHERE lower(nm.name) = lower(:n) ORDER BY fs.key, fs.label"),
            {"n": " ".join(name.split()), "name_distance": NAME_DISTANCE}).all()]


def names_of_voices(engine: sa.Engine, centroids: Sequence) -> list[str | None]:
    """The name of the nearest named voice within NAME_DISTANCE of each centroid (a voice
    heard outside the catalogue, e.g. by the /transcribe service), or None."""
    with engine.connect() as conn:
        return [conn.execute(sa.text(
            "SELECT name FROM speaker_names WHERE (centroid <=> CAST(:c AS vector)) <= :d "
            "ORDER BY centroid <=> CAST(:c AS vector), named_at DESC LIMIT 1"),
            {"c": to_pgvector(c), "d": NAME_DISTANCE}).scalar() for c in centroids]


def unknown_speaker_note(engine: sa.Engine, speaker: str) -> str | None:
    """Why a speaker filter can match nothing: no file speaker carries the name or label
    (a note for the person searching, not an error: files ingested later may)."""
    with engine.connect() as conn:
        known = conn.execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM file_speakers WHERE label = :s) OR EXISTS "
            "(SELECT 1 FROM speaker_names WHERE lower(name) = lower(:s))"),
            {"s": " ".join(speaker.split())}).scalar()
    if known:
        return None
    return (f"no speaker is named {speaker!r}: name one with `media-assets speakers name "
            f"FILE S1 {speaker!r}` (labels S1, S2, ... are per file)")


def speaker_filter_sql(alias: str = "f") -> str:
    """` AND ...`: the file has a speaker with this name (as resolved above) or label."""
    return (f" AND EXISTS (SELECT 1 FROM file_speakers fs "
            f"{NAMED.replace(':name_distance', str(NAME_DISTANCE))} WHERE fs.key = {alias}.key "
            f"AND (lower(nm.name) = lower(:f_speaker) OR fs.label = :f_speaker))")


def keys_with_speakers(engine: sa.Engine, keys: Sequence[str]) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT key FROM speaker_files WHERE key = ANY(:k)"),
                                {"k": list(keys)}).scalars())
