"""Who speaks when: the transcript's segments, embedded with the GE2E voice encoder and
clustered into speakers whose number is not given.

1. Each transcript segment is cut into equal pieces of at most `PIECE_S` seconds (a turn
   change inside a long Whisper segment is found at that resolution; on the bench 4-s
   pieces gave steadier voices than 2-s ones, and Whisper's segments already end at most
   turn changes).
2. Each piece's audio (decoded in chunks: memory does not grow with the file) keeps only
   its voiced 30-ms frames (an energy gate; Whisper's VAD already dropped the long
   silences), is brought to -30 dBFS, and becomes one 256-d unit vector, the mean of its
   1.6-s partials. A piece with under `MIN_VOICED_S` of voice gets its neighbour's speaker.
3. Average-linkage clustering on cosine distance, cut at `CLUSTER_DISTANCE` (or, when a
   file's voices vary more, `NN_FACTOR` x the median nearest-piece distance); groups whose
   mean voices are within `MERGE_DISTANCE` are one speaker; a group with under
   `MIN_SPEAKER_S` of speech joins the nearest other one (a cough is not a speaker). The
   constants were chosen on bench/bench_diarization.py (espeak-ng voices).
4. Speakers are S1, S2, ... in order of first speech; consecutive pieces of a segment with
   the same speaker make one part, with its word range when the transcript has words.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from media_assets.lib.speech.audio import RATE, stream_chunks

PIECE_S = 4.0
FINE_STEP_S, FINE_CONTEXT_S = 0.5, 1.6
MIN_VOICED_S = 0.5
CLUSTER_DISTANCE = 0.16
NN_FACTOR = 1.5
MERGE_DISTANCE = 0.07
MAX_SPEAKERS = 12
MIN_SPEAKER_S = 5.0
MAX_PIECES = 4000  # ~2.2 h of speech at 2-s pieces; the distance matrix stays ~130 MB
FRAME = int(0.03 * RATE)
TARGET_DBFS = -30.0


@dataclass(frozen=True)
class Piece:
    segment: int  # the transcript segment's index
    start: float
    end: float


@dataclass
class Part:
    segment: int
    part: int
    start: float
    end: float
    speaker: str
    word_start: int | None = None  # index of the first word of the segment in this part
    word_end: int | None = None  # one past the last


@dataclass
class Speaker:
    label: str
    talk_s: float
    first_s: float
    segments: int
    centroid: np.ndarray


@dataclass
class Diarization:
    parts: list[Part] = field(default_factory=list)
    speakers: list[Speaker] = field(default_factory=list)
    speech_s: float = 0.0
    note: str | None = None  # why there are no speakers, or what was left out

    def turns(self) -> list[tuple[float, float, str]]:
        """(start, end, speaker): consecutive parts of one speaker merged."""
        out: list[list] = []
        for p in sorted(self.parts, key=lambda p: p.start):
            if out and out[-1][2] == p.speaker:
                out[-1][1] = max(out[-1][1], p.end)
            else:
                out.append([p.start, p.end, p.speaker])
        return [tuple(t) for t in out]


def pieces_of(segments: Sequence[dict], piece_s: float = PIECE_S) -> list[Piece]:
    """Each segment ({start, end}) cut into equal pieces of at most `piece_s` seconds."""
    out = []
    for i, seg in enumerate(segments):
        start, end = float(seg["start"]), float(seg["end"])
        if end <= start:
            continue
        n = max(1, math.ceil((end - start) / piece_s - 1e-9))
        step = (end - start) / n
        out += [Piece(i, start + k * step, start + (k + 1) * step) for k in range(n)]
    return out


def piece_audio(path: str, pieces: Sequence[Piece],
                chunk_s: float = 300.0) -> Iterator[tuple[int, np.ndarray]]:
    """(piece index, 16 kHz samples) in time order, decoding the file chunk by chunk and
    keeping only what a piece not yet cut still needs."""
    order = sorted(range(len(pieces)), key=lambda i: pieces[i].start)
    buf, buf_start, at = np.zeros(0, np.float32), 0.0, 0
    for offset, chunk in stream_chunks(path, chunk_s):
        buf = np.concatenate([buf, chunk]) if len(buf) else chunk
        if not len(buf) or buf_start > offset:
            buf_start = offset
        buf_end = buf_start + len(buf) / RATE
        while at < len(order) and pieces[order[at]].end <= buf_end:
            p = pieces[order[at]]
            a, b = int((p.start - buf_start) * RATE), int((p.end - buf_start) * RATE)
            yield order[at], buf[max(0, a):max(0, b)].copy()
            at += 1
        keep_from = pieces[order[at]].start if at < len(order) else buf_end
        cut = min(len(buf), max(0, int((keep_from - buf_start) * RATE)))
        buf, buf_start = buf[cut:], buf_start + cut / RATE
    while at < len(order):  # pieces past the decoded end (a transcript longer than audio)
        p = pieces[order[at]]
        a = int((p.start - buf_start) * RATE)
        yield order[at], buf[max(0, a):].copy()
        at += 1


def voiced(wav: np.ndarray) -> np.ndarray:
    """The 30-ms frames loud enough to be voice (within 35 dB of the piece's loudest and
    above -55 dBFS), brought to -30 dBFS when quieter."""
    n = len(wav) // FRAME
    if n == 0:
        return np.zeros(0, np.float32)
    frames = wav[:n * FRAME].reshape(n, FRAME)
    db = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)
    keep = (db > db.max() - 35) & (db > -55)
    out = frames[keep].reshape(-1)
    if not len(out):
        return out
    rms_db = 20 * np.log10(np.sqrt((out ** 2).mean()) + 1e-9)
    if rms_db < TARGET_DBFS:
        out = out * (10 ** ((TARGET_DBFS - rms_db) / 20))
    return out.astype(np.float32)


def cluster(vectors: np.ndarray, seconds: np.ndarray, distance: float = CLUSTER_DISTANCE,
            merge_distance: float = MERGE_DISTANCE,
            min_speaker_s: float = MIN_SPEAKER_S, max_speakers: int = MAX_SPEAKERS) -> np.ndarray:
    """Cluster ids (0..k-1, arbitrary order) for unit vectors; the count is not given.

    One average-linkage tree on cosine distance, cut where merging would join groups
    further apart than the threshold: `distance` (chosen on bench/bench_diarization.py),
    or `NN_FACTOR` times the median distance of a piece to its nearest other piece when
    that is larger. The second term scales the cut with how much one voice varies in this
    file: synthetic voices repeat themselves almost exactly and sit close together, real
    voices over real microphones vary more and sit further apart."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    dist = np.clip(pdist(vectors.astype(np.float64), "cosine"), 0, None)
    square = squareform(dist)
    np.fill_diagonal(square, np.inf)
    nearest = float(np.median(square.min(axis=1)))
    del square
    threshold = max(distance, NN_FACTOR * nearest)
    tree = linkage(dist, "average")
    labels = fcluster(tree, threshold, "distance") - 1
    if len(np.unique(labels)) > max_speakers:
        labels = fcluster(tree, max_speakers, "maxclust") - 1
    while True:  # two groups whose mean voices are this close are one speaker
        ids = np.unique(labels)
        if len(ids) < 2:
            break
        cents = np.stack([_unit(vectors[labels == c].mean(axis=0)) for c in ids])
        gaps = 1 - cents @ cents.T
        np.fill_diagonal(gaps, np.inf)
        i, j = np.unravel_index(np.argmin(gaps), gaps.shape)
        if gaps[i, j] >= merge_distance:
            break
        labels[labels == ids[j]] = ids[i]
    while True:  # clusters with too little speech join their nearest neighbour
        ids = np.unique(labels)
        if len(ids) < 2:
            break
        talk = {c: float(seconds[labels == c].sum()) for c in ids}
        small = min(ids, key=lambda c: talk[c])
        if talk[small] >= min_speaker_s:
            break
        cents = {c: _unit(vectors[labels == c].mean(axis=0)) for c in ids}
        nearest = max((c for c in ids if c != small), key=lambda c: float(cents[c] @
                                                                          cents[small]))
        labels[labels == small] = nearest
    _, labels = np.unique(labels, return_inverse=True)
    return labels


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-8)).astype(np.float32)


