"""JSON inference + load throughput (records/s) vs a bare COPY of the same lines into JSONB,
and the peak memory of ours.

    python bench/bench_json.py [--n 200000]     # --n 1300000 makes a ~300 MB file

Both run in this process on a scratch database of the embedded server (./.bench_home). Ours
is the production path: probe (streamed) + infer (sample 2000) + typed COPY from a stream of
records + indexes + atomic swap. Baseline: the NDJSON lines COPYed as they are into one
JSONB column, no inference, no index. Peak RSS is the process's high-water mark after ours.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
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
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp()) / "orders.ndjson"
    make(args.n, path)
    catalog = open_catalog(Settings(home=Path(".bench_home").resolve()))

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    details = probe_file(path).details
    design = infer_schema(sample_records(path, details, 2000), "orders_bench",
                          total=details["records"])
    result = load_table(catalog.engine, design, iter_records(path, details))
    ours = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

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
    print(f"{args.n} NDJSON records ({path.stat().st_size / 2**20:.0f} MB), design "
          f"{design.storage_type}: {len([f for f in design.fields if f.column])} columns, "
          f"{len(result.indexes)} indexes, {result.reject_count} rejects")
    print(f"ours: {args.n / ours:,.0f} records/s ({ours:.1f} s)   bare COPY to JSONB: "
          f"{args.n / bare:,.0f} records/s ({bare:.1f} s)   ratio {bare / ours:.2f}x")
    print(f"peak RSS: {peak:,.0f} MB (before ours: {rss_before:,.0f} MB)")


if __name__ == "__main__":
    main()
