"""Load on the HTTP API: N mixed requests at a given concurrency, p50/p95 per endpoint.

    MEDIA_ASSETS_API_TOKEN=... python bench/bench_api.py --url http://127.0.0.1:8000 \
        [--requests 500] [--concurrency 32] [--json]

Runs against a server that is already up (`media-assets serve`, or the test's), as a
separate process so the load generator does not share the server's interpreter. The token,
when the server has one, comes from MEDIA_ASSETS_API_TOKEN (never from the command line,
where `ps` would show it) and travels in the Authorization header.

The mix, per 20 requests: 10 `/search` (varied queries and filters), 2 `/files/{key}`,
2 thumbnails, 1 video frame, 2 `/similar/{key}`, 1 `/clusters`, 1 `/health`, 1
`/analyze-image` (sent by at most 2 workers at once, inside the model queue's depth, so a
503 here would be a bug). Bounded: every request has a 60 s timeout and the run stops
after `--max-seconds`.

Before the timed requests, one of each kind is sent and not counted (a fresh server loads
its models on first use).

The client is aiohttp, not httpx: on 2 cores the load generator shares the cores with the
server, and httpx's client spent as much CPU as the server did (2.3-3.0 CPU-seconds per
500 requests against the server's 2.4-3.0, 2026-12-02), which measured the client's own
queue rather than the server's latency. aiohttp's (C-accelerated parser) spends a fraction
of that, the share a remote client would take: nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import random
import statistics
import sys
import time

import aiohttp

WORDS = ["rocket", "coffee", "astronaut", "launch", "tomorrow", "morning", "cup", "space",
         "photo", "person", "sky", "table", "records", "memo", "clip", "red", "blue"]
MIX = (["search"] * 10 + ["file"] * 2 + ["thumbnail"] * 2 + ["frame"] + ["similar"] * 2
       + ["clusters", "health", "analyze"])


def _jpeg() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 120, 200)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


async def _discover(c: aiohttp.ClientSession) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"image": [], "video": []}
    for q, kind in (("photo", "image"), ("rocket", "image"), ("clip", "video")):
        async with c.get("/search", params={"q": q, "k": 50, "kind": kind}) as r:
            r.raise_for_status()
            hits = (await r.json())["hits"]
        found[kind] += [h["key"] for h in hits if h["key"] not in found[kind]]
    return found


def _request(kind: str, rng: random.Random, keys: dict[str, list[str]], picture: str):
    image = rng.choice(keys["image"]) if keys["image"] else "0" * 16
    video = rng.choice(keys["video"]) if keys["video"] else None
    if kind == "search":
        params = {"q": " ".join(rng.sample(WORDS, rng.randint(1, 3))), "k": 20}
        if rng.random() < 0.3:
            params["kind"] = rng.choice(["image", "video", "audio"])
        return "GET", "/search", params, None
    if kind == "file":
        return "GET", f"/files/{image}", None, None
    if kind == "thumbnail":
        return "GET", f"/files/{image}/thumbnail", None, None
    if kind == "frame" and video:
        return "GET", f"/files/{video}/frame", {"t": rng.randint(0, 3)}, None
    if kind == "similar":
        return "GET", f"/similar/{image}", {"k": 10}, None
    if kind == "clusters":
        return "GET", "/clusters", None, None
    if kind == "analyze":
        return "POST", "/analyze-image", None, {"image": picture, "tasks": ["objects", "colors"]}
    return "GET", "/health", None, None


async def run_load(url: str, token: str | None, requests: int = 500, concurrency: int = 32,
                   max_seconds: float = 300, seed: int = 0) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    rng = random.Random(seed)
    plan = [MIX[i % len(MIX)] for i in range(requests)]
    rng.shuffle(plan)
    picture = _jpeg()
    results: dict[str, list[tuple[int | str, float]]] = {}
    analyzing = asyncio.Semaphore(2)
    # Idle connections dropped before uvicorn's 5 s keep-alive ends them under our feet.
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as c:
        keys = await _discover(c)
        # One request of each kind first, untimed: the models a fresh server loads on first
        # use, and its first frame decode, are start-up costs, not latency under load.
        for kind in dict.fromkeys(MIX):
            method, path, params, body = _request(kind, rng, keys, picture)
            async with c.request(method, path, params=params, json=body) as r:
                await r.read()
        queue: asyncio.Queue = asyncio.Queue()
        for kind in plan:
            queue.put_nowait(kind)
        deadline = time.monotonic() + max_seconds

        async def worker():
            while not queue.empty() and time.monotonic() < deadline:
                kind = queue.get_nowait()
                method, path, params, body = _request(kind, rng, keys, picture)
                async with analyzing if kind == "analyze" else contextlib.nullcontext():
                    start = time.perf_counter()
                    try:
                        async with c.request(method, path, params=params, json=body) as r:
                            await r.read()
                            status: int | str = r.status
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # counted
                        status = type(exc).__name__
                results.setdefault(kind, []).append((status, time.perf_counter() - start))

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.monotonic() - start
    return summarise(results, took, concurrency)


def _pct(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def summarise(results: dict[str, list[tuple[int | str, float]]], took: float,
              concurrency: int) -> dict:
    every = [t for rows in results.values() for _, t in rows]
    out = {"requests": len(every), "seconds": round(took, 2), "concurrency": concurrency,
           "statuses": {}, "endpoints": {}}
    for kind, rows in sorted(results.items()):
        times = [t for _, t in rows]
        for status, _ in rows:
            out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
        out["endpoints"][kind] = {"n": len(rows), "p50_ms": round(statistics.median(times) * 1000),
                                  "p95_ms": round(_pct(times, 0.95) * 1000)}
    out["all"] = {"p50_ms": round(statistics.median(every) * 1000),
                  "p95_ms": round(_pct(every, 0.95) * 1000)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    # The server keeps recent queries' vectors, so a second run with the same queries
    # measures that cache: each run draws its own unless a seed is given.
    ap.add_argument("--seed", type=int, default=None,
                    help="the request mix's random seed (default: a new one per run)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    summary = asyncio.run(run_load(args.url, os.environ.get("MEDIA_ASSETS_API_TOKEN") or None,
                                   args.requests, args.concurrency, args.max_seconds, seed))
    summary["seed"] = seed
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['requests']} requests at concurrency {summary['concurrency']} in "
          f"{summary['seconds']} s; statuses {summary['statuses']}; seed {seed}")
    for kind, s in summary["endpoints"].items():
        print(f"  {kind:<10} n={s['n']:<4} p50 {s['p50_ms']:>6} ms  p95 {s['p95_ms']:>6} ms")
    print(f"  {'all':<10}        p50 {summary['all']['p50_ms']:>6} ms  "
          f"p95 {summary['all']['p95_ms']:>6} ms")
    if any(not s.startswith(("2", "4")) for s in summary["statuses"]):
        sys.exit(1)  # a 5xx or a broken connection


if __name__ == "__main__":
    main()
