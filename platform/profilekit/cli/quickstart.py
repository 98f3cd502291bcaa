"""What `make run` shows once the service is up: onboard a few news authors through the HTTP API (with
profilekit.client), train them — or reuse them when an earlier `make run` trained them already —,
predict for several profiles in one request, and point at the dashboard."""

from __future__ import annotations

import json
from collections import Counter

from profilekit.client import Client
from profilekit.data import NEWS_AUTHORS


def run_quickstart(ready, address, key, args) -> None:
    ready.wait()
    base = f"http://{address[0]}:{address[1]}"
    rows = [json.loads(line) for line in NEWS_AUTHORS.read_text().splitlines() if line.strip()]
    counts = Counter(r["author"] for r in rows)
    authors = [a for a, n in counts.most_common() if 50 <= n <= 150][: args.demo_authors]
    with Client(base, key, timeout=120) as pk:
        profiles = pk.upload([r for r in rows if r["author"] in authors])["profiles"]  # rows seen before are kept once
        print(f"$ curl -X POST {base}/v1/datasets -H 'Authorization: Bearer …' "
              f"-H 'Content-Type: application/x-ndjson' --data-binary @authors.jsonl", flush=True)
        print(f"  onboarded {len(profiles)} authors: " + ", ".join(p["external_id"] for p in profiles), flush=True)
        untrained = [p["id"] for p in profiles if pk.profile(p["id"])["artifact"] is None]
        if not untrained:
            print("  all of them were trained by an earlier `make run`: reusing their artifacts "
                  "(remove ./data to start afresh)", flush=True)
        else:
            job = pk.train(untrained, "xpeft_hard", train={"epochs": args.demo_epochs})
            print(f"$ curl -X POST {base}/v1/jobs … → job {job['id']} ({job['state']})", flush=True)
            job = pk.wait(job)
            print(f"  job {job['state']}" + (f": {job['error']}" if job["error"] else ""), flush=True)
        for p in profiles:
            info = pk.profile(p["id"])
            if info["artifact"]:
                m = info["artifact"]["metrics"]
                print(f"  {p['external_id'][:28]:28} holdout accuracy {m['accuracy']:.3f}  macro-F1 "
                      f"{m['macro_f1']:.3f}  stored {info['artifact']['stored_bytes']} bytes", flush=True)
        texts = {p["id"]: next(r["text"] for r in rows if r["author"] == p["external_id"]) for p in profiles[:3]}
        print(f"$ curl -X POST {base}/v1/predict -d '{{\"items\": [{{\"profile_id\": …, \"text\": …}}, …]}}'",
              flush=True)
        try:
            for (pid, text), result in zip(texts.items(), pk.predict(list(texts.items())), strict=True):
                print(f"  [{pid[:8]}] {text[:60]!r} → {result['label']}", flush=True)
        except Exception as exc:  # the demo reports and keeps serving
            print(f"  predict failed: {exc}", flush=True)
    print(f"dashboard: {base}/dashboard (sign in with the admin key); API docs: {base}/docs", flush=True)
    print(f"command line: .venv/bin/profilekit --url {base} --api-key $(cat data/admin.key) jobs "
          "(or `source .venv/bin/activate` first); serving until interrupted", flush=True)
