"""A cluster's name, description, tags, category and confidence (the label-cluster contract).

With the captioner: BLIP-2 captions each representative and answers "What is the main
subject of this photo?"; the name is the phrase most of those texts share. Confidence is
computed, never invented: half from how far the texts agree (the share that contain the
name, and their mean pairwise word overlap), half from how well CLIP finds the name in the
cluster (the name's text vector against the centroid, read on CLIP's scale). Without the
captioner, CLIP alone names the cluster by zero-shot over a vocabulary, and the label says
it is degraded, and why.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np
from PIL import Image

from media_assets.lib.images.analysis import DEFAULT_OBJECTS, DEFAULT_SCENES
from media_assets.lib.images.captioner import answer_question, caption_images
from media_assets.lib.models.clip import embed_texts
from media_assets.lib.models.manager import ModelManager
from media_assets.lib.models.roles import Role

QUESTION = "What is the main subject of this photo?"
MAX_TAGS = 8
# Categories and the CLIP prompt that stands for each.
CATEGORIES = {
    "people": "a photo of people", "pets": "a photo of a pet", "animals": "a photo of wild animals",
    "food": "a photo of food", "nature": "a photo of nature", "city": "a photo of a city street",
    "home": "a photo of a room in a home", "documents": "a photo of a document or a screenshot",
    "vehicles": "a photo of a vehicle", "events": "a photo of a party or an event",
    "sports": "a photo of sports", "art": "a photo of a painting or artwork",
    "travel": "a travel photo of a landmark", "objects": "a photo of an object",
}
VOCABULARY = sorted(set(DEFAULT_OBJECTS) | set(DEFAULT_SCENES) | {
    "kitten", "puppy", "baby", "family", "wedding", "birthday", "concert", "garden", "park",
    "street", "office", "kitchen", "receipt", "whiteboard", "map", "sunset", "lake", "desert",
    "flowers", "selfie", "crowd", "painting", "drawing", "screenshot", "diagram"})
STOP = set("""a an the of on in at to and or with without for from by is are was were be
being been this that these there their its it his her they them photo picture image view
some very two three several group close up closeup front back side top next near large small
big little other one many of""".split())
CLIP_SIM_LOW, CLIP_SIM_HIGH = 0.15, 0.30  # a matching caption scores ~0.3 in CLIP ViT-B-32


@dataclass
class Label:
    cluster_name: str
    description: str
    tags: list[str]
    primary_category: str
    confidence: float
    clip_terms: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    degraded: bool = False
    degraded_reason: str | None = None
    model_id: str | None = None

    def contract(self) -> dict:
        """The seed's label-cluster response."""
        d = asdict(self)
        return {k: d[k] for k in ("cluster_name", "description", "tags", "primary_category",
                                  "confidence")} | {"degraded": self.degraded,
                                                    "degraded_reason": self.degraded_reason}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*[a-z]|[a-z]", text.lower())


def content(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOP and len(w) > 2}


def shared_phrase(texts: list[str]) -> tuple[str | None, float]:
    """The phrase (1-3 words, not starting or ending with a stop word) found in the most
    texts, longer phrases winning ties; and the share of texts that contain it."""
    if not texts:
        return None, 0.0
    df: Counter = Counter()
    first: dict[str, int] = {}
    for text in texts:
        toks = words(text)
        seen = set()
        for n in (1, 2, 3):
            for i in range(len(toks) - n + 1):
                gram = toks[i:i + n]
                if (gram[0] in STOP or gram[-1] in STOP or len(gram[-1]) < 3
                        or len(set(gram)) < n):  # "portr portr": a stutter, not a name
                    continue
                phrase = " ".join(gram)
                if phrase not in seen:
                    seen.add(phrase)
                    df[phrase] += 1
                    first.setdefault(phrase, len(first))
    if not df:
        return None, 0.0
    need = max(1, math.ceil(len(texts) / 2))
    ranked = sorted(df, key=lambda p: (-(df[p] >= need), -df[p] * (1 + 0.5 * p.count(" ")),
                                       first[p]))
    best = ranked[0]
    return best, df[best] / len(texts)


def agreement(texts: list[str]) -> float:
    """Mean pairwise overlap (Jaccard) of the texts' content words; 1.0 for one text."""
    sets = [content(t) for t in texts if content(t)]
    if len(sets) < 2:
        return 1.0 if sets else 0.0
    return float(np.mean([len(a & b) / len(a | b) for a, b in combinations(sets, 2)]))