def diarize(encoder, path: str, segments: Sequence[dict],
            distance: float = CLUSTER_DISTANCE, piece_s: float = PIECE_S) -> Diarization:
    """Speakers of a transcript's segments (the transcribe response's `segments`)."""
    pieces = pieces_of(segments, piece_s)
    if not pieces:
        return Diarization(note="no speech: the transcript has no segments")
    vectors, has = embed_pieces(encoder, path, pieces)
    coarse = label_pieces(pieces, vectors, has, segments, distance)
    if len(coarse.speakers) < 2:
        return coarse
    return refine(encoder, path, segments, coarse)


def refine(encoder, path: str, segments: Sequence[dict], coarse: Diarization,
           step_s: float = FINE_STEP_S) -> Diarization:
    """Turn changes at `step_s` resolution: every step of speech gets the speaker whose
    centroid is nearest to the voice in the 1.6 s around it (within its segment), smoothed
    by a majority of three; the speakers and their centroids stay those of the clustering.
    Whisper's segments can hold several turns (its batched pipeline cuts at up to 30 s):
    the 4-s pieces that find the speakers would place a change up to 2 s off."""
    fine = pieces_of(segments, step_s)
    context = [Piece(p.segment, max(float(segments[p.segment]["start"]),
                                    (p.start + p.end) / 2 - FINE_CONTEXT_S / 2),
                     min(float(segments[p.segment]["end"]),
                         (p.start + p.end) / 2 + FINE_CONTEXT_S / 2)) for p in fine]
    vectors, has = embed_pieces(encoder, path, context)
    if not has.any():
        return coarse
    cents = np.stack([s.centroid for s in coarse.speakers])
    labels = np.full(len(fine), -1)
    labels[has] = np.argmax(vectors[has] @ cents.T, axis=1)
    idx = np.nonzero(has)[0]
    for i in np.nonzero(~has)[0]:
        labels[i] = labels[idx[np.argmin(np.abs(idx - i))]]
    smooth = labels.copy()
    for i in range(1, len(fine) - 1):  # one step alone between two of another speaker
        if (fine[i - 1].segment == fine[i].segment == fine[i + 1].segment
                and labels[i - 1] == labels[i + 1] != labels[i]):
            smooth[i] = labels[i - 1]
    # Centroids stay the clustering's (the fine windows are shorter and noisier).
    return _assemble(fine, smooth, vectors, has, segments, coarse.note, centroids=cents)


