"""Search relevance on a labelled corpus made from real sources: nDCG@10, MRR and
recall@10 for each leg alone and for the fused result.

    python bench/bench_search_quality.py [--models DIR]   # BENCH_VERBOSE=1: per query

The corpus: espeak-ng memos in English, German and Spanish (alone and as video
soundtracks), scikit-image photos with truthful captions stored (as a real captioner would
write them), and distractors (flat images, tones). Queries carry graded judgements (2: what
was asked for, 1: related). With the tiny random CLIP (the default, made on the fly) the
visual leg is noise by construction: the fused result must still put the exact spoken,
caption and name matches first. Everything runs in this process on fresh databases of the
embedded server under ./.bench_home.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np


def build_corpus(root: Path) -> dict[str, str]:
    """Write the corpus; returns file name -> its caption to store (images only)."""
    import skimage.data
    from PIL import Image

    from media_assets.lib.samples import encode_video, read_wav, solid_image, speech, tone

    memos = {
        "errands.wav": ("en-us", "Remember to buy tomatoes and call the plumber tomorrow."),
        "dentist.wav": ("en-us", "The dentist appointment moved to Thursday at four."),
        "recipe.wav": ("en-us", "Mix the flour with two eggs and a cup of warm milk."),
        "reise.wav": ("de", "Guten Morgen. Heute nehmen wir den Zug nach Berlin und essen "
                            "im Zug Kuchen."),
        "mercado.wav": ("es", "Buenos días. Mañana vamos al mercado a comprar naranjas y pan."),
    }
    (root / "memos").mkdir(parents=True)
    for name, (voice, text) in memos.items():
        speech(text, root / "memos" / name, voice=voice)
    photos = {"astronaut": "an astronaut in a white spacesuit in front of a flag",
              "chelsea": "a tabby cat looking to the side",
              "coffee": "a cup of coffee on a saucer",
              "rocket": "a rocket on the launch pad before lift off",
              "hubble_deep_field": "galaxies and stars in deep space",
              "camera": "a man with a camera on a tripod"}
    (root / "photos").mkdir()
    for name in photos:
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        img.save(root / "photos" / f"{name}.jpg")
    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (90, 90, 90)]):
        solid_image(root / "photos" / f"scan {i}.png", color)  # distractors
    tours = root / "videos"
    tours.mkdir()
    for name, text in (("museum tour.mp4", "The museum opens at nine in the morning on "
                                           "weekdays, and the guided tour starts at ten."),
                       ("garden.mp4", "We planted roses and tulips along the garden wall.")):
        wav = speech(text, Path(tempfile.mkdtemp()) / "s.wav")
        samples, rate = read_wav(wav)
        cat = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((96, 64)))
        frames = [cat] * (math.ceil(len(samples) / rate) + 1)  # cover the soundtrack
        encode_video(tours / name, frames, fps=1.0, audio=samples, rate=rate)
    from media_assets.lib.samples import write_wav

    write_wav(root / "memos" / "hum.wav", tone(3.0, 220))  # a distractor with no speech
    return {f"{name}.jpg": caption for name, caption in photos.items()}


# query -> {file name: grade}; "lexical" queries have an exact word match somewhere.
QUERIES = {
    "tomatoes plumber": {"errands.wav": 2},
    "Zug nach Berlin": {"reise.wav": 2},
    "mercado naranjas": {"mercado.wav": 2},
    "dentist Thursday": {"dentist.wav": 2},
    "flour eggs milk": {"recipe.wav": 2},
    "museum opens": {"museum tour.mp4": 2},
    "roses tulips": {"garden.mp4": 2},
    "cat": {"chelsea.jpg": 2, "museum tour.mp4": 1, "garden.mp4": 1},
    "cup of coffee": {"coffee.jpg": 2},
    "rocket launch": {"rocket.jpg": 2},
    "galaxies": {"hubble_deep_field.jpg": 2},
    "astronaut": {"astronaut.jpg": 2},
    "camera tripod": {"camera.jpg": 2},
    "memos": {"errands.wav": 1, "dentist.wav": 1, "recipe.wav": 1, "reise.wav": 1,
              "mercado.wav": 1, "hum.wav": 1},
}


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(n, 0) / math.log2(i + 2) for i, n in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: list[str], grades: dict[str, int]) -> float:
    best = max(grades.values())
    return next((1 / (i + 1) for i, n in enumerate(ranked) if grades.get(n) == best), 0.0)


def recall(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    return len(set(ranked[:k]) & set(grades)) / len(grades)


def files_in_order(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        name = p.rsplit("/", 1)[-1]
        if name not in out:
            out.append(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=None,
                    help="model folder (default: tiny random models, made now)")
    args = ap.parse_args()
    from click.testing import CliRunner

    from media_assets.cli import main as cli
    from media_assets.lib.db import open_catalog
    from media_assets.lib.db.server import ensure_database, start_embedded, with_database
    from media_assets.lib.models.clip import embed_texts
    from media_assets.lib.models.registry import build_manager
    from media_assets.lib.models.roles import Role
    from media_assets.lib.search import legs
    from media_assets.lib.search.query import search
    from media_assets.lib.settings import Settings

    work = Path(tempfile.mkdtemp())
    models = args.models
    if models is None:
        from media_assets.lib.models.tiny import make_tiny

        models = work / "models"
        make_tiny(models)
    home = Path(".bench_home").resolve()
    server = start_embedded(home / "pgdata")
    name = "quality_" + uuid.uuid4().hex[:8]
    for db in (name, name + "_dagster"):
        ensure_database(server, db)
    os.environ.update({
        "MEDIA_ASSETS_HOME": str(work / "home"), "MEDIA_ASSETS_MODEL_DIR": str(models),
        "MEDIA_ASSETS_DATABASE_URL": with_database(server, name).render_as_string(False),
        "MEDIA_ASSETS_DAGSTER_DATABASE_URL": with_database(
            server, name + "_dagster", "psycopg2").render_as_string(False)})
    captions = build_corpus(work / "corpus")
    out = CliRunner().invoke(cli, ["ingest", "-q", str(work / "corpus")])
    assert out.exit_code == 0, out.output
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    import sqlalchemy as sa

    with catalog.engine.begin() as conn:  # what a real captioner would have written
        for file, caption in captions.items():
            conn.execute(sa.text(
                "UPDATE image_analysis a SET caption = :c FROM media_files f "
                "WHERE f.key = a.key AND f.primary_path LIKE :p"), {"c": caption, "p": f"%/{file}"})
    if os.environ.get("BENCH_VERBOSE"):
        with catalog.engine.connect() as conn:
            for row in conn.execute(sa.text(
                    "SELECT f.primary_path, t.language, t.text FROM transcripts t "
                    "JOIN media_files f USING (key)")):
                print(row.primary_path.rsplit("/", 1)[-1], row.language, row.text)
    manager = build_manager(settings.models)
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for query, grades in QUERIES.items():
        with manager.use(Role.CLIP) as clip:
            vec, ref = embed_texts(clip, [query])[0], clip.model_ref
        ranked = {"visual": files_in_order(h.path for h in
                                           legs.visual(catalog.engine, vec, ref, 20)[0])}
        for leg, run in legs.LEXICAL.items():
            ranked[leg] = files_in_order(h.path for h in run(catalog.engine, query, 20))
        ranked["fused"] = files_in_order(
            h.path for h in search(catalog.engine, manager, query, 10).hits)
        if os.environ.get("BENCH_VERBOSE"):
            print(query, {leg: order[:3] for leg, order in ranked.items()})
        for leg, order in ranked.items():
            scores.setdefault(leg, []).append((ndcg(order, grades), mrr(order, grades),
                                               recall(order, grades)))
    print(f"{len(QUERIES)} queries over {len(list((work / 'corpus').rglob('*.*')))} files; "
          f"CLIP: {'tiny random (visual leg is noise)' if args.models is None else models}")
    print(f"{'leg':<8} {'nDCG@10':>8} {'MRR':>6} {'recall@10':>10}")
    for leg, rows in scores.items():
        n, m, r = np.mean(rows, axis=0)
        print(f"{leg:<8} {n:>8.3f} {m:>6.3f} {r:>10.3f}")
    best_single = max(np.mean([x[0] for x in rows]) for leg, rows in scores.items()
                      if leg != "fused")
    fused = np.mean([x[0] for x in scores["fused"]])
    print(f"fused nDCG@10 {fused:.3f} vs best single leg {best_single:.3f}: "
          f"{'at or above' if fused >= best_single - 1e-9 else 'BELOW'}")
    print(json.dumps({leg: [round(float(v), 3) for v in np.mean(rows, axis=0)]
                      for leg, rows in scores.items()}))
    catalog.dispose()


if __name__ == "__main__":
    main()
