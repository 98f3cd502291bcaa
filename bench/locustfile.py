"""Latency under load (issue #15): clients posting /v1/predict with 1–8 rows each, in a loop.

Run by `make load` (bench/load.py), which writes the input and reads the summary; by hand:
`PROFILEKIT_LOAD_INPUT=in.json PROFILEKIT_LOAD_SUMMARY=out.json .venv/bin/locust -f bench/locustfile.py
--headless -u 64 -r 16 -t 60s --host http://127.0.0.1:8000`.

The input (JSON) names the API key, the profile ids and the texts to draw from. The summary (JSON) holds
every response's status count and the latencies of admitted (200) requests, so that their percentiles
are not mixed with the instant 429s. A client refused with 429 waits its Retry-After (at most 5 s), as
`profilekit.client.Retry` does.

Locust patches the standard library with gevent when imported: this file is loaded only by locust's own
process, never imported by the benchmarks or by tests (its name is not test_*.py).
"""

from __future__ import annotations

import collections
import json
import os
import random
import time

from locust import HttpUser, constant, events, task

INPUT = json.loads(open(os.environ["PROFILEKIT_LOAD_INPUT"]).read())  # noqa: SIM115  (read once, at start)
STATUSES: collections.Counter[int] = collections.Counter()
ADMITTED_MS: list[float] = []


class PredictingClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {INPUT['key']}"
        self.rng = random.Random()

    @task
    def predict(self) -> None:
        items = [{"profile_id": self.rng.choice(INPUT["profile_ids"]), "text": self.rng.choice(INPUT["texts"])}
                 for _ in range(self.rng.randint(1, 8))]
        began = time.perf_counter()
        with self.client.post("/v1/predict", json={"items": items}, name="/v1/predict",
                              catch_response=True) as response:
            STATUSES[response.status_code] += 1
            if response.status_code == 200:
                ADMITTED_MS.append(1000 * (time.perf_counter() - began))
                response.success()
            elif response.status_code == 429:  # refused by admission: expected under overload
                response.success()
                time.sleep(min(5.0, float(response.headers.get("Retry-After", 1))))
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


@events.quitting.add_listener
def write_summary(environment, **_) -> None:
    seconds = max(1e-9, time.time() - environment.runner.stats.total.start_time)
    with open(os.environ["PROFILEKIT_LOAD_SUMMARY"], "w") as handle:
        json.dump({"statuses": {str(k): v for k, v in STATUSES.items()}, "admitted_ms": ADMITTED_MS,
                   "seconds": seconds}, handle)
