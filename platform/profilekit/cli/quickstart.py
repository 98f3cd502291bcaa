"""What `make run` shows once the service is up: onboard a few news authors through the HTTP API,
train them, predict for several profiles in one request, and point at the dashboard."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx

from profilekit.data import NEWS_AUTHORS


def run_quickstart(ready, address, key, args) -> None:
    ready.wait()
    base = f"http://{address[0]}:{address[1]}"
    headers = {"Authorization": f"Bearer {key}"}
    rows = [json.loads(line) for line in NEWS_AUTHORS.read_text().splitlines() if line.strip()]
    counts = Counter(r["author"] for r in rows)
    authors = [a for a, n in counts.most_common() if 50 <= n <= 150][: args.demo_authors]
    body = "\n".join(json.dumps(r) for r in rows if r["author"] in authors)
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        upload = client.post("/v1/datasets", content=body, headers={"Content-Type": "application/x-ndjson"})
        upload.raise_for_status()
        profiles = upload.json()["profiles"]
        print(f"$ curl -X POST {base}/v1/datasets -H 'Authorization: Bearer …' "
              f"-H 'Content-Type: application/x-ndjson' --data-binary @authors.jsonl", flush=True)
        print(f"  onboarded {len(profiles)} authors: " + ", ".join(p["external_id"] for p in profiles), flush=True)
        job = client.post("/v1/jobs", json={"profile_ids": [p["id"] for p in profiles], "method": "xpeft_hard",
                                            "train": {"epochs": args.demo_epochs}}).json()
        print(f"$ curl -X POST {base}/v1/jobs … → job {job['id']} ({job['state']})", flush=True)
        shown = None
        while job["state"] in ("queued", "running"):
            time.sleep(2)
            job = client.get(f"/v1/jobs/{job['id']}").json()
            progress = job["progress"]
            if progress and progress.get("epoch") != shown:  # one line per epoch
                shown = progress.get("epoch")
                print(f"  training: epoch {progress.get('epoch')} step {progress.get('step')}/"
                      f"{progress.get('total_steps')} loss {progress.get('loss', 0):.3f}", flush=True)
        print(f"  job {job['state']}" + (f": {job['error']}" if job["error"] else ""), flush=True)
        for p in profiles:
            info = client.get(f"/v1/profiles/{p['id']}").json()
            if info["artifact"]:
                m = info["artifact"]["metrics"]
                print(f"  {p['external_id'][:28]:28} holdout accuracy {m['accuracy']:.3f}  macro-F1 "
                      f"{m['macro_f1']:.3f}  stored {info['artifact']['stored_bytes']} bytes", flush=True)
        texts = {p["id"]: next(r["text"] for r in rows if r["author"] == p["external_id"]) for p in profiles[:3]}
        items = [{"profile_id": pid, "text": text} for pid, text in texts.items()]
        answer = client.post("/v1/predict", json={"items": items})
        print(f"$ curl -X POST {base}/v1/predict -d '{{\"items\": [{{\"profile_id\": …, \"text\": …}}, …]}}'",
              flush=True)
        if answer.status_code == 200:
            for item, result in zip(items, answer.json()["results"], strict=True):
                print(f"  [{result['profile_id'][:8]}] {item['text'][:60]!r} → {result['label']}", flush=True)
        else:
            print(f"  predict answered {answer.status_code}: {answer.text}", flush=True)
    print(f"dashboard: {base}/dashboard (sign in with the admin key); serving until interrupted", flush=True)