def embed_pieces(encoder, path: str, pieces: Sequence[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, has): each piece's voice vector, and whether it had enough voice for one."""
    from media_assets.lib.models.voice import DIM, embed_utterances

    vectors = np.zeros((len(pieces), DIM), np.float32)
    has = np.zeros(len(pieces), bool)
    batch_idx, batch_wav = [], []

    def flush():
        if batch_wav:
            vectors[batch_idx] = embed_utterances(encoder, batch_wav)
            has[batch_idx] = True
            batch_idx.clear()
            batch_wav.clear()

    for i, wav in piece_audio(path, pieces):
        v = voiced(wav)
        if len(v) >= MIN_VOICED_S * RATE:
            batch_idx.append(i)
            batch_wav.append(v)
            if len(batch_wav) >= 64:
                flush()
    flush()
    return vectors, has


def label_pieces(pieces: Sequence[Piece], vectors: np.ndarray, has: np.ndarray,
                 segments: Sequence[dict], distance: float = CLUSTER_DISTANCE,
                 ) -> Diarization:
    """The speakers, from the pieces' vectors."""
    if not has.any():
        return Diarization(note="no voice found in the transcript's segments")
    note = None
    seconds = np.array([p.end - p.start for p in pieces])
    idx = np.nonzero(has)[0]
    head = idx[:MAX_PIECES]
    if len(idx) > MAX_PIECES:
        note = (f"{len(idx)} pieces of speech; the first {MAX_PIECES} were clustered and "
                "later ones took the speaker of the nearest centroid")
    labels = np.full(len(pieces), -1)
    labels[head] = cluster(vectors[head], seconds[head], distance, MERGE_DISTANCE,
                           MIN_SPEAKER_S)
    cents = np.stack([_unit(vectors[head][labels[head] == c].mean(axis=0))
                      for c in range(labels[head].max() + 1)])
    for i in idx[MAX_PIECES:]:
        labels[i] = int(np.argmax(cents @ vectors[i]))
    for i in np.nonzero(~has)[0]:  # too little voice: the nearest piece in time decides
        j = idx[np.argmin(np.abs(idx - i))]
        labels[i] = labels[j]
    return _assemble(pieces, labels, vectors, has, segments, note)


def _assemble(pieces, labels, vectors, has, segments, note,
              centroids: np.ndarray | None = None) -> Diarization:
    first: dict[int, float] = {}
    for p, lab in zip(pieces, labels):
        first.setdefault(int(lab), p.start)
    order = sorted(first, key=first.get)
    names = {c: f"S{n + 1}" for n, c in enumerate(order)}
    parts: list[Part] = []
    for p, lab in zip(pieces, labels):
        name = names[int(lab)]
        if parts and parts[-1].segment == p.segment and parts[-1].speaker == name:
            parts[-1].end = p.end
        else:
            n = parts[-1].part + 1 if parts and parts[-1].segment == p.segment else 0
            parts.append(Part(p.segment, n, p.start, p.end, name))
    for part in parts:
        words = segments[part.segment].get("words")
        if not words:
            continue
        inside = [k for k, w in enumerate(words)
                  if part.start <= (float(w["start"]) + float(w["end"])) / 2 < part.end
                  or (k == len(words) - 1 and (float(w["start"]) + float(w["end"])) / 2
                      >= part.end and part is _last_part(parts, part.segment))]
        if inside:
            part.word_start, part.word_end = inside[0], inside[-1] + 1
    speakers = []
    for c, name in sorted(names.items(), key=lambda x: int(x[1][1:])):
        mine = [k for k, lab in enumerate(labels) if lab == c]
        emb = [k for k in mine if has[k]]
        speakers.append(Speaker(
            name, round(sum(pieces[k].end - pieces[k].start for k in mine), 3), first[c],
            len({pieces[k].segment for k in mine}),
            centroids[c] if centroids is not None
            else _unit(vectors[emb].mean(axis=0)) if emb else np.zeros(256, np.float32)))
    speech = sum(p.end - p.start for p in pieces)
    return Diarization(parts, speakers, round(speech, 3), note)


def words_text(words: Sequence[dict]) -> str:
    """Timed words as text (stored words carry no leading space; Whisper's raw ones do)."""
    return " ".join(t for t in (str(w.get("word", "")).strip() for w in words) if t)


def split_by_speaker(segments: Sequence[dict], d: Diarization) -> list[dict]:
    """The transcript's segments cut where the speaker changes, each with its `speaker`:
    a part's text is its words (Whisper's segments can hold several turns). A segment
    without words stays whole, with the speaker of most of it; one without speech found,
    `speaker` None."""
    by_segment: dict[int, list[Part]] = {}
    for p in d.parts:
        by_segment.setdefault(p.segment, []).append(p)
    out = []
    for i, seg in enumerate(segments):
        parts = by_segment.get(i, [])
        words = seg.get("words")
        if not parts or not words or any(p.word_start is None for p in parts):
            main = max(parts, key=lambda p: p.end - p.start).speaker if parts else None
            out.append({**seg, "speaker": main})
            continue
        for p in parts:
            mine = words[p.word_start:p.word_end]
            out.append({"start": float(mine[0]["start"]), "end": float(mine[-1]["end"]),
                        "text": words_text(mine),
                        "words": mine, "speaker": p.speaker})
    return out


def _last_part(parts: list[Part], segment: int) -> Part:
    return [p for p in parts if p.segment == segment][-1]
