"""Many clients predicting at once all get their answers: a request holds no database connection
while it waits for others (the pool has 15; auth and profile lookup each take one briefly). A 429 (the
queue's time bound, reached when the machine is busy) is retried after its Retry-After, as a client does."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor


def test_many_concurrent_predict_requests_all_succeed(server):
    profile, _ = server.trained_profile("busy")

    def predict(i: int) -> int:
        with server.http(server.client) as http:  # a connection of its own, like a separate client
            items = [{"profile_id": profile, "text": f"the senate vote number {i}"}] * 4
            for _ in range(20):
                answer = http.post("/v1/predict", json={"items": items})
                if answer.status_code != 429:
                    return answer.status_code
                time.sleep(float(answer.headers["Retry-After"]))
            return 429

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(predict, range(64)))
    assert statuses == [200] * 64
