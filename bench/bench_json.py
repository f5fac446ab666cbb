"""JSON inference + load throughput (records/s) vs a bare COPY of the same lines into JSONB,
and the peak memory of ours.

    python bench/bench_json.py [--n 200000] [--no-python-path]   # --n 1550000: ~300 MB

All run in this process on a scratch database of the embedded server (./.bench_home). Ours
is the production path: probe (streamed) + infer (sample 2000) + load: raw lines COPYed to a
staging table and cast by INSERT … SELECT on the server (PostgreSQL 16+; from 16 MB the two
halves at once, on two connections) + indexes + atomic swap. Then the same load by the Python path (records converted here, typed binary
COPY), which older servers take. Baseline: the NDJSON lines COPYed as they are into one
JSONB column, no inference, no index. Peak RSS is the process's high-water mark after ours
(the server path); the Python path's is printed after it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from media_assets.lib.files.probe import probe_file
from media_assets.lib.json_docs.load import iter_records, load_table, sample_records
from media_assets.lib.json_docs.schema import infer_schema
from media_assets.lib.db import open_catalog
from media_assets.lib.settings import Settings


def make(n: int, path: Path) -> None:
    rng = random.Random(0)
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "order_id": i, "customer": f"c{rng.randrange(5000)}",
                "email": f"user{rng.randrange(5000)}@example.com",
                "status": rng.choice(["new", "paid", "shipped", "returned"]),
                "total": round(rng.uniform(1, 500), 2),
                "created_at": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
                              f"{rng.randrange(24):02d}:00:00Z",
                "items": [{"sku": f"s{rng.randrange(999)}", "qty": rng.randrange(1, 4)}],
                "note": rng.choice([None, "gift", "fragile"]),
            }) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--no-python-path", dest="python_path", action="store_false",
                    help="skip the Python path's load (older servers take it)")
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp()) / "orders.ndjson"
    make(args.n, path)
    catalog = open_catalog(Settings(home=Path(".bench_home").resolve()))

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    details = probe_file(path).details
    probed = time.perf_counter()
    design = infer_schema(sample_records(path, details, 2000), "orders_bench",
                          total=details["records"])
    inferred = time.perf_counter()
    result = load_table(catalog.engine, design, iter_records(path, details))
    ours = time.perf_counter() - t
    load_s = time.perf_counter() - inferred
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    python_s = None
    if args.python_path:
        t = time.perf_counter()
        slow = load_table(catalog.engine, design, iter_records(path, details),
                          server_side=False)
        python_s = time.perf_counter() - t
        assert (slow.row_count, slow.reject_count) == (result.row_count, result.reject_count)
    peak_python = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    raw = catalog.engine.raw_connection()
    t = time.perf_counter()
    cur = raw.cursor()
    cur.execute("DROP TABLE IF EXISTS json_data.bare_copy")
    cur.execute("CREATE TABLE json_data.bare_copy (doc jsonb)")
    with cur.copy("COPY json_data.bare_copy (doc) FROM STDIN") as cp, open(path) as fh:
        for line in fh:
            cp.write_row((line.rstrip("\n"),))
    raw.commit()
    bare = time.perf_counter() - t
    raw.close()
    n = args.n
    print(f"{n} NDJSON records ({path.stat().st_size / 2**20:.0f} MB), design "
          f"{design.storage_type}: {len([f for f in design.fields if f.column])} columns, "
          f"{len(result.indexes)} indexes, {result.reject_count} rejects")
    print(f"ours: {n / ours:,.0f} records/s ({ours:.1f} s)   bare COPY to JSONB: "
          f"{n / bare:,.0f} records/s ({bare:.1f} s)   ratio {bare / ours:.2f}x")
    print(f"  of which probe {ours - load_s - (inferred - probed):.1f} s, infer "
          f"{inferred - probed:.1f} s, load (server path) {load_s:.1f} s: load alone "
          f"{bare / load_s:.2f}x a bare COPY")
    if python_s is not None:
        print(f"  load by the Python path: {python_s:.1f} s ({bare / python_s:.2f}x a bare "
              f"COPY); the server path is {python_s / load_s:.2f}x as fast")
    print(f"peak RSS: {peak:,.0f} MB (before ours: {rss_before:,.0f} MB; after the Python "
          f"path: {peak_python:,.0f} MB)")
    shutil.rmtree(path.parent)  # the generated file (300 MB at --n 1550000)


if __name__ == "__main__":
    main()