def clip_fit(similarity: float) -> float:
    """A text-image cosine similarity read on CLIP's scale, 0..1."""
    return float(min(1.0, max(0.0, (similarity - CLIP_SIM_LOW) / (CLIP_SIM_HIGH - CLIP_SIM_LOW))))


def _title(phrase: str) -> str:
    return " ".join(w.capitalize() for w in phrase.split())


def _clip_view(clip, centroids: np.ndarray) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Per centroid: the primary category, the vocabulary terms nearest it, and the
    softmax over the vocabulary (for the CLIP-only confidence)."""
    import torch

    cats = list(CATEGORIES)
    cat_vecs = embed_texts(clip, [CATEGORIES[c] for c in cats])
    voc_vecs = embed_texts(clip, [f"a photo of {v}." for v in VOCABULARY])
    scale = float(clip.model.logit_scale.exp().item())
    primary = [cats[int(i)] for i in (centroids @ cat_vecs.T).argmax(axis=1)]
    sims = centroids @ voc_vecs.T
    terms = [[VOCABULARY[j] for j in row.argsort()[::-1][:12]] for row in sims]
    probs = torch.softmax(torch.from_numpy(scale * sims), dim=-1).numpy()
    return primary, terms, probs


def label_clusters(manager: ModelManager, clusters: list[tuple[int, np.ndarray, list[Image.Image]]],
                   use_captioner: bool = True) -> list[Label]:
    """Labels for (size, centroid, representative images) per cluster. CLIP is required;
    the captioner, when it loads, names from what its texts share."""
    if not clusters:
        return []
    centroids = np.vstack([c for _, c, _ in clusters]).astype(np.float32)
    with manager.use(Role.CLIP) as clip:
        primary, terms, probs = _clip_view(clip, centroids)
    texts: list[list[str]] | None = None
    reason = "captioner disabled in config"
    captioner_id = None
    if use_captioner:
        try:
            with manager.use(Role.CAPTIONER) as cap:
                texts = []
                for _, _, images in clusters:
                    if not images:
                        texts.append([])
                        continue
                    caps = caption_images(cap, images)
                    answers = answer_question(cap, images, QUESTION)
                    texts.append([t for t in caps + answers if t])
                captioner_id = manager.spec(Role.CAPTIONER).model_id
        except Exception as exc:  # missing weights, budget, broken folder: CLIP only
            texts, reason = None, f"captioner unavailable ({type(exc).__name__}): {exc}"[:500]
    names: list[str | None] = []
    shares: list[float] = []
    for i in range(len(clusters)):
        phrase, share = shared_phrase(texts[i]) if texts is not None else (None, 0.0)
        names.append(phrase)
        shares.append(share)
    with manager.use(Role.CLIP) as clip:
        named = [n for n in names if n]
        name_vecs = dict(zip(named, embed_texts(clip, [f"a photo of {n}." for n in named])))
    out = []
    for i, (size, cent, _) in enumerate(clusters):
        phrase = names[i]
        if phrase is None:  # CLIP only (or the captioner said nothing usable)
            top = terms[i][0]
            why = reason if texts is None else "the captions share no words; CLIP named it"
            out.append(Label(
                _title(top), f"{size} items that CLIP places nearest to "
                + ", ".join(terms[i][:3]) + ".", terms[i][:5], primary[i],
                round(float(probs[i].max()), 3), terms[i], texts[i] if texts else [],
                degraded=True, degraded_reason=why))
            continue
        ts = texts[i]
        words_df = Counter(w for t in ts for w in content(t))
        tags = [w for w, n in words_df.most_common() if n >= 2 or len(ts) == 1][:MAX_TAGS]
        central = max(ts, key=lambda t: sum(len(content(t) & content(o)) for o in ts))
        fit = clip_fit(float(name_vecs[phrase] @ cent))
        confidence = 0.5 * (0.5 * shares[i] + 0.5 * agreement(ts)) + 0.5 * fit
        out.append(Label(
            _title(phrase), f"{size} items; typically: {central}.", tags or [phrase],
            primary[i], round(confidence, 3), terms[i], ts, model_id=captioner_id))
    return out
