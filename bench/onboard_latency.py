"""Upload → servable (issue #15): `.venv/bin/python -m bench.onboard_latency` from the repository root.

`profilekit serve` in embedded mode (SQLite store and broker, its one worker, default settings) on a
loopback port. For each of --authors authors of ../shared/data/news-authors with at least --rows rows,
one after another (the worker is idle when each starts): POST their first --rows rows to /v1/datasets,
POST /v1/jobs (the defaults: xpeft_hard on the random pool, 10 epochs), poll the job, then POST
/v1/predict until it answers 200. The time from the upload's POST to that first 200 is the figure; the
job's own timestamps and progress events say where it went:

  upload       the dataset POST (parse, insert rows, one profile per author)
  queue        the job's created_at → started_at (the worker picking the message up)
  start        started_at → the first progress event (pool and backbone on first use, split, first steps)
  epochs       first → last progress event (events are written at most once a second)
  write        last progress event → finished_at (the last steps, the artifact and metrics written)
  seen         finished_at → the client seeing `succeeded` (its poll interval)
  first load   the first prediction (the artifact read on a cache miss, one forward)

Prints `name: value` lines: per author the total and the parts, then the p50 of the total.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import report
from profilekit.data import NEWS_AUTHORS


def authors(count: int, rows: int) -> list[list[dict]]:
    """The first `rows` rows of each of the first `count` authors (file order) with at least `rows`."""
    by_author: dict[str, list[dict]] = collections.defaultdict(list)
    with NEWS_AUTHORS.open() as handle:
        for line in handle:
            row = json.loads(line)
            by_author[row["author"]].append(row)
    chosen = [author_rows[:rows] for author_rows in by_author.values() if len(author_rows) >= rows]
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} authors have {rows} rows")
    return chosen[:count]


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def onboard_one(http, rows: list[dict], *, poll: float, limit: float) -> dict[str, float]:
    """Upload one author, train it, predict once; → seconds of the total and its parts."""
    began = time.perf_counter()
    body = "\n".join(json.dumps(row) for row in rows)
    uploaded = http.post("/v1/datasets", content=body, headers={"Content-Type": "application/x-ndjson"})
    uploaded.raise_for_status()
    upload = time.perf_counter() - began
    [profile] = uploaded.json()["profiles"]
    job = http.post("/v1/jobs", json={"profile_ids": [profile["id"]]})
    job.raise_for_status()
    job_id = job.json()["id"]
    while (state := http.get(f"/v1/jobs/{job_id}").json())["state"] not in ("succeeded", "failed", "cancelled"):
        if time.perf_counter() - began > limit:
            raise SystemExit(f"job {job_id} still {state['state']} after {limit:.0f} s")
        time.sleep(poll)
    if state["state"] != "succeeded":
        raise SystemExit(f"job {job_id} {state['state']}: {state['error']}")
    seen = time.perf_counter()
    predicted = http.post("/v1/predict", json={"items": [{"profile_id": profile["id"], "text": rows[0]["text"]}]})
    predicted.raise_for_status()
    total = time.perf_counter() - began
    progress = [e["at"] for e in http.get(f"/v1/jobs/{job_id}/events").json() if e["kind"] == "progress"]
    first, last = (min(progress), max(progress)) if progress else (state["started_at"], state["started_at"])
    return {"total": total, "upload": upload,
            "queue": seconds_between(state["created_at"], state["started_at"]),
            "start": seconds_between(state["started_at"], first), "epochs": seconds_between(first, last),
            "write": seconds_between(last, state["finished_at"]),
            "seen": seen - began - upload - seconds_between(state["created_at"], state["finished_at"]),
            "first_load": total - (seen - began)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors", type=int, default=5)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between the client's job polls")
    parser.add_argument("--limit", type=float, default=900, help="give up on an author after this long")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import httpx

    from bench.api import start_server, stop_server
    from profilekit.api.auth import create_key
    from profilekit.settings import Settings
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    chosen = authors(args.authors, args.rows)
    totals = []
    with tempfile.TemporaryDirectory(prefix="bench-onboard-") as folder:
        settings = Settings(data_dir=Path(folder))
        upgrade(settings.resolved_database_url)
        db = make_engine(settings.resolved_database_url)
        with make_session_factory(db)() as session:
            key = create_key(session, tenant="bench", role="client", name="bench.onboard_latency")
        db.dispose()
        process, url, _ = start_server(Path(folder), worker=True)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
                for index, rows in enumerate(chosen):
                    parts = onboard_one(http, rows, poll=args.poll, limit=args.limit)
                    totals.append(parts["total"])
                    report(f"author_{index}", f"{rows[0]['author']} ({len(rows)} rows)")
                    report(f"author_{index}_seconds", " ".join(f"{k}={v:.2f}" for k, v in parts.items()))
        finally:
            stop_server(process)
    report("upload_to_servable_p50_seconds", statistics.median(totals))
    report("upload_to_servable_max_seconds", max(totals))


if __name__ == "__main__":
    main()
