"""Latency under load (issue #15): `make load`, or `.venv/bin/python -m bench.load [--url URL --key KEY]`.

Without --url: a fresh embedded instance (`profilekit serve --no-worker`, default settings) on a loopback
port, seeded with X-PEFT hard profiles as bench.api seeds them (random masks, not trained), every profile
requested once so the cache holds them; one forward of `max_batch_size` rows with as many distinct
profiles is timed in this process before the load starts. With --url/--key: that instance and its
trained profiles (the key's tenant); give --forward-seconds to get the bound.

Then locust (bench/locustfile.py, headless, its own process): --users clients, each posting 1–8 rows
in a loop. Prints `name: value` lines: requests/s, status counts, the 429 share, p50/p95/p99 of admitted
requests, and the bound the issue sets for their p99: 2 × (max_queue_seconds + one forward).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import percentile, report

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def run_locust(url: str, key: str, profile_ids: list[str], texts: list[str], *, users: int, spawn_rate: int,
               seconds: int, folder: Path) -> dict:
    """locust headless against `url` for `seconds`; → the locustfile's summary (statuses, admitted_ms, seconds)."""
    url = url.rstrip("/")  # locust joins host and path as they are: "…:8000/" would post to //v1/predict (404)
    given, summary = folder / "load-input.json", folder / "load-summary.json"
    given.write_text(json.dumps({"key": key, "profile_ids": profile_ids, "texts": texts}))
    env = os.environ | {"PROFILEKIT_LOAD_INPUT": str(given), "PROFILEKIT_LOAD_SUMMARY": str(summary)}
    command = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--headless",
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "--host", url,
               "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if not summary.exists():
        raise RuntimeError(f"locust wrote no summary (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(summary.read_text())


def seed_instance(folder: Path, profiles: int, texts: list[str], categories: list[str]):
    """A served embedded instance with `profiles` profiles, all in its cache; → (process, url, key, ids,
    max_queue_seconds, seconds of one forward of max_batch_size rows)."""
    import httpx

    from bench.api import make_profiles, start_server
    from profilekit.settings import Settings

    settings = Settings(data_dir=folder)
    key, ids, _, engine = make_profiles(settings, profiles, categories)
    forward = one_forward(engine, texts, categories, settings.max_batch_size)
    process, url, _ = start_server(folder)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
        for start in range(0, len(ids), 64):
            http.post("/v1/predict", json={"items": [{"profile_id": p, "text": texts[0]}
                                                     for p in ids[start:start + 64]]}).raise_for_status()
    return process, url, key, ids, settings.max_queue_seconds, forward


def one_forward(engine, texts: list[str], categories: list[str], rows: int) -> float:
    """Median seconds of Engine.predict on `rows` texts drawn as the clients draw them (a batch pads to its
    longest), each with its own X-PEFT hard profile; one warm-up, then five draws."""
    rng = random.Random(0)
    states = [engine.new_state("xpeft_hard", categories[:5], seed=i) for i in range(rows)]
    times = []
    for _ in range(6):
        batch = [rng.choice(texts) for _ in range(rows)]
        began = time.perf_counter()
        engine.predict(batch, states)
        times.append(time.perf_counter() - began)
    return statistics.median(times[1:])


def remote_profiles(url: str, key: str, limit: int) -> list[str]:
    """Up to `limit` trained profiles the key sees."""
    import httpx

    ids, cursor = [], None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        while len(ids) < limit:
            try:
                page = http.get("/v1/profiles", params={"limit": 500} | ({"cursor": cursor} if cursor else {}))
            except httpx.HTTPError as exc:
                raise SystemExit(f"cannot reach {url}: {exc}") from exc
            if page.status_code != 200:
                raise SystemExit(f"{url} refused to list the key's profiles: {page.status_code} {page.text[:300]}")
            body = page.json()
            ids += [p["id"] for p in body["items"] if p.get("artifact")]
            cursor = body["next_cursor"]
            if not cursor:
                break
    if not ids:
        raise SystemExit("the key sees no trained profile to predict with")
    return ids[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an instance to load (default: start one)")
    parser.add_argument("--key", help="its API key (with --url)")
    parser.add_argument("--profiles", type=int, default=200, help="profiles to seed or to draw from")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--spawn-rate", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--max-queue-seconds", type=float, default=None, help="the instance's (with --url)")
    parser.add_argument("--forward-seconds", type=float, default=None, help="one full forward (with --url)")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")
    for name, value in vars(args).items():
        flag = "--" + name.replace("_", "-")
        if name in ("profiles", "users", "spawn_rate", "seconds") and value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
        if name in ("max_queue_seconds", "forward_seconds") and value is not None and not value > 0:
            parser.error(f"{flag} must be a positive number of seconds, got {value}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from bench.api import news_sample, stop_server

    texts, categories = news_sample(256)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        process = None
        if args.url:
            url, key, queue_seconds, forward = args.url, args.key, args.max_queue_seconds, args.forward_seconds
            ids = remote_profiles(url, key, args.profiles)
        else:
            process, url, key, ids, queue_seconds, forward = seed_instance(Path(folder), args.profiles, texts,
                                                                           categories)
        try:
            summary = run_locust(url, key, ids, texts, users=args.users, spawn_rate=args.spawn_rate,
                                 seconds=args.seconds, folder=Path(folder))
        finally:
            if process is not None:
                stop_server(process)
    statuses = {int(k): v for k, v in summary["statuses"].items()}
    total, admitted = sum(statuses.values()), summary["admitted_ms"]
    report("users", args.users)
    report("rows_per_request", "1-8, uniform")
    report("seconds", summary["seconds"])
    report("requests_per_second", total / summary["seconds"])
    report("admitted_requests_per_second", len(admitted) / summary["seconds"])
    report("statuses", " ".join(f"{code}:{n}" for code, n in sorted(statuses.items())))
    report("share_429", statuses.get(429, 0) / max(total, 1))
    if admitted:
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            report(f"admitted_latency_{name}_ms", percentile(admitted, q))
    if queue_seconds is not None and forward is not None:
        bound = 2 * (queue_seconds + forward)
        report("max_queue_seconds", queue_seconds)
        report("one_forward_seconds_max_batch", forward)
        report("p99_bound_ms", 1000 * bound)
        if admitted:
            report("p99_within_bound", percentile(admitted, 99) <= 1000 * bound)
    check_statuses(statuses)


def check_statuses(statuses: dict[int, int]) -> None:
    """Under load a request is admitted (200) or refused for the time being (429); any other answer (a 404 of
    a wrong URL, a 401 of a revoked key, a 5xx) fails the run."""
    others = {code: n for code, n in statuses.items() if code not in (200, 429)}
    if others:
        raise SystemExit("the server answered other than 200 or 429 under load: "
                         + " ".join(f"{code}:{n}" for code, n in sorted(others.items())))


if __name__ == "__main__":
    main()
