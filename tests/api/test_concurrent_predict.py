"""Many clients predicting at once all get their answers: a request holds no database connection
while it waits for others (the pool has 15; auth and profile lookup each take one briefly)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor


def test_many_concurrent_predict_requests_all_succeed(server):
    api = server.http(server.client)
    profile = api.post("/v1/profiles", json={"external_id": "busy"}).json()["id"]
    rows = [{"text": f"{word} item {i}", "category": topic}
            for topic, word in (("sports", "goal"), ("politics", "senate")) for i in range(5)]
    api.post(f"/v1/profiles/{profile}/examples", content="\n".join(json.dumps(r) for r in rows),
             headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
    api.post("/v1/jobs", json={"profile_ids": [profile], "method": "head_only", "train": {"epochs": 1}})
    assert server.run_queued_jobs() == ["succeeded"]

    def predict(i: int) -> int:
        with server.http(server.client) as http:  # a connection of its own, like a separate client
            items = [{"profile_id": profile, "text": f"the senate vote number {i}"}] * 4
            return http.post("/v1/predict", json={"items": items}).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(predict, range(64)))
    assert statuses == [200] * 64
